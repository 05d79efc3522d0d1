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
//! carry header [`SIGNATURE_HEADER`]: the Ed25519 signature of the **exact body bytes** by
//! the host's nkey (the seed behind `host_id`), base64url without padding. The body must
//! then also carry `issued_at` (Unix seconds) within `--host-signature-max-age` of the
//! service's clock and, on the scoped subject, name its `lattice`, since the signature
//! covers the body only. A signature that is present is always checked, required or not.
//!
//! Replay: a captured signed request can be sent again until `issued_at` is too old. That
//! is bounded but not prevented: a replay only repeats the same idempotent ensure of the
//! same lattice for the same host (the service never deletes anything), so the window
//! limits what a captured request is worth instead of tracking nonces across instances.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::info;

use super::{EndpointSpec, Handler, Prepared, Work};
use crate::catalog::App;
use crate::error::{ErrorKind, ProvisionError};
use crate::permissions;
use crate::policy::HostAuth;
use crate::provisioner::{Provisioner, Target};
use crate::request::{self, DEFAULT_LATTICE};

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

pub use crate::subjects::SIGNATURE_HEADER;

/// How far ahead of the service's clock a signed request's `issued_at` may be: clock skew
/// between well-run machines, far less than the max age (a request issued in the future
/// could otherwise be replayed for its lead plus the max age).
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(30);

/// The scoped bootstrap subject of a lattice.
pub fn scoped_subject(lattice: &str) -> String {
    format!("{}.{lattice}", SPEC.subject)
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<String>,
    pub host_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Unix seconds when the host made the request; required when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// The reply a host binds from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HostReply {
    pub lattice: String,
    pub host_id: String,
    pub js_domain: Option<String>,
    /// Bucket names by catalog key (`latticedata`, `configdata`).
    pub buckets: BTreeMap<String, String>,
    pub signed: bool,
    pub dry_run: bool,
    pub resources: Vec<Value>,
}

/// Checks that `host_id` is an nkey server public key (`N…`, with a valid checksum).
pub fn validate_host_id(host_id: &str) -> Result<(), ProvisionError> {
    let shown: String = host_id.chars().take(60).collect();
    let kp = nkeys::KeyPair::from_public_key(host_id).map_err(|e| {
        ProvisionError::bad_request(format!(
            "host_id {shown:?} is not a valid nkey public key ({e}): send the host's server \
             public key, 56 characters starting with N (the host ID the host logs at start)"
        ))
    })?;
    if kp.key_pair_type() != nkeys::KeyPairType::Server {
        return Err(ProvisionError::bad_request(format!(
            "host_id {shown:?} is a {:?} key, not a server key: send the host's server public \
             key (it starts with N)",
            kp.key_pair_type()
        )));
    }
    Ok(())
}

/// Signs a request body with a host's key: the [`SIGNATURE_HEADER`] value.
pub fn sign(host_key: &nkeys::KeyPair, body: &[u8]) -> Result<String, String> {
    let signature = host_key
        .sign(body)
        .map_err(|e| format!("cannot sign with the host key (is it a seed?): {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
}

fn forbidden(message: String) -> ProvisionError {
    ProvisionError::new(ErrorKind::Forbidden, message)
}

/// Applies the service's host policy: whether a signature is needed and valid, whether the
/// key is trusted and the request fresh. Returns whether the request was signed.
pub fn authenticate(
    auth: &HostAuth,
    request: &HostRequest,
    body: &[u8],
    signature: Option<&str>,
    now: SystemTime,
) -> Result<bool, ProvisionError> {
    if let Some(trusted) = &auth.trusted {
        if !trusted.contains(&request.host_id) {
            return Err(forbidden(format!(
                "host {} is not among this provisioner's trusted host keys: ask its operator \
                 to add the key with --trusted-host-key or to --trusted-host-keys-file",
                request.host_id
            )));
        }
    }
    let Some(signature) = signature else {
        if auth.require_signed {
            return Err(forbidden(format!(
                "this provisioner requires signed host requests: sign the exact body bytes \
                 with the host's nkey seed and send the signature, base64url-encoded, in the \
                 {SIGNATURE_HEADER} header (with `issued_at` in the body)"
            )));
        }
        return Ok(false);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.trim().trim_end_matches('='))
        .map_err(|e| {
            forbidden(format!(
                "the {SIGNATURE_HEADER} header is not base64url ({e}): send the Ed25519 \
                 signature of the body encoded as base64url"
            ))
        })?;
    let key = nkeys::KeyPair::from_public_key(&request.host_id)
        .map_err(|e| ProvisionError::bad_request(format!("host_id is not a public key: {e}")))?;
    key.verify(body, &bytes).map_err(|_| {
        forbidden(format!(
            "the {SIGNATURE_HEADER} signature does not verify against host_id {} over the \
             request body: sign the exact body bytes that are sent, with the seed of that host \
             key",
            request.host_id
        ))
    })?;
    let Some(issued_at) = request.issued_at else {
        return Err(forbidden(
            "a signed host request must carry `issued_at` (Unix seconds) in the body, so that \
             it cannot be replayed later"
                .into(),
        ));
    };
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    // A request from the future would stay valid for its lead plus the whole max age:
    // only a small clock skew is tolerated ahead.
    let ahead = issued_at.saturating_sub(now_secs);
    let allowed_ahead = MAX_CLOCK_AHEAD.min(auth.max_age).as_secs() as i64;
    if ahead > allowed_ahead {
        return Err(forbidden(format!(
            "the signed request's issued_at is {ahead} s ahead of the provisioner's clock; at \
             most {allowed_ahead} s of clock skew is accepted: sign with the current time, and \
             check the host's clock (NTP)"
        )));
    }
    let skew = now_secs.saturating_sub(issued_at).unsigned_abs();
    if skew > auth.max_age.as_secs() {
        return Err(forbidden(format!(
            "the signed request's issued_at is {skew} s away from the provisioner's clock; the \
             limit is {} s: send a freshly signed request, and check the host's clock (NTP)",
            auth.max_age.as_secs()
        )));
    }
    Ok(true)
}

pub fn prepare(
    provisioner: &Provisioner,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Prepared, ProvisionError> {
    let request: HostRequest = request::parse_host_json(body)?;
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
    let request: HostRequest = request::parse_host_json(body)?;
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
    let buckets: Map<String, Value> = permissions::buckets_for(App::Host, &lattice)
        .into_iter()
        .map(|(key, name)| (key.to_string(), json!(name)))
        .collect();
    let mut head = Map::new();
    head.insert("lattice".into(), json!(lattice));
    head.insert("host_id".into(), json!(request.host_id));
    head.insert("signed".into(), json!(signed));
    head.insert("buckets".into(), Value::Object(buckets));
    Ok(Prepared {
        work: Work {
            targets: vec![Target::Lattice(lattice.clone())],
            replicas: None,
        },
        dry_run: request.dry_run,
        head,
        lattice: Some(lattice),
        same_reply_for_same_work: false,
    })
}

/// The host side: builds and signs a bootstrap request for the scoped subject. Returns the
/// subject, the headers (the signature) and the body. `wasmcloud-provisioner bootstrap host`
/// sends it with retries; [`request_bootstrap`] sends it once.
pub fn signed_request(
    host_key: &nkeys::KeyPair,
    lattice: &str,
    version: Option<&str>,
) -> Result<(String, HeaderMap, Vec<u8>), String> {
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?
        .as_secs() as i64;
    let request = HostRequest {
        lattice: Some(lattice.to_string()),
        host_id: host_key.public_key(),
        version: version.map(str::to_string),
        issued_at: Some(issued_at),
        dry_run: false,
    };
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, sign(host_key, &body)?.as_str());
    Ok((scoped_subject(lattice), headers, body))
}

/// The host side: builds, signs and sends a bootstrap request on the scoped subject, and
/// returns the reply or the service's error as `"<code>: <message>"`. Used by
/// `examples/host_bootstrap.rs` and the tests.
pub async fn request_bootstrap(
    client: &async_nats::Client,
    host_key: &nkeys::KeyPair,
    lattice: &str,
    version: Option<&str>,
) -> Result<HostReply, String> {
    let (subject, headers, body) = signed_request(host_key, lattice, version)?;
    let reply = client
        .request_with_headers(subject.clone(), headers, body.into())
        .await
        .map_err(|e| {
            format!(
                "the bootstrap request to {subject} failed: {e} (is the provisioner running, \
                 and may this user publish there?)"
            )
        })?;
    if let Some((code, message)) = crate::error::reply_error(&reply) {
        return Err(format!("{code}: {message}"));
    }
    serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("the bootstrap reply is not understood: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn request(kp: &nkeys::KeyPair, issued_at: Option<i64>) -> (HostRequest, Vec<u8>) {
        let r = HostRequest {
            lattice: Some("default".into()),
            host_id: kp.public_key(),
            version: None,
            issued_at,
            dry_run: false,
        };
        let body = serde_json::to_vec(&r).unwrap();
        (r, body)
    }

    fn now() -> (SystemTime, i64) {
        let t = SystemTime::now();
        (t, t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64)
    }

    #[test]
    fn host_ids_must_be_server_keys() {
        assert!(validate_host_id(&nkeys::KeyPair::new_server().public_key()).is_ok());
        let user = nkeys::KeyPair::new_user().public_key();
        assert!(validate_host_id(&user)
            .unwrap_err()
            .message
            .contains("server"));
        let mut bad = nkeys::KeyPair::new_server().public_key();
        bad.replace_range(10..11, if &bad[10..11] == "A" { "B" } else { "A" });
        assert_eq!(validate_host_id(&bad).unwrap_err().code(), 400);
        assert!(validate_host_id("N").is_err());
    }

    #[test]
    fn signatures_are_checked_against_host_id_and_body() {
        let kp = nkeys::KeyPair::new_server();
        let (t, secs) = now();
        let (r, body) = request(&kp, Some(secs));
        let sig = sign(&kp, &body).unwrap();
        let required = HostAuth {
            require_signed: true,
            ..Default::default()
        };
        assert!(authenticate(&required, &r, &body, Some(&sig), t).unwrap());
        // Unsigned, when required.
        assert_eq!(
            authenticate(&required, &r, &body, None, t)
                .unwrap_err()
                .code(),
            403
        );
        // Unsigned and not required: served, not signed.
        assert!(!authenticate(&HostAuth::default(), &r, &body, None, t).unwrap());
        // Another body, another key, garbage.
        let mut other = body.clone();
        other.push(b' ');
        assert!(authenticate(&required, &r, &other, Some(&sig), t).is_err());
        let thief = nkeys::KeyPair::new_server();
        let forged = sign(&thief, &body).unwrap();
        assert!(authenticate(&required, &r, &body, Some(&forged), t).is_err());
        assert!(authenticate(&required, &r, &body, Some("***"), t).is_err());
        // A bad signature is refused even when signatures are optional.
        assert!(authenticate(&HostAuth::default(), &r, &body, Some(&forged), t).is_err());
    }

    #[test]
    fn signed_requests_must_be_fresh_and_trusted() {
        let kp = nkeys::KeyPair::new_server();
        let (t, secs) = now();
        let auth = HostAuth {
            require_signed: true,
            trusted: None,
            max_age: Duration::from_secs(60),
            ..Default::default()
        };
        for (issued_at, ok) in [
            (None, false),
            (Some(secs - 3600), false),
            (Some(secs + 3600), false),
            (Some(secs - 30), true),
            // Ahead of the clock: a small skew only, well under the max age.
            (Some(secs + 10), true),
            (Some(secs + 30), true),
            (Some(secs + 31), false),
            (Some(secs + 59), false),
            (Some(i64::MAX), false),
            (Some(i64::MIN), false),
        ] {
            let (r, body) = request(&kp, issued_at);
            let sig = sign(&kp, &body).unwrap();
            assert_eq!(
                authenticate(&auth, &r, &body, Some(&sig), t).is_ok(),
                ok,
                "{issued_at:?}"
            );
        }
        let (r, body) = request(&kp, Some(secs));
        let sig = sign(&kp, &body).unwrap();
        let pinned = HostAuth {
            trusted: Some(HashSet::from([nkeys::KeyPair::new_server().public_key()])),
            ..auth
        };
        let e = authenticate(&pinned, &r, &body, Some(&sig), t).unwrap_err();
        assert!(e.message.contains("trusted"), "{}", e.message);
    }

    #[test]
    fn request_schema_accepts_what_the_client_sends() {
        let kp = nkeys::KeyPair::new_server();
        let (_, body) = request(&kp, Some(1));
        let parsed: HostRequest = request::parse_host_json(&body).unwrap();
        assert_eq!(parsed.host_id, kp.public_key());
        assert!(request::parse_host_json::<HostRequest>(br#"{"host_id":"Nx"}"#).is_err());
        assert!(request::parse_host_json::<HostRequest>(
            format!(r#"{{"host_id":"{}","extra":1}}"#, kp.public_key()).as_bytes()
        )
        .is_err());
    }
}
