//! Requests to the service and its ADR-32 replies, taken apart once for every test.
//!
//! ```ignore
//! let reply = common::reply::call(&client, "wasmcloud.provision.lattice", "prod").await;
//! reply.ok();                      // no error headers, a body valid against its schema
//! let message = reply.error(400);  // both headers, a body with the same code
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};
use async_nats::HeaderMap;
use bytes::Bytes;
use serde_json::{json, Value};

use super::schema::{assert_valid, project_schema};

/// Failsafe for any single reply; never a timing assertion. A reply that takes this
/// long is lost, not slow.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// One reply of the service, with the ADR-32 headers taken apart.
#[derive(Debug, Clone)]
pub struct Reply {
    pub subject: String,
    /// The ADR-32 status: `Nats-Service-Error-Code`, 200 when there is none.
    pub code: u16,
    /// `Nats-Service-Error-Code`, when present.
    pub error_code: Option<u16>,
    /// `Nats-Service-Error`, when present.
    pub error_text: Option<String>,
    /// The payload as text (for checks that nothing leaks).
    pub raw: String,
    pub body: Value,
    /// From sending the request to its reply.
    pub took: Duration,
    /// Every header of the reply (`None`: a success without any).
    pub headers: Option<HeaderMap>,
}

impl Reply {
    /// Takes a reply message apart; panics unless the body is JSON.
    pub fn from_message(subject: &str, message: &async_nats::Message, took: Duration) -> Reply {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let error_code = header(NATS_SERVICE_ERROR_CODE).map(|c| {
            c.parse::<u16>()
                .unwrap_or_else(|_| panic!("Nats-Service-Error-Code is not a number: {c:?}"))
        });
        let raw = String::from_utf8_lossy(&message.payload).into_owned();
        let body = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{subject}: reply is not JSON ({e}): {raw:?}"));
        Reply {
            subject: subject.to_string(),
            code: error_code.unwrap_or(200),
            error_code,
            error_text: header(NATS_SERVICE_ERROR),
            raw,
            body,
            took,
            headers: message.headers.clone(),
        }
    }

    /// `(Nats-Service-Error-Code, body)`.
    pub fn parts(self) -> (Option<u16>, Value) {
        (self.error_code, self.body)
    }

    /// A success: no error headers, a body valid against `schemas/provision_response.json`.
    pub fn ok(&self) -> &Value {
        assert!(
            self.error_code.is_none() && self.error_text.is_none(),
            "{}: expected success, got error headers {:?} {:?}; body {}",
            self.subject,
            self.error_code,
            self.error_text,
            self.body
        );
        assert_valid(
            project_schema("provision_response.json"),
            &self.body,
            "provision reply",
        );
        &self.body
    }

    /// An error with `code`: both headers and a JSON body `{"error":{"code","message"}}`
    /// valid against `schemas/error_response.json`. Returns the message.
    pub fn error(&self, code: u16) -> String {
        assert_eq!(
            self.error_code,
            Some(code),
            "{}: Nats-Service-Error-Code; body {}",
            self.subject,
            self.body
        );
        let header = self
            .error_text
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no Nats-Service-Error header", self.subject));
        assert!(!header.trim().is_empty(), "empty Nats-Service-Error header");
        assert_valid(
            project_schema("error_response.json"),
            &self.body,
            "error reply",
        );
        assert_eq!(self.body["error"]["code"], json!(code), "{}", self.body);
        let message = self.body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error body without a message: {}", self.body));
        assert!(!message.is_empty());
        message.to_string()
    }

    /// Panics unless this is a well-formed ADR-32 error reply with a JSON body.
    pub fn assert_well_formed_error(&self, context: &str) {
        assert!(self.code >= 400, "{context}: not an error: {self:?}");
        assert_eq!(
            self.body["error"]["code"].as_u64(),
            Some(u64::from(self.code)),
            "{context}: body code differs from the header: {self:?}"
        );
        assert!(
            !self.message().is_empty(),
            "{context}: empty message: {self:?}"
        );
        let header = self.error_text.as_deref().unwrap_or_default();
        assert!(
            !header.is_empty() && !header.contains('\n') && !header.contains('\r'),
            "{context}: bad Nats-Service-Error header: {self:?}"
        );
    }

    /// Neither the headers nor the body mention `secret`.
    pub fn assert_silent_about(&self, secret: &str) {
        assert!(
            !self.raw.contains(secret),
            "body reveals {secret:?}: {}",
            self.raw
        );
        assert!(
            !self.error_text.clone().unwrap_or_default().contains(secret),
            "header reveals {secret:?}: {:?}",
            self.error_text
        );
    }

    /// The error message of the body ("" when there is none).
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// Every resource of the body, in order.
    pub fn resources(&self) -> Vec<Value> {
        self.body["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no resources in {}", self.subject, self.body))
            .clone()
    }

    /// The resources keyed by stream name (none when the body lists none).
    pub fn by_stream(&self) -> BTreeMap<String, Value> {
        self.body["resources"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|r| {
                        (
                            r["stream"].as_str().unwrap_or_default().to_string(),
                            r.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `stream -> action` of every resource in the body.
    pub fn actions(&self) -> BTreeMap<String, String> {
        self.resources()
            .iter()
            .map(|r| {
                (
                    r["stream"].as_str().unwrap_or_default().to_string(),
                    r["action"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The report of one resource (a 409 for drift lists them too).
    pub fn resource(&self, stream: &str) -> Value {
        self.resources()
            .into_iter()
            .find(|r| r["stream"] == stream)
            .unwrap_or_else(|| panic!("{stream} missing from {}", self.body))
    }

    /// The action taken on one resource.
    pub fn action(&self, stream: &str) -> String {
        self.resource(stream)["action"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }
}

/// A test client whose plain requests (JetStream API calls included) wait up to
/// [`REPLY_TIMEOUT`], long enough for a loaded CI machine.
pub async fn client(url: &str) -> async_nats::Client {
    super::connect_with(
        url,
        async_nats::ConnectOptions::new().request_timeout(Some(REPLY_TIMEOUT)),
    )
    .await
}

/// Sends `request` on `subject` (its own timeout, or the client's); the reply taken apart.
pub async fn send(
    client: &async_nats::Client,
    subject: &str,
    request: async_nats::Request,
) -> Result<Reply, async_nats::RequestError> {
    let started = Instant::now();
    let message = client.send_request(subject.to_string(), request).await?;
    Ok(Reply::from_message(subject, &message, started.elapsed()))
}

/// A request with `body` (any bytes or text; and `headers`, unless empty) that waits up to [`REPLY_TIMEOUT`].
pub fn request(headers: HeaderMap, body: impl AsRef<[u8]>) -> async_nats::Request {
    let request = async_nats::Request::new()
        .payload(Bytes::copy_from_slice(body.as_ref()))
        .timeout(Some(REPLY_TIMEOUT));
    if headers.is_empty() {
        request
    } else {
        request.headers(headers)
    }
}

/// Sends one request; a reply that does not come within [`REPLY_TIMEOUT`] is an error.
pub async fn try_call(
    client: &async_nats::Client,
    subject: &str,
    body: impl AsRef<[u8]>,
) -> Result<Reply, async_nats::RequestError> {
    send(client, subject, request(HeaderMap::new(), body)).await
}

/// Sends one request and waits for its reply. Panics if none comes (a lost request is
/// always a failure).
pub async fn call(client: &async_nats::Client, subject: &str, body: impl AsRef<[u8]>) -> Reply {
    call_with(client, subject, HeaderMap::new(), body).await
}

/// [`call`] with headers.
pub async fn call_with(
    client: &async_nats::Client,
    subject: &str,
    headers: HeaderMap,
    body: impl AsRef<[u8]>,
) -> Reply {
    send(client, subject, request(headers, body))
        .await
        .unwrap_or_else(|e| panic!("request to {subject}: {e}"))
}
