//! `wasmcloud.provision.lattice` and `wasmcloud.provision.lattice.<l>`: a lattice's buckets.
//!
//! The body is the lattice name as plain text (`nats req wasmcloud.provision.lattice
//! default`), a JSON object (`{"lattice": "default", "dry_run": true}`), or empty for
//! `default`. The scoped form takes the lattice from the subject, so that NATS subject
//! permissions can confine a tenant to its own lattices.

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::Target;
use crate::reply::ReplyHead;
use crate::request::LatticeRequest;

pub const SPEC: EndpointSpec = EndpointSpec {
    name: "lattice",
    subject: "wasmcloud.provision.lattice",
    handler: Handler::Lattice,
    description: "Ensures LATTICEDATA_<lattice> and CONFIGDATA_<lattice>; body: lattice name, JSON, or empty for default",
    request_schema: "schemas/lattice_request.json",
    response_schema: "schemas/provision_response.json",
    quiet_when_warm: true,
};

pub const SCOPED_SPEC: EndpointSpec = EndpointSpec {
    name: "lattice_scoped",
    subject: "wasmcloud.provision.lattice.*",
    handler: Handler::LatticeScoped,
    description: "Like lattice, with the lattice name as the subject's last token (for per-tenant subject permissions)",
    request_schema: "schemas/lattice_request.json",
    response_schema: "schemas/provision_response.json",
    quiet_when_warm: true,
};

pub fn prepare(body: &[u8]) -> Result<Prepared, ProvisionError> {
    Ok(prepared(LatticeRequest::parse(body)?))
}

pub fn prepare_scoped(subject: &str, body: &[u8]) -> Result<Prepared, ProvisionError> {
    let lattice = subject.rsplit('.').next().unwrap_or_default();
    Ok(prepared(LatticeRequest::parse_scoped(lattice, body)?))
}

fn prepared(request: LatticeRequest) -> Prepared {
    let mut head = ReplyHead::provision();
    head.lattice = Some(request.lattice.clone());
    let work = Work {
        targets: vec![Target::Lattice(request.lattice.clone())],
        replicas: request.replicas,
    };
    Prepared::provision(work, request.dry_run, head, Some(request.lattice), true)
}
