//! `wasmcloud.provision.lattice` and `wasmcloud.provision.lattice.<l>`: a lattice's buckets.
//!
//! The body is the lattice name as plain text (`nats req wasmcloud.provision.lattice
//! default`), a JSON object (`{"lattice": "default", "dry_run": true}`), or empty for
//! `default`. The scoped form takes the lattice from the subject, so that NATS subject
//! permissions can confine a tenant to its own lattices.

use serde_json::{json, Map};

use super::{provision_reply, EndpointSpec, Handler, Reply};
use crate::error::ProvisionError;
use crate::provisioner::{Provisioner, Target};
use crate::request::LatticeRequest;

pub const SPEC: EndpointSpec = EndpointSpec {
    name: "lattice",
    subject: "wasmcloud.provision.lattice",
    handler: Handler::Lattice,
    description: "Ensures LATTICEDATA_<lattice> and CONFIGDATA_<lattice>; body: lattice name, JSON, or empty for default",
    request_schema: "schemas/lattice_request.json",
    response_schema: "schemas/provision_response.json",
};

pub const SCOPED_SPEC: EndpointSpec = EndpointSpec {
    name: "lattice_scoped",
    subject: "wasmcloud.provision.lattice.*",
    handler: Handler::LatticeScoped,
    description: "Like lattice, with the lattice name as the subject's last token (for per-tenant subject permissions)",
    request_schema: "schemas/lattice_request.json",
    response_schema: "schemas/provision_response.json",
};

pub async fn handle(provisioner: &Provisioner, body: &[u8]) -> Result<Reply, ProvisionError> {
    apply(provisioner, LatticeRequest::parse(body)?).await
}

pub async fn handle_scoped(
    provisioner: &Provisioner,
    subject: &str,
    body: &[u8],
) -> Result<Reply, ProvisionError> {
    let lattice = subject.rsplit('.').next().unwrap_or_default();
    apply(provisioner, LatticeRequest::parse_scoped(lattice, body)?).await
}

async fn apply(
    provisioner: &Provisioner,
    request: LatticeRequest,
) -> Result<Reply, ProvisionError> {
    let target = Target::Lattice(request.lattice.clone());
    let reports = provisioner
        .run(&[target], request.replicas, request.dry_run)
        .await?;
    let mut head = Map::new();
    head.insert("lattice".into(), json!(request.lattice));
    provision_reply(
        provisioner,
        head,
        reports,
        request.dry_run,
        Some(request.lattice),
    )
}
