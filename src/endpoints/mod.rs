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

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::error::{ErrorKind, ProvisionError};
use crate::provisioner::{Provisioner, Target};
use crate::reconcile::{Action, ResourceReport, WarmStamp};

/// Prefix of every endpoint subject.
pub const SUBJECT_PREFIX: &str = "wasmcloud.provision";

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

/// A request that was parsed, validated and authorized, and not yet carried out: what to
/// provision, and the fields its reply carries besides `resources`.
#[derive(Debug)]
pub struct Prepared {
    pub work: Work,
    pub dry_run: bool,
    /// Every field of the reply but `resources`, `dry_run` and `js_domain`.
    pub head: serde_json::Map<String, Value>,
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
        mut self,
        provisioner: &Provisioner,
        reports: Vec<ResourceReport>,
    ) -> Result<Reply, ProvisionError> {
        if let Some(note) = provisioner.replicas_note(&self.work.targets, self.work.replicas) {
            self.head.insert("replicas_note".into(), json!(note));
        }
        provision_reply(provisioner, self.head, reports, self.dry_run, self.lattice)
    }
}

/// A successful reply: the fields of its JSON body and the reports that are its
/// `resources` (also counted in metrics). [`Reply::to_json`] writes the body.
pub struct Reply {
    /// Every field of the body but `resources`.
    pub head: serde_json::Map<String, Value>,
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
        serde_json::to_vec(&Body::new(&self.head, &self.reports)).unwrap_or_default()
    }
}

/// `head` plus `resources`, the top-level keys in the order of a `serde_json::Map`
/// (sorted): the head's keys before `resources`, `resources`, the head's keys after it;
/// each resource's fields in the order of [`ResourceReport`].
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    before: BTreeMap<&'a str, &'a Value>,
    resources: &'a [ResourceReport],
    #[serde(flatten)]
    after: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Body<'a> {
    fn new(head: &'a serde_json::Map<String, Value>, resources: &'a [ResourceReport]) -> Self {
        const RESOURCES: &str = "resources";
        let (before, after) = head
            .iter()
            .filter(|(k, _)| k.as_str() != RESOURCES)
            .map(|(k, v)| (k.as_str(), v))
            .partition(|(k, _)| *k < RESOURCES);
        Body {
            before,
            resources,
            after,
        }
    }
}

/// Builds the reply of a provisioning request. Drift found while applying is a 409: the
/// resources are not ready for the apps, and the body says which fields break which app.
pub fn provision_reply(
    provisioner: &Provisioner,
    mut head: serde_json::Map<String, Value>,
    reports: Vec<ResourceReport>,
    dry_run: bool,
    lattice: Option<String>,
) -> Result<Reply, ProvisionError> {
    head.insert("dry_run".into(), json!(dry_run));
    head.insert("js_domain".into(), json!(provisioner.js_domain()));
    let drifted: Vec<&str> = reports
        .iter()
        .filter(|r| r.action == Action::Drift)
        .map(|r| r.name.as_str())
        .collect();
    if !dry_run && !drifted.is_empty() {
        head.insert("resources".into(), json!(reports));
        let body = Value::Object(head);
        return Err(ProvisionError::new(
            ErrorKind::Conflict,
            format!(
                "{} exist(s) but would break the apps (see `drift` in the body); the \
                 provisioner changed nothing there: fix or remove them by hand",
                drifted.join(", ")
            ),
        )
        .with_details(body));
    }
    Ok(Reply {
        head,
        reports,
        lattice,
        stamp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Kind;

    #[test]
    fn reply_is_the_whole_value_written_in_one_pass() {
        let report = ResourceReport {
            name: "LATTICEDATA_x".into(),
            kind: Kind::Kv,
            stream: "KV_LATTICEDATA_x".into(),
            action: Action::Exists,
            replicas: 1,
            desired_replicas: 1,
            previous_replicas: None,
            drift: Vec::new(),
            notes: Vec::new(),
            warm: true,
        };
        // Keys sorting before and after `resources`, and none after it.
        for keys in [vec!["lattice", "wadm", "dry_run"], vec!["dry_run"], vec![]] {
            let head: serde_json::Map<String, Value> =
                keys.iter().map(|k| (k.to_string(), json!(k))).collect();
            let reply = Reply {
                head: head.clone(),
                reports: vec![report.clone(), report.clone()],
                lattice: None,
                stamp: None,
            };
            let mut whole = head;
            whole.insert("resources".into(), json!(reply.reports));
            let written: Value = serde_json::from_slice(&reply.to_json()).unwrap();
            assert_eq!(written, Value::Object(whole));
            // The top-level keys in the order a `Value` would write them (sorted).
            let text = String::from_utf8(reply.to_json()).unwrap();
            let mut at: Vec<usize> = written
                .as_object()
                .unwrap()
                .keys()
                .map(|k| text.find(&format!("\"{k}\":")).unwrap())
                .collect();
            let sorted = at.clone();
            at.sort();
            assert_eq!(at, sorted, "{text}");
        }
    }
}
