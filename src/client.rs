//! The client side of the service: what a host, wadm or an init container sends, and how
//! it reads the answer. `bootstrap` (the command with retries) and the examples use it;
//! the reply types are [`crate::reply`]'s, the same the endpoints write.
//!
//! At the top of the layering: it may use anything, and nothing of the service uses it
//! (subjects come from [`crate::subjects`], not from the endpoints).

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::host_auth::sign;
use crate::request::HostRequest;
use crate::subjects::{SIGNATURE_HEADER, SUBJECT_PREFIX};

use crate::reply::HostReply;

/// The requester's side of an error reply: its ADR-32 code and the body's message (the
/// header's text when the body has none), or `None` for a success.
pub fn reply_error(reply: &async_nats::Message) -> Option<(u16, String)> {
    let headers = reply.headers.as_ref()?;
    let code = headers.get(async_nats::service::NATS_SERVICE_ERROR_CODE)?;
    // A code that is not a number is still an error: 500, as nobody expected it.
    let code = code.as_str().trim().parse().unwrap_or(500);
    let message = serde_json::from_slice::<Value>(&reply.payload)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .or_else(|| {
            headers
                .get(async_nats::service::NATS_SERVICE_ERROR)
                .map(|v| v.to_string())
        })
        .unwrap_or_default();
    Some((code, message))
}

/// The scoped bootstrap subject of a lattice: `wasmcloud.provision.host.<lattice>`.
pub fn host_subject(lattice: &str) -> String {
    format!("{SUBJECT_PREFIX}.host.{lattice}")
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
    Ok((host_subject(lattice), headers, body))
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
    if let Some((code, message)) = reply_error(&reply) {
        return Err(format!("{code}: {message}"));
    }
    serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("the bootstrap reply is not understood: {e}"))
}

/// What one attempt came to.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Done(Value),
    /// Worth another attempt; the reason, for the log and the final message.
    Retry(String),
    /// No point asking again.
    Fatal(String),
}

/// Sorts an answer (or its absence) into done, retry and fatal.
pub fn classify(
    subject: &str,
    result: Result<async_nats::Message, async_nats::RequestError>,
) -> Outcome {
    use async_nats::RequestErrorKind as K;
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => {
            return Outcome::Retry(match e.kind() {
                K::NoResponders => "no responders: no provisioner is subscribed yet".into(),
                K::TimedOut => format!(
                    "no answer in time (a provisioner may be busy; or this user may not \
                     publish to {subject}, which the server only logs)"
                ),
                _ => format!("the request failed: {e}"),
            })
        }
    };
    if let Some((code, message)) = reply_error(&reply) {
        return if code >= 500 {
            Outcome::Retry(format!("the provisioner answered {code}: {message}"))
        } else {
            Outcome::Fatal(format!("{subject} answered {code}: {message}"))
        };
    }
    let parsed = serde_json::from_slice::<Value>(&reply.payload)
        .ok()
        .and_then(|v| {
            let resources = ReplyResources::deserialize(&v).ok()?.resources;
            Some((v, resources))
        });
    let Some((reply, resources)) = parsed else {
        return Outcome::Fatal(format!(
            "{subject} answered something that is not the provisioner's reply (no \
             `resources` list): is another service subscribed there?"
        ));
    };
    let pending: Vec<String> = resources
        .iter()
        .filter(|r| !matches!(r.action.as_str(), "created" | "exists" | "updated"))
        .map(|r| format!("{:?} ({:?})", r.name, r.action))
        .collect();
    if pending.is_empty() {
        Outcome::Done(reply)
    } else {
        Outcome::Retry(format!("not ready yet: {}", pending.join(", ")))
    }
}

/// What a client checks in any reply of the service (provisioning or host): the outcome
/// of every resource.
#[derive(Deserialize)]
struct ReplyResources {
    resources: Vec<ResourceState>,
}

#[derive(Deserialize)]
struct ResourceState {
    name: String,
    action: String,
}

/// `2 resources ready (1 created, 1 exists)`.
pub fn summary(reply: &Value) -> String {
    let resources = ReplyResources::deserialize(reply)
        .map(|r| r.resources)
        .unwrap_or_default();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in &resources {
        *counts.entry(r.action.as_str()).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    format!("{total} resources ready ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply(code: Option<&str>, body: Value) -> async_nats::Message {
        let headers = code.map(|c| {
            let mut h = HeaderMap::new();
            h.insert(async_nats::service::NATS_SERVICE_ERROR_CODE, c);
            h.insert(async_nats::service::NATS_SERVICE_ERROR, "text");
            h
        });
        async_nats::Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: body.to_string().into(),
            headers,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn client_errors_are_fatal_server_errors_retried_done_means_all_exist() {
        let s = "wasmcloud.provision.wadm";
        let e = |code: u16| json!({"error": {"code": code, "message": "why"}});
        assert_eq!(
            classify(s, Ok(reply(Some("403"), e(403)))),
            Outcome::Fatal(format!("{s} answered 403: why"))
        );
        assert!(matches!(
            classify(s, Ok(reply(Some("503"), e(503)))),
            Outcome::Retry(m) if m.contains("503: why")
        ));
        let ok = json!({"resources": [{"name": "a", "action": "created"},
                                      {"name": "b", "action": "exists"}]});
        assert_eq!(classify(s, Ok(reply(None, ok.clone()))), Outcome::Done(ok));
        let failed = json!({"resources": [{"name": "a", "action": "failed"}]});
        assert!(matches!(
            classify(s, Ok(reply(None, failed))),
            Outcome::Retry(m) if m.contains("\"a\" (\"failed\")")
        ));
        assert!(matches!(
            classify(s, Ok(reply(None, json!("x")))),
            Outcome::Fatal(m) if m.contains("not the provisioner's")
        ));
    }
}
