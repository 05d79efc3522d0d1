//! The JetStream API calls that backup and restore make, as raw core requests.
//!
//! `jsapi.rs` goes through async-nats's `jetstream::Context`, which has no snapshot or
//! restore. Those two are request/reply exchanges followed by a flow of chunks on
//! subjects the server names, so this module sends plain core requests to
//! `$JS.API.<op>` (or `$JS.<domain>.API.<op>`) and reads the JSON answers itself. It
//! reuses [`JsError`] so that errors read the same as everywhere else.

use std::time::Duration;

use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use serde_json::Value;

use crate::jsapi::{codes, JsError};

/// A connection and the API prefix of the JetStream domain it talks to.
#[derive(Clone)]
pub struct Api {
    client: async_nats::Client,
    prefix: String,
    domain: Option<String>,
    timeout: Duration,
}

impl Api {
    /// `timeout` bounds every API answer (not the chunk flow, see `snapshot.rs`).
    pub fn new(client: async_nats::Client, domain: Option<String>, timeout: Duration) -> Self {
        let prefix = match &domain {
            Some(d) => format!("$JS.{d}.API"),
            None => "$JS.API".to_string(),
        };
        Api {
            client,
            prefix,
            domain,
            timeout,
        }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The full subject of an API operation (`STREAM.SNAPSHOT.x` → `$JS.API.STREAM.SNAPSHOT.x`).
    pub fn subject(&self, op: &str) -> String {
        format!("{}.{op}", self.prefix)
    }

    /// One API request; the answer's JSON, or its `error` as [`JsError::Api`].
    pub async fn request(&self, op: &str, body: Bytes) -> Result<Value, JsError> {
        let subject = self.subject(op);
        let answer = tokio::time::timeout(self.timeout, self.client.request(subject, body)).await;
        let message = match answer {
            Err(_) => return Err(JsError::TimedOut),
            Ok(Err(e)) => {
                return Err(match e.kind() {
                    RequestErrorKind::NoResponders => JsError::NoResponders,
                    RequestErrorKind::TimedOut => JsError::TimedOut,
                    _ => JsError::Other(e.to_string()),
                })
            }
            Ok(Ok(m)) => m,
        };
        parse_answer(&message.payload)
    }

    /// `STREAM.INFO` as the server answers it (config, state, created, cluster), or
    /// `None` when the stream does not exist.
    pub async fn stream_info(&self, stream: &str) -> Result<Option<Value>, JsError> {
        match self
            .request(&format!("STREAM.INFO.{stream}"), Bytes::new())
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.err_code() == Some(codes::STREAM_NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A JetStream API answer: its JSON, or the `error` it carries.
pub fn parse_answer(payload: &[u8]) -> Result<Value, JsError> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| JsError::Other(format!("the answer is not JSON: {e}")))?;
    if let Some(error) = v.get("error").filter(|e| e.is_object()) {
        return Err(JsError::Api {
            code: error["code"].as_u64().unwrap_or(0),
            err_code: error["err_code"].as_u64().unwrap_or(0),
            description: error["description"]
                .as_str()
                .unwrap_or("no description")
                .to_string(),
        });
    }
    Ok(v)
}

/// A [`JsError`] in one line, naming what was attempted and what to check.
pub fn describe(error: &JsError, action: &str, subject: &str, domain: Option<&str>) -> String {
    let where_js = match domain {
        Some(d) => format!("JetStream domain `{d}`"),
        None => "JetStream".to_string(),
    };
    match error {
        JsError::NoResponders => format!(
            "could not {action}: {where_js} is not available to this account (no responders \
             on {subject}): check that JetStream is enabled for the account, and --js-domain"
        ),
        JsError::TimedOut => format!(
            "could not {action}: {where_js} did not answer in time: it may have no quorum, or \
             the user may not publish to `{subject}` (see the server log for a permissions \
             violation); raise --js-timeout on a slow cluster"
        ),
        JsError::Other(m) => format!("could not {action}: {m}"),
        JsError::Api {
            err_code,
            description,
            ..
        } => {
            let hint = match *err_code {
                codes::NO_SUITABLE_PEERS if description.contains("offline") => {
                    ": JetStream has no quorum for it right now (a server it needs is down or \
                     has not reported in): bring the cluster's servers back, then run the \
                     command again"
                }
                codes::NO_SUITABLE_PEERS => {
                    ": the cluster has too few JetStream servers for its replicas; give \
                     --replicas with a smaller number"
                }
                codes::REPLICAS_NOT_SUPPORTED => ": the server is not clustered; give --replicas 1",
                codes::CLUSTER_NOT_AVAILABLE => {
                    ": JetStream has no meta leader; bring a majority of the servers back, \
                     then run the command again"
                }
                codes::INSUFFICIENT_RESOURCES
                | codes::ACCOUNT_RESOURCES_EXCEEDED
                | codes::STORAGE_RESOURCES_EXCEEDED
                | codes::MEMORY_RESOURCES_EXCEEDED
                | codes::MAXIMUM_STREAMS
                | codes::MAX_STREAM_BYTES_EXCEEDED => {
                    ": the account or server has no room for it; raise the account's \
                     JetStream limits"
                }
                _ => "",
            };
            format!("could not {action}: {description} (JetStream error {err_code}){hint}")
        }
    }
}

/// Stream names that are safe as a subject token and as a folder name: what JetStream
/// allows, minus anything a path could abuse. Backup folders are input to `restore`, so a
/// name read from one is checked before it names a file or a subject.
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(c, '.' | '*' | '>' | '/' | '\\' | '\0')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_stream_names_are_refused() {
        for bad in [
            "", ".", "..", "a.b", "a b", "a/b", "..\\x", "*", ">", "a\nb", "a\0b",
        ] {
            assert!(!valid_stream_name(bad), "{bad:?}");
        }
        assert!(!valid_stream_name(&"x".repeat(256)));
        for good in ["KV_CONFIGDATA_default", "wadm_events", "KV_a-b_c"] {
            assert!(valid_stream_name(good), "{good}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let offline = JsError::Api {
            code: 500,
            err_code: codes::NO_SUITABLE_PEERS,
            description: "no suitable peers for placement, peer offline".into(),
        };
        let m = describe(&offline, "restore X", "$JS.API.STREAM.RESTORE.X", None);
        assert!(m.contains("run the command again"), "{m}");
        let single = JsError::Api {
            code: 500,
            err_code: codes::REPLICAS_NOT_SUPPORTED,
            description: "replicas > 1 not supported in non-clustered mode".into(),
        };
        let m = describe(
            &single,
            "restore X",
            "$JS.API.STREAM.RESTORE.X",
            Some("hub"),
        );
        assert!(m.contains("--replicas 1"), "{m}");
        let m = describe(
            &JsError::TimedOut,
            "restore X",
            "$JS.API.STREAM.RESTORE.X",
            Some("hub"),
        );
        assert!(
            m.contains("domain `hub`") && m.contains("STREAM.RESTORE.X"),
            "{m}"
        );
    }

    #[test]
    fn api_errors_are_read_from_the_answer() {
        let e = parse_answer(
            br#"{"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.err_code(), Some(10059));
        assert!(parse_answer(b"not json").is_err());
        assert_eq!(parse_answer(br#"{"ok":1}"#).unwrap()["ok"], 1);
    }
}
