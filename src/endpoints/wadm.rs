//! `wasmcloud.provision.wadm`: wadm's buckets and streams, `wadm_event_consumer` after the
//! two streams it sources from. Body: empty, or `{"multitenant": bool, "dry_run": bool}`.

use serde_json::{json, Map};

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::Target;
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

pub fn prepare(body: &[u8]) -> Result<Prepared, ProvisionError> {
    let request = WadmRequest::parse(body)?;
    let mut head = Map::new();
    head.insert("wadm".into(), json!(true));
    head.insert("multitenant".into(), json!(request.multitenant));
    Ok(Prepared {
        work: Work {
            targets: vec![Target::Wadm {
                multitenant: request.multitenant,
            }],
            replicas: request.replicas,
        },
        dry_run: request.dry_run,
        head,
        lattice: None,
        same_reply_for_same_work: true,
    })
}
