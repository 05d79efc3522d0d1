//! `wasmcloud.provision.wadm`: wadm's buckets and streams, `wadm_event_consumer` after the
//! two streams it sources from, and — with `"operator"` or `serve --operator` — the
//! Kubernetes operator's stream after `wadm_events`, which it mirrors. Body: empty, or
//! `{"multitenant": bool, "operator": "0.4"|"0.5", "dry_run": bool}`.

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::Provisioner;
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
    let (head, targets) = super::wadm_work(provisioner, request.multitenant, request.operator);
    let work = Work {
        targets,
        replicas: request.replicas,
    };
    Ok(Prepared::provision(work, request.dry_run, head, None, true))
}
