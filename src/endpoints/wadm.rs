//! `wasmcloud.provision.wadm`: wadm's buckets and streams, `wadm_event_consumer` after the
//! two streams it sources from, and — with `"operator"` or `serve --operator` — the
//! Kubernetes operator's stream after `wadm_events`, which it mirrors. Body: empty, or
//! `{"multitenant": bool, "operator": "0.4"|"0.5", "dry_run": bool}`.

use serde_json::{json, Map};

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::{Provisioner, Target};
use crate::request::WadmRequest;

pub const SPEC: EndpointSpec = EndpointSpec {
    name: "wadm",
    subject: "wasmcloud.provision.wadm",
    handler: Handler::Wadm,
    description: "Ensures wadm's KV buckets and streams; body: empty or JSON options",
    request_schema: "schemas/wadm_request.json",
    response_schema: "schemas/provision_response.json",
    quiet_when_warm: true,
};

pub fn prepare(provisioner: &Provisioner, body: &[u8]) -> Result<Prepared, ProvisionError> {
    let request = WadmRequest::parse(body)?;
    let mut head = Map::new();
    head.insert("wadm".into(), json!(true));
    head.insert("multitenant".into(), json!(request.multitenant));
    let mut targets = vec![Target::Wadm {
        multitenant: request.multitenant,
    }];
    if let Some(operator) = request.operator.or(provisioner.operator) {
        head.insert("operator".into(), json!(operator));
        targets.push(Target::Operator(operator));
    }
    Ok(Prepared {
        work: Work {
            targets,
            replicas: request.replicas,
        },
        dry_run: request.dry_run,
        head,
        lattice: None,
        same_reply_for_same_work: true,
    })
}
