//! `wasmcloud.provision.wadm`: wadm's buckets and streams, `wadm_event_consumer` after the
//! two streams it sources from. Body: empty, or `{"multitenant": bool, "dry_run": bool}`.

use serde_json::{json, Map};

use super::{provision_reply, EndpointSpec, Handler, Reply};
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
};

pub async fn handle(provisioner: &Provisioner, body: &[u8]) -> Result<Reply, ProvisionError> {
    let request = WadmRequest::parse(body)?;
    let target = Target::Wadm {
        multitenant: request.multitenant,
    };
    let reports = provisioner
        .run(&[target], request.replicas, request.dry_run)
        .await?;
    let mut head = Map::new();
    head.insert("wadm".into(), json!(true));
    head.insert("multitenant".into(), json!(request.multitenant));
    provision_reply(provisioner, head, reports, request.dry_run, None)
}
