//! `wasmcloud.provision.host` and `wasmcloud.provision.host.<l>`: a host's bootstrap at
//! first start.
//!
//! Body (schema `schemas/host_request.json`):
//! `{"lattice": "default", "host_id": "N…", "version": "1.9.2", "issued_at": 1767225600}`.
//! The service checks that `host_id` is a valid nkey server public key, ensures the
//! lattice's buckets like `lattice` does, and answers what the host binds: the buckets by
//! catalog key, the JetStream domain and the per-resource outcome
//! (`schemas/host_response.json`). The scoped subject takes the lattice from its last token,
//! so that a host's NATS permissions can name its own lattices only; a body naming another
//! lattice is refused (403).
//!
//! ## Proof of possession
//! With `serve --require-signed-hosts` (implied by `--trusted-host-key`), a request must
//! carry header [`SIGNATURE_HEADER`], the host's signature of the exact body bytes; the
//! rules (freshness, trusted keys, keys bound to lattices, replay) are in
//! [`crate::host_auth`]. The host's side (building and signing a request) is `client.rs`.

use std::time::SystemTime;

use async_nats::HeaderMap;
use tracing::info;

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::catalog::App;
use crate::error::{ErrorKind, ProvisionError};
use crate::host_auth::{authenticate, validate_host_id};
use crate::provisioner::{Provisioner, Target};
use crate::reply::{buckets_for, HostReply, ReplyHead};
use crate::request::{self, HostRequest, DEFAULT_LATTICE};
use crate::subjects::SIGNATURE_HEADER;

pub const SPEC: EndpointSpec = EndpointSpec {
    name: "host",
    subject: "wasmcloud.provision.host",
    handler: Handler::Host,
    description: "A host's bootstrap: validates host_id, ensures the lattice's buckets and replies what to bind",
    request_schema: "schemas/host_request.json",
    response_schema: "schemas/host_response.json",
    quiet_when_warm: false,
};

pub const SCOPED_SPEC: EndpointSpec = EndpointSpec {
    name: "host_scoped",
    subject: "wasmcloud.provision.host.*",
    handler: Handler::HostScoped,
    description: "Like host, with the lattice name as the subject's last token (for per-tenant subject permissions)",
    request_schema: "schemas/host_request.json",
    response_schema: "schemas/host_response.json",
    quiet_when_warm: false,
};

/// The scoped bootstrap subject of a lattice.
pub fn scoped_subject(lattice: &str) -> String {
    format!("{}.{lattice}", SPEC.subject)
}

fn forbidden(message: String) -> ProvisionError {
    ProvisionError::new(ErrorKind::Forbidden, message)
}

pub fn prepare(
    provisioner: &Provisioner,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Prepared, ProvisionError> {
    let request = HostRequest::parse(body)?;
    let lattice = request
        .lattice
        .clone()
        .unwrap_or_else(|| DEFAULT_LATTICE.to_string());
    prepared(provisioner, request, lattice, false, headers, body)
}

pub fn prepare_scoped(
    provisioner: &Provisioner,
    subject: &str,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Prepared, ProvisionError> {
    let lattice = subject.rsplit('.').next().unwrap_or_default().to_string();
    request::validate_lattice(&lattice)?;
    let request = HostRequest::parse(body)?;
    if let Some(named) = &request.lattice {
        if named != &lattice {
            return Err(forbidden(format!(
                "the subject names lattice `{lattice}` but the body names `{named}`: send the \
                 request to {} instead",
                scoped_subject(named)
            )));
        }
    }
    prepared(provisioner, request, lattice, true, headers, body)
}

/// Checks the host's identity and signature; the buckets it binds go into the reply.
fn prepared(
    provisioner: &Provisioner,
    request: HostRequest,
    lattice: String,
    scoped: bool,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Prepared, ProvisionError> {
    validate_host_id(&request.host_id)?;
    request::validate_lattice(&lattice)?;
    let signature = headers
        .and_then(|h| h.get(SIGNATURE_HEADER))
        .map(|v| v.as_str());
    let signed = authenticate(
        &provisioner.host_auth,
        &request,
        body,
        signature,
        SystemTime::now(),
    )?;
    if signed && scoped && request.lattice.is_none() {
        return Err(forbidden(format!(
            "a signed host request must name its lattice in the body (the signature covers \
             the body only): add \"lattice\": \"{lattice}\""
        )));
    }
    // Trusted keys are always signed, and the signed body names the lattice (or means
    // `default`), so the binding holds for what the key's owner signed.
    provisioner
        .host_auth
        .check_lattice(&request.host_id, &lattice)?;
    info!(
        host_id = %request.host_id,
        version = request.version.as_deref().unwrap_or("-"),
        signed,
        "host bootstrap"
    );
    let head = HostReply {
        buckets: buckets_for(App::Host, &lattice),
        dry_run: false,
        host_id: request.host_id,
        js_domain: None,
        lattice: lattice.clone(),
        resources: (),
        signed,
    };
    Ok(Prepared {
        work: Work {
            targets: vec![Target::Lattice(lattice.clone())],
            replicas: None,
        },
        dry_run: request.dry_run,
        head: ReplyHead::Host(Box::new(head)),
        lattice: Some(lattice),
        same_reply_for_same_work: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client builds the subject from the prefix (it may not import the endpoints).
    #[test]
    fn the_client_sends_to_the_scoped_subject() {
        assert_eq!(crate::client::host_subject("x"), scoped_subject("x"));
        assert_eq!(SCOPED_SPEC.subject.replace('*', "x"), scoped_subject("x"));
    }

    #[test]
    fn request_schema_accepts_what_the_client_sends() {
        let kp = nkeys::KeyPair::new_server();
        let r = HostRequest {
            lattice: Some("default".into()),
            host_id: kp.public_key(),
            version: None,
            issued_at: Some(1),
            dry_run: false,
        };
        let body = serde_json::to_vec(&r).unwrap();
        let parsed: HostRequest = request::parse_host_json(&body).unwrap();
        assert_eq!(parsed.host_id, kp.public_key());
        assert!(request::parse_host_json::<HostRequest>(br#"{"host_id":"Nx"}"#).is_err());
        assert!(request::parse_host_json::<HostRequest>(
            format!(r#"{{"host_id":"{}","extra":1}}"#, kp.public_key()).as_bytes()
        )
        .is_err());
    }
}
