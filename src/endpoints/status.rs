//! `wasmcloud.provision.status`: a read-only report (a dry run) for a lattice and/or wadm.
//! Body: empty (the `default` lattice and wadm), a lattice name, or
//! `{"lattice": "x", "wadm": true, "multitenant": false, "operator": "0.4"}`.

use serde_json::{json, Map};

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::error::ProvisionError;
use crate::provisioner::{Provisioner, Target};
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
    let mut targets = Vec::new();
    let mut head = Map::new();
    if let Some(l) = &request.lattice {
        targets.push(Target::Lattice(l.clone()));
        head.insert("lattice".into(), json!(l));
    }
    if request.wadm {
        targets.push(Target::Wadm {
            multitenant: request.multitenant,
        });
        head.insert("wadm".into(), json!(true));
        head.insert("multitenant".into(), json!(request.multitenant));
        if let Some(operator) = request.operator.or(provisioner.operator) {
            head.insert("operator".into(), json!(operator));
            targets.push(Target::Operator(operator));
        }
    }
    // A report: planned, never applied, with the operator's replicas.
    Ok(Prepared {
        work: Work {
            targets,
            replicas: None,
        },
        dry_run: true,
        head,
        lattice: request.lattice,
        same_reply_for_same_work: false,
    })
}
