//! One error type for everything a request can run into, mapped to ADR-32 error codes.
//!
//! Every message is written for the operator reading `nats req` output or a log line: it
//! says what went wrong and what to do next.

use serde_json::{json, Map, Value};

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

/// An error reply: kind, a message for the operator, and what the request did before it
/// failed, when it got that far (the per-resource outcome when some resources were done and
/// others were not, or the whole reply of a 409 for drift).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    pub kind: ErrorKind,
    pub message: String,
    /// Boxed: most errors have none, and a `Result` carries the error by value.
    pub outcome: Option<Box<Outcome>>,
}

/// What a failed request did, typed for the readers of an error (metrics count
/// `resources` by action, logs name the `lattice`) and rendered into its body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The lattice the request was about, if any.
    pub lattice: Option<String>,
    /// Every resource of the request, in order.
    pub resources: Vec<ResourceOutcome>,
    /// The body's other fields, as written by the layer that knows their types (a 409 for
    /// drift carries its whole reply): rendered only, never read back.
    fields: Map<String, Value>,
}

/// One resource's outcome in an error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceOutcome {
    /// Bucket or stream name as users know it.
    pub name: String,
    /// The reply's `action`: `created`, `exists`, … as in a success reply, or [`FAILED`].
    pub action: &'static str,
    /// Its entry in the body's `resources` (rendered once, when the error is made).
    entry: Value,
}

/// The `action` of a resource whose JetStream call failed.
pub const FAILED: &str = "failed";

impl Outcome {
    pub fn new(lattice: Option<String>) -> Self {
        Outcome {
            lattice,
            ..Default::default()
        }
    }

    /// Adds a resource: its name, its action and its entry in the body.
    pub fn resource(
        mut self,
        name: &str,
        action: &'static str,
        entry: impl serde::Serialize,
    ) -> Self {
        self.resources.push(ResourceOutcome {
            name: name.to_string(),
            action,
            entry: serde_json::to_value(entry).unwrap_or(Value::Null),
        });
        self
    }

    /// The body's other fields: an object's (a reply's), `resources` and `error` aside.
    pub fn with_fields(mut self, fields: Value) -> Self {
        if let Value::Object(mut map) = fields {
            map.remove("resources");
            map.remove("error");
            self.fields = map;
        }
        self
    }
}

impl ProvisionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProvisionError {
            kind,
            message: message.into(),
            outcome: None,
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

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(Box::new(outcome));
        self
    }

    /// The lattice the failed request was about, when its outcome names one.
    pub fn lattice(&self) -> Option<&str> {
        self.outcome.as_ref()?.lattice.as_deref()
    }

    pub fn code(&self) -> u16 {
        self.kind.code()
    }

    /// The JSON body of an error reply: `{"error": {"code", "message"}}`, and with an
    /// outcome its fields and `resources` (keys sorted, as a `Value` writes them).
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(outcome) = &self.outcome {
            body.extend(outcome.fields.clone());
            let entries = outcome.resources.iter().map(|r| r.entry.clone()).collect();
            body.insert("resources".into(), Value::Array(entries));
        }
        body.insert(
            "error".into(),
            json!({ "code": self.code(), "message": self.message }),
        );
        Value::Object(body)
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

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_code_message_and_details() {
        let e = ProvisionError::bad_request("bad\nname").with_outcome(Outcome::default());
        assert_eq!(e.body()["error"]["code"], 400);
        assert_eq!(e.body()["resources"], json!([]));
        assert_eq!(e.header_text(), "bad name");
    }

    /// An outcome renders as the old details did: the reply's fields beside `error`, and
    /// every resource's entry in order; its typed side is what metrics and logs read.
    #[test]
    fn an_outcome_is_typed_for_readers_and_rendered_in_the_body() {
        let reply = json!({"lattice": "x", "dry_run": false, "resources": null, "error": 1});
        let outcome = Outcome::new(Some("x".into()))
            .with_fields(reply)
            .resource("A", "created", json!({"name": "A", "action": "created"}))
            .resource("B", FAILED, json!({"name": "B", "action": FAILED}));
        let e = ProvisionError::new(ErrorKind::Conflict, "drift").with_outcome(outcome);
        assert_eq!(e.lattice(), Some("x"));
        let actions: Vec<_> = e
            .outcome
            .iter()
            .flat_map(|o| &o.resources)
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["created", "failed"]);
        assert_eq!(
            e.body(),
            json!({
                "error": {"code": 409, "message": "drift"},
                "lattice": "x",
                "dry_run": false,
                "resources": [{"name": "A", "action": "created"}, {"name": "B", "action": "failed"}],
            })
        );
        assert_eq!(ProvisionError::internal("x").lattice(), None);
    }
}
