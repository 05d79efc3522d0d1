//! One error type for everything a request can run into, mapped to ADR-32 error codes.
//!
//! Every message is written for the operator reading `nats req` output or a log line: it
//! says what went wrong and what to do next.

use serde_json::{json, Value};

/// The class of an error; each maps to one HTTP-like ADR-32 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or asks for something impossible (400).
    BadRequest,
    /// The requester may not ask for this (403).
    Forbidden,
    /// The request conflicts with what exists or what the server can do (409).
    Conflict,
    /// A limit was reached (429).
    TooMany,
    /// JetStream's limits leave no room for a resource: the account's or server's storage
    /// or stream count (507, HTTP's "Insufficient Storage"). Not the requester's fault, and
    /// retrying does not help until the operator raises a limit or frees room.
    InsufficientStorage,
    /// JetStream is off, unreachable or has no quorum (503).
    Unavailable,
    /// A bug or an answer nobody expected (500).
    Internal,
}

impl ErrorKind {
    /// The ADR-32 `Nats-Service-Error-Code`.
    pub fn code(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::Conflict => 409,
            ErrorKind::TooMany => 429,
            ErrorKind::InsufficientStorage => 507,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// An error reply: kind, a message for the operator, and optional details (such as the
/// per-resource outcome when some resources were done and others were not).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    pub kind: ErrorKind,
    pub message: String,
    pub details: Option<Value>,
}

impl ProvisionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProvisionError {
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn code(&self) -> u16 {
        self.kind.code()
    }

    /// The JSON body of an error reply: `{"error": {"code", "message"}, ...details}`.
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": { "code": self.code(), "message": self.message } });
        if let Some(Value::Object(details)) = &self.details {
            if let Some(obj) = body.as_object_mut() {
                for (k, v) in details {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        body
    }

    /// The `Nats-Service-Error` header: one line, bounded, since headers are not the place
    /// for a whole report (the body has it).
    pub fn header_text(&self) -> String {
        let line: String = self
            .message
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .take(512)
            .collect();
        line
    }
}

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

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_code_message_and_details() {
        let e = ProvisionError::bad_request("bad\nname").with_details(json!({"resources": []}));
        assert_eq!(e.body()["error"]["code"], 400);
        assert_eq!(e.body()["resources"], json!([]));
        assert_eq!(e.header_text(), "bad name");
    }
}
