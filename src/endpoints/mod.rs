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

/// A successful reply: the fields of its JSON body and the reports that are its
/// `resources` (also counted in metrics). [`Reply::to_json`] writes the body.
pub struct Reply {
    /// Every field of the body but `resources`.
    pub head: serde_json::Map<String, Value>,
    pub reports: Vec<ResourceReport>,
    /// The lattice the request was about, for logs.
    pub lattice: Option<String>,
}

impl Reply {
    /// The JSON body, written in one pass: the reports are not first turned into a
    /// `Value` (on the warm path, that was a good part of the cost of a request).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            head: &self.head,
            resources: &self.reports,
        })
        .unwrap_or_default()
    }
}

/// `head` plus `resources`, the top-level keys in the order of a `serde_json::Map`
/// (sorted); each resource's fields in the order of [`ResourceReport`].
struct Body<'a> {
    head: &'a serde_json::Map<String, Value>,
    resources: &'a [ResourceReport],
}

impl serde::Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const RESOURCES: &str = "resources";
        let mut map = serializer.serialize_map(Some(self.head.len() + 1))?;
        let mut written = false;
        for (key, value) in self.head.iter().filter(|(k, _)| k.as_str() != RESOURCES) {
            if !written && key.as_str() > RESOURCES {
                map.serialize_entry(RESOURCES, self.resources)?;
                written = true;
            }
            map.serialize_entry(key, value)?;
        }
        if !written {
            map.serialize_entry(RESOURCES, self.resources)?;
        }
        map.end()
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
