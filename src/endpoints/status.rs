//! `wasmcloud.provision.status`: a read-only report (a dry run) for a lattice and/or wadm.
//! Body: empty (the `default` lattice and wadm), a lattice name, or
//! `{"lattice": "x", "wadm": true, "multitenant": false, "operator": "0.4"}`.

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::{Provisioner, Target};
use crate::reply::ReplyHead;
use crate::request::StatusRequest;

pub const SPEC: EndpointSpec = EndpointSpec {
    name: "status",
    subject: "wasmcloud.provision.status",
    handler: Handler::Status,
    description:
        "Reports what exists, what would be created or updated, and drift; changes nothing",
    request_schema: "schemas/status_request.json",
    response_schema: "schemas/provision_response.json",
    quiet_when_warm: false,
};

pub fn prepare(provisioner: &Provisioner, body: &[u8]) -> Result<Prepared, ProvisionError> {
    let request = StatusRequest::parse(body)?;
    let (mut head, mut targets) = if request.wadm {
        super::wadm_work(provisioner, request.multitenant, request.operator)
    } else {
        (ReplyHead::provision(), Vec::new())
    };
    if let Some(l) = &request.lattice {
        targets.insert(0, Target::Lattice(l.clone()));
        head.lattice = Some(l.clone());
    }
    // A report: planned, never applied, with the operator's replicas.
    let work = Work {
        targets,
        replicas: None,
    };
    Ok(Prepared::provision(
        work,
        true,
        head,
        request.lattice,
        false,
    ))
}
