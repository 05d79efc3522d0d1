//! Who asked for a change: the request (its endpoint, subject and `Nats-Request-Info`) or
//! the command line run that caused it.
//!
//! The service runs each request inside [`with_origin`], and the reconciler captures
//! [`current_origin`] when it starts a change, so the audit event names the request that
//! caused it (with single flight, the first of the concurrent requests for the same
//! resource). `Nats-Request-Info` is nats-server's header naming the requesting client;
//! the server sets it (overwriting any value the client sent) only when the request
//! crosses a service import into the provisioner's account, with user details when the
//! import has `share: true`. Within one account no server sets it, and a client can send
//! the header itself: there it is a claim, not proof.
//!
//! A leaf below the reconciler and the audit trail, which both need it.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::subjects::{MAX_REQUEST_INFO_BYTES, REQUEST_INFO_HEADER};

/// Who or what caused a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Origin {
    /// A request to the service.
    Request {
        endpoint: String,
        subject: String,
        /// The `Nats-Request-Info` header (selected fields), when the request had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_info: Option<Value>,
    },
    /// A command line run (`apply`).
    Cli {
        command: String,
        /// `$USER` of the process, as reported by the environment.
        #[serde(skip_serializing_if = "Option::is_none")]
        os_user: Option<String>,
    },
}

impl Origin {
    /// The origin of a service request, with the fields of `Nats-Request-Info` that
    /// identify the client (not its JWT, nonce or timings), each bounded (see
    /// [`request_info`]). Only that one header is looked up; no other is read.
    pub fn request(endpoint: &str, subject: &str, headers: Option<&async_nats::HeaderMap>) -> Self {
        let request_info = headers
            .and_then(|h| h.get(REQUEST_INFO_HEADER))
            .and_then(|v| request_info(v.as_str()));
        Origin::Request {
            endpoint: bounded(endpoint),
            subject: bounded(subject),
            request_info,
        }
    }
    /// The origin of a command line run.
    pub fn cli(command: &str) -> Self {
        Origin::Cli {
            command: command.to_string(),
            os_user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
        }
    }
}

/// Fields of nats-server's `ClientInfo` kept in events: account, service account, user,
/// connection name and id, host, server and cluster, kind, client type, tags, issuer.
pub(crate) const REQUEST_INFO_FIELDS: &[&str] = &[
    "acc",
    "svc",
    "user",
    "name",
    "name_tag",
    "tags",
    "issuer_key",
    "host",
    "id",
    "server",
    "cluster",
    "kind",
    "client_type",
    "lang",
    "ver",
];

/// The most characters kept of any one string from a request (a field of
/// `Nats-Request-Info`, a tag, the endpoint or subject); longer ones are cut, and the
/// request info says `"truncated": true`.
pub const MAX_FIELD_CHARS: usize = 256;
/// The most tags kept from `Nats-Request-Info`.
pub const MAX_TAGS: usize = 16;

/// At most [`MAX_FIELD_CHARS`] characters of `s`, and whether it was cut.
fn cut(s: &str) -> (String, bool) {
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        Some((end, _)) => (s[..end].to_string(), true),
        None => (s.to_string(), false),
    }
}

fn bounded(s: &str) -> String {
    cut(s).0
}

/// The identity fields of a `Nats-Request-Info` value, each bounded and of the type
/// nats-server gives it (others are dropped); `None` when the value is not a JSON object
/// or has none of them.
pub fn request_info(raw: &str) -> Option<Value> {
    let mut kept = Map::new();
    if raw.len() > MAX_REQUEST_INFO_BYTES {
        kept.insert("truncated".into(), Value::Bool(true));
        return Some(Value::Object(kept));
    }
    let Ok(Value::Object(all)) = serde_json::from_str::<Value>(raw) else {
        return None;
    };
    let mut truncated = false;
    for (key, value) in all {
        let Some(&field) = REQUEST_INFO_FIELDS.iter().find(|f| **f == key) else {
            continue;
        };
        let value = match (field, value) {
            ("id", Value::Number(n)) if n.is_u64() => Value::Number(n),
            ("tags", Value::Array(tags)) => {
                truncated |= tags.len() > MAX_TAGS;
                let tags: Vec<Value> = tags
                    .iter()
                    .filter_map(Value::as_str)
                    .take(MAX_TAGS)
                    .map(|t| {
                        let (t, was_cut) = cut(t);
                        truncated |= was_cut;
                        Value::String(t)
                    })
                    .collect();
                Value::Array(tags)
            }
            (f, Value::String(text)) if f != "id" && f != "tags" => {
                let (text, was_cut) = cut(&text);
                truncated |= was_cut;
                Value::String(text)
            }
            _ => continue,
        };
        kept.insert(field.to_string(), value);
    }
    if truncated {
        kept.insert("truncated".into(), Value::Bool(true));
    }
    (!kept.is_empty()).then_some(Value::Object(kept))
}

tokio::task_local! {
    static ORIGIN: Arc<Origin>;
}

/// Runs `f` with `origin` as the cause of any change it makes.
pub async fn with_origin<F: Future>(origin: Origin, f: F) -> F::Output {
    ORIGIN.scope(Arc::new(origin), f).await
}

/// The origin of the running request, if any.
pub fn current_origin() -> Option<Arc<Origin>> {
    ORIGIN.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_info_keeps_identity_fields_only() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            REQUEST_INFO_HEADER,
            r#"{"acc":"HOSTS","user":"host-1","jwt":"eyJ...","nonce":"n","rtt":1000}"#,
        );
        let Origin::Request { request_info, .. } =
            Origin::request("wadm", "wasmcloud.provision.wadm", Some(&headers))
        else {
            panic!("not a request origin");
        };
        assert_eq!(
            request_info,
            Some(json!({"acc": "HOSTS", "user": "host-1"}))
        );
        let Origin::Request { request_info, .. } = Origin::request("wadm", "s", None) else {
            panic!("not a request origin");
        };
        assert_eq!(request_info, None);
    }

    #[test]
    fn request_info_is_bounded_field_by_field() {
        let long = "é".repeat(2000);
        let tags: Vec<String> = (0..100).map(|i| format!("tag{i}")).collect();
        let raw = json!({
            "acc": "HOSTS", "user": long, "name": {"nested": "object"}, "id": 7,
            "tags": tags, "jwt": "x".repeat(3000), "server": 12
        })
        .to_string();
        let info = request_info(&raw).expect("kept fields");
        assert_eq!(info["acc"], "HOSTS");
        assert_eq!(
            info["user"].as_str().unwrap().chars().count(),
            MAX_FIELD_CHARS
        );
        assert_eq!(info["tags"].as_array().unwrap().len(), MAX_TAGS);
        assert_eq!(info["id"], 7);
        assert_eq!(info["truncated"], true);
        // Wrong types are dropped, not passed on.
        assert!(
            info.get("name").is_none() && info.get("server").is_none(),
            "{info}"
        );
        assert!(info.get("jwt").is_none());
        // A header too large to parse is recorded as such.
        let huge = json!({ "acc": "A", "user": "u".repeat(MAX_REQUEST_INFO_BYTES) }).to_string();
        assert_eq!(request_info(&huge), Some(json!({ "truncated": true })));
        // An ordinary one is kept whole, without the flag.
        let info = request_info(r#"{"acc":"A","user":"u","tags":["a"]}"#).unwrap();
        assert_eq!(info, json!({"acc": "A", "user": "u", "tags": ["a"]}));
        assert_eq!(request_info("not json"), None);
        assert_eq!(request_info(r#"["a"]"#), None);
    }

    #[tokio::test]
    async fn origin_is_scoped_to_the_request() {
        assert!(current_origin().is_none());
        let seen = with_origin(Origin::cli("apply"), async { current_origin() }).await;
        assert_eq!(seen.as_deref(), Some(&Origin::cli("apply")));
    }
}
