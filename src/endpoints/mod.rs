//! One file per endpoint, each a synchronous `prepare` (parse, validate, authorize: no
//! JetStream) that yields a [`Prepared`] request. A reader finds an endpoint by its
//! subject's last word: `wasmcloud.provision.lattice` is `lattice.rs`.
//!
//! This module holds the table the service registers from and what every endpoint shares
//! after `prepare` ([`Prepared::run`] for the cold path, the reply conventions); the warm
//! answer has its own door, [`warm`].

pub mod host;
pub mod lattice;
pub mod status;
pub mod wadm;
pub mod warm;

pub use warm::{NotWarm, WarmAnswer, WarmReplies};

use std::collections::HashMap;

use crate::catalog::Operator;
use crate::error::{ErrorKind, Outcome, ProvisionError};
use crate::known::WarmStamp;
use crate::plan::{Action, ResourceReport};
use crate::provisioner::{Provisioner, Target};
use crate::reply::{ProvisionReply, ReplyHead};

/// Which handler serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Lattice,
    LatticeScoped,
    Wadm,
    Status,
    Host,
    HostScoped,
}

/// One endpoint as registered with the Services API.
#[derive(Debug, Clone, Copy)]
pub struct EndpointSpec {
    /// Endpoint name (`[A-Za-z0-9_-]+`, unique): what `nats micro info` shows.
    pub name: &'static str,
    pub subject: &'static str,
    pub handler: Handler,
    pub description: &'static str,
    pub request_schema: &'static str,
    pub response_schema: &'static str,
    /// Whether a warm answer goes out unlogged (below debug) and without a span: preparing
    /// the request logs nothing, and the bulk of a fleet's start is such requests. A host's
    /// bootstrap is always logged.
    pub quiet_when_warm: bool,
}

impl EndpointSpec {
    /// Endpoint metadata: pointers to the request and reply schemas.
    pub fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("description".to_string(), self.description.to_string()),
            (
                "request_schema".to_string(),
                self.request_schema.to_string(),
            ),
            (
                "response_schema".to_string(),
                self.response_schema.to_string(),
            ),
            (
                "error_schema".to_string(),
                "schemas/error_response.json".to_string(),
            ),
        ])
    }
}

/// Every endpoint of the service.
pub static ENDPOINTS: &[EndpointSpec] = &[
    lattice::SPEC,
    lattice::SCOPED_SPEC,
    wadm::SPEC,
    status::SPEC,
    host::SPEC,
    host::SCOPED_SPEC,
];

/// Parses, validates and authorizes one request: everything that needs no JetStream.
/// `headers` carry e.g. a host's signature.
pub fn prepare(
    provisioner: &Provisioner,
    spec: &EndpointSpec,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
) -> Result<Prepared, ProvisionError> {
    match spec.handler {
        Handler::Lattice => lattice::prepare(body),
        Handler::LatticeScoped => lattice::prepare_scoped(subject, body),
        Handler::Wadm => wadm::prepare(provisioner, body),
        Handler::Status => status::prepare(provisioner, body),
        Handler::Host => host::prepare(provisioner, headers, body),
        Handler::HostScoped => host::prepare_scoped(provisioner, subject, headers, body),
    }
}

/// wadm's resources as a request asks for them: the target, then the operator's stream
/// (the request's version, else `serve --operator`'s) after it, and what the reply says
/// about them. One place for `wadm` and `status`, so both name the same operator.
fn wadm_work(
    provisioner: &Provisioner,
    multitenant: bool,
    operator: Option<Operator>,
) -> (ProvisionReply<()>, Vec<Target>) {
    let mut head = ReplyHead::provision();
    let mut targets = vec![Target::Wadm { multitenant }];
    head.wadm = true;
    head.multitenant = Some(multitenant);
    if let Some(operator) = operator.or(provisioner.operator) {
        head.operator = Some(operator);
        targets.push(Target::Operator(operator));
    }
    (head, targets)
}

/// A request that was parsed, validated and authorized, and not yet carried out: what to
/// provision, and the fields its reply carries besides `resources`.
#[derive(Debug)]
pub struct Prepared {
    pub work: Work,
    pub dry_run: bool,
    /// Every field of the reply but `resources`, `dry_run` and `js_domain`.
    pub head: ReplyHead,
    /// The lattice the request is about, for logs.
    pub lattice: Option<String>,
    /// Whether `head` follows from `work` alone, so that the reply of a warm request can be
    /// sent again as is (see [`WarmReplies`]). Not so for a host's bootstrap, whose reply
    /// names the host. Set only where `prepare` reads no header either: such a reply is
    /// also kept for the request's subject and body as they arrived.
    pub same_reply_for_same_work: bool,
}

/// What a request provisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Work {
    pub targets: Vec<Target>,
    pub replicas: Option<usize>,
}

impl Prepared {
    /// A request of the `lattice`, `wadm` or `status` endpoint.
    fn provision(
        work: Work,
        dry_run: bool,
        head: ProvisionReply<()>,
        lattice: Option<String>,
        same_reply_for_same_work: bool,
    ) -> Self {
        Prepared {
            work,
            dry_run,
            head: ReplyHead::Provision(Box::new(head)),
            lattice,
            same_reply_for_same_work,
        }
    }

    /// Carries the request out (or plans it, for a dry run) and builds the reply: the
    /// cold path, after [`Prepared::try_warm`] (see [`warm`]; each resource is still answered from a
    /// fresh verdict, see [`Provisioner::ensure`]).
    pub async fn run(self, provisioner: &Provisioner) -> Result<Reply, ProvisionError> {
        let Work { targets, replicas } = &self.work;
        let reports = if self.dry_run {
            provisioner.plan(targets, *replicas).await?
        } else {
            provisioner.ensure(targets, *replicas).await?
        };
        self.reply(provisioner, reports)
    }

    fn reply(
        self,
        provisioner: &Provisioner,
        reports: Vec<ResourceReport>,
    ) -> Result<Reply, ProvisionError> {
        let note = provisioner.replicas_note(&self.work.targets, self.work.replicas);
        provision_reply(
            provisioner,
            self.head,
            reports,
            self.dry_run,
            self.lattice,
            note,
        )
    }
}

/// A successful reply: its typed body ([`crate::reply`]) and the reports that are its
/// `resources` (also counted in metrics). [`Reply::to_json`] writes the body.
pub struct Reply {
    /// Every field of the body but `resources`.
    pub head: ReplyHead,
    pub reports: Vec<ResourceReport>,
    /// The lattice the request was about, for logs.
    pub lattice: Option<String>,
    /// Set when answered warm: what the answer was made from.
    pub stamp: Option<WarmStamp>,
}

impl Reply {
    /// The JSON body, written in one pass: the reports are not first turned into a
    /// `Value` (on the warm path, that was a good part of the cost of a request).
    pub fn to_json(&self) -> Vec<u8> {
        self.head.to_json(&self.reports).unwrap_or_default()
    }
}

/// Builds the reply of a provisioning request. Drift found while applying is a 409: the
/// resources are not ready for the apps, and the body says which fields break which app.
pub fn provision_reply(
    provisioner: &Provisioner,
    mut head: ReplyHead,
    reports: Vec<ResourceReport>,
    dry_run: bool,
    lattice: Option<String>,
    replicas_note: Option<String>,
) -> Result<Reply, ProvisionError> {
    head.complete(dry_run, provisioner.js_domain(), replicas_note);
    let drifted: Vec<&str> = reports
        .iter()
        .filter(|r| r.action == Action::Drift)
        .map(|r| r.name.as_str())
        .collect();
    if !dry_run && !drifted.is_empty() {
        let message = format!(
            "{} exist(s) but would break the apps (see `drift` in the body); the \
             provisioner changed nothing there: fix or remove them by hand",
            drifted.join(", ")
        );
        // The whole reply goes into the error's body; metrics count its resources.
        let outcome = reports.iter().fold(
            Outcome::new(head.lattice().map(str::to_string)).with_fields(head.to_value(())),
            |outcome, r| outcome.resource(&r.name, r.action.as_str(), r),
        );
        return Err(ProvisionError::new(ErrorKind::Conflict, message).with_outcome(outcome));
    }
    Ok(Reply {
        head,
        reports,
        lattice,
        stamp: None,
    })
}
