//! One file per endpoint, each `parse → apply → reply`. A reader finds an endpoint by its
//! subject's last word: `wasmcloud.provision.lattice` is `lattice.rs`.
//!
//! This module holds the table the service registers from and the reply conventions every
//! endpoint shares.

pub mod host;
pub mod lattice;
pub mod status;
pub mod wadm;

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{ErrorKind, ProvisionError};
use crate::provisioner::Provisioner;
use crate::reconcile::{Action, ResourceReport};

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

/// Runs the handler of one request. `headers` carry e.g. a host's signature.
pub async fn dispatch(
    provisioner: &Provisioner,
    spec: &EndpointSpec,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
) -> Result<Reply, ProvisionError> {
    match spec.handler {
        Handler::Lattice => lattice::handle(provisioner, body).await,
        Handler::LatticeScoped => lattice::handle_scoped(provisioner, subject, body).await,
        Handler::Wadm => wadm::handle(provisioner, body).await,
        Handler::Status => status::handle(provisioner, body).await,
        Handler::Host => host::handle(provisioner, headers, body).await,
        Handler::HostScoped => host::handle_scoped(provisioner, subject, headers, body).await,
    }
}

/// A successful reply: its JSON body and the reports it was built from (for metrics).
pub struct Reply {
    pub body: Value,
    pub reports: Vec<ResourceReport>,
    /// The lattice the request was about, for logs.
    pub lattice: Option<String>,
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
    head.insert("resources".into(), json!(reports));
    let body = Value::Object(head);
    let drifted: Vec<&str> = reports
        .iter()
        .filter(|r| r.action == Action::Drift)
        .map(|r| r.name.as_str())
        .collect();
    if !dry_run && !drifted.is_empty() {
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
        body,
        reports,
        lattice,
    })
}
