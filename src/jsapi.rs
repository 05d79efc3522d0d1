//! The three JetStream API calls the provisioner makes: stream info, create and update.
//!
//! They go through async-nats's `jetstream::Context::request` (which applies the API
//! prefix, including a JetStream domain) but carry the stream config as raw JSON rather
//! than async-nats's typed `stream::Config`. Two reasons:
//! - an update must start from the stream's *current* full config; a typed round trip
//!   drops any field the client library does not know (a newer server's setting), which
//!   would silently reset it;
//! - the create payload must be exactly the catalog's, field for field.
//!
//! There is deliberately no delete or purge here: the provisioner never loses data.

use std::time::Duration;

use async_nats::jetstream::{self, context::RequestErrorKind, response::Response, ErrorCode};
use serde_json::{json, Value};

mod explain;

/// The error codes other modules match on (`reconcile`, `backup/`), as async-nats names
/// them in [`ErrorCode`]: numbers, since [`JsError::Api`] carries the wire's. New code
/// matches [`JsError::error_code`] against `ErrorCode`'s constants instead.
pub mod codes {
    use async_nats::jetstream::ErrorCode;

    pub const STREAM_NOT_FOUND: u64 = ErrorCode::STREAM_NOT_FOUND.0;
    /// Stream name already in use with a different configuration.
    pub const STREAM_NAME_IN_USE: u64 = ErrorCode::STREAM_NAME_EXIST.0;
    pub const CLUSTER_NOT_AVAILABLE: u64 = ErrorCode::CLUSTER_NOT_AVAILABLE.0;
    pub const NO_SUITABLE_PEERS: u64 = ErrorCode::CLUSTER_NO_PEERS.0;
    pub const REPLICAS_NOT_SUPPORTED: u64 = ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED.0;
    pub const INSUFFICIENT_RESOURCES: u64 = ErrorCode::INSUFFICIENT_RESOURCES.0;
    pub const ACCOUNT_RESOURCES_EXCEEDED: u64 = ErrorCode::ACCOUNT_RESOURCES_EXCEEDED.0;
    pub const STORAGE_RESOURCES_EXCEEDED: u64 = ErrorCode::STORAGE_RESOURCES_EXCEEDED.0;
    pub const MEMORY_RESOURCES_EXCEEDED: u64 = ErrorCode::MEMORY_RESOURCES_EXCEEDED.0;
    pub const MAXIMUM_STREAMS: u64 = ErrorCode::MAXIMUM_STREAMS_LIMIT.0;
    pub const MAX_STREAM_BYTES_EXCEEDED: u64 = ErrorCode::STREAM_MAX_STREAM_BYTES_EXCEEDED.0;
}

/// Why a stream on a server that is not clustered cannot have more than 1 replica.
pub const NOT_CLUSTERED_HINT: &str =
    "the JetStream server is not clustered, so a stream can have only 1 replica: ask for \
     replicas 1 (the request's `replicas`, --replicas or the config file), or run a JetStream \
     cluster of at least as many servers as replicas";

/// A JetStream API call the provisioner makes, as an error message names it.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// `STREAM.INFO` of a stream.
    Lookup(&'a str),
    /// `STREAM.CREATE` of a stream.
    Create(&'a str),
    /// `STREAM.UPDATE` of a stream, raising its replicas to this number.
    RaiseReplicas(&'a str, u64),
    /// `STREAM.NAMES`, to count the lattices for `--max-lattices`.
    CountLattices,
}

impl Call<'_> {
    /// What was attempted, for "could not …".
    fn action(&self) -> String {
        match self {
            Call::Lookup(stream) => format!("look up stream {stream}"),
            Call::Create(stream) => format!("create stream {stream}"),
            Call::RaiseReplicas(stream, to) => format!("raise the replicas of {stream} to {to}"),
            Call::CountLattices => "count the existing lattices (for --max-lattices)".into(),
        }
    }

    /// The API subject, for permission hints. A server in a domain maps `$JS.<d>.API` to
    /// `$JS.API` before checking permissions, so hints always name `$JS.API`
    /// (spec/permissions.md).
    fn subject(&self) -> String {
        let (op, stream) = match self {
            Call::Lookup(stream) => ("INFO", *stream),
            Call::Create(stream) => ("CREATE", *stream),
            Call::RaiseReplicas(stream, _) => ("UPDATE", *stream),
            Call::CountLattices => return "$JS.API.STREAM.NAMES".into(),
        };
        format!("$JS.API.STREAM.{op}.{stream}")
    }

    /// Whether the call changes a stream, so that a timeout leaves its outcome open.
    fn changes(&self) -> bool {
        matches!(self, Call::Create(_) | Call::RaiseReplicas(..))
    }
}

/// A failed JetStream API call.
#[derive(Debug, Clone)]
pub enum JsError {
    /// The server answered with an API error.
    Api {
        code: u64,
        err_code: u64,
        description: String,
    },
    /// Nobody listens on the API subject: JetStream is off for this account or domain.
    NoResponders,
    /// No answer in time: no quorum, overloaded, or the request was denied by permissions.
    TimedOut,
    /// Anything else (connection closed, bad reply).
    Other(String),
}

impl JsError {
    pub fn err_code(&self) -> Option<u64> {
        match self {
            JsError::Api { err_code, .. } => Some(*err_code),
            _ => None,
        }
    }

    /// The error as async-nats names its code, when the server answered with one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.err_code().map(ErrorCode)
    }
}

/// The stream part of a `STREAM.INFO` answer that the provisioner uses.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    /// The stream's full current config, every field as the server stores it.
    pub config: Value,
    /// Number of messages held (reported, never touched).
    pub messages: u64,
    /// Whether the server holding the stream is part of a JetStream cluster (the answer
    /// names the cluster; a single server's answer has `cluster` without a name, or none).
    /// A single server accepts an update to more than 1 replica and stores the number,
    /// although it keeps one copy, so the provisioner checks this itself.
    pub clustered: bool,
    /// For a create: whether this call created the stream. A clustered server answers an
    /// identical create of an existing stream with success and without `did_create`; a
    /// single server always sets it.
    pub did_create: bool,
    /// At most half of the stream's peers are online: it exists, but nobody can write to
    /// it until a majority is back. The answer then comes from a replica without a leader,
    /// or from a leader that has not noticed yet. (A leader-less answer while the peers
    /// are online is an election in progress, not a lost quorum.)
    pub quorum_lost: bool,
    /// How old the stream was when the server answered (`ts` minus `created`, both from
    /// the server's clock); `None` when the answer lacks either.
    pub age: Option<Duration>,
}

impl StreamInfo {
    fn from_response(v: Value) -> Result<Self, JsError> {
        let config = v
            .get("config")
            .cloned()
            .filter(Value::is_object)
            .ok_or_else(|| JsError::Other("stream info without a config".into()))?;
        let messages = v["state"]["messages"].as_u64().unwrap_or(0);
        Ok(StreamInfo {
            config,
            messages,
            clustered: v["cluster"]["name"].as_str().is_some_and(|n| !n.is_empty()),
            did_create: v["did_create"].as_bool().unwrap_or(false),
            quorum_lost: quorum_lost(&v["cluster"]),
            age: age(&v),
        })
    }

    /// Whether this stream came into being during a call that took `call`: a single
    /// server's create answers `did_create` also for a stream that existed with the same
    /// config, so the stream's age tells a create from a no-op. A stream that a racer
    /// created within the same window counts as created by this call (same config either
    /// way). Unknown age: trust `did_create`.
    pub fn created_within(&self, call: Duration) -> bool {
        match self.age {
            Some(age) => age <= call,
            None => self.did_create,
        }
    }

    pub fn replicas(&self) -> u64 {
        self.config["num_replicas"].as_u64().unwrap_or(1)
    }
}

/// `ts - created` of a stream info answer (RFC 3339 times from the server's clock).
fn age(answer: &Value) -> Option<Duration> {
    use time::format_description::well_known::Rfc3339;
    let at = |field: &str| time::OffsetDateTime::parse(answer[field].as_str()?, &Rfc3339).ok();
    let age = at("ts")? - at("created")?;
    // Negative only if the server's clock stepped back in between: brand new.
    Some(Duration::try_from(age).unwrap_or(Duration::ZERO))
}

/// Whether a stream's `cluster` info shows at most half of its peers online. `replicas`
/// lists every peer but the leader; without a leader, the answering replica lists itself.
fn quorum_lost(cluster: &Value) -> bool {
    let leader = usize::from(cluster["leader"].as_str().is_some_and(|l| !l.is_empty()));
    let Some(replicas) = cluster["replicas"].as_array().filter(|p| !p.is_empty()) else {
        return false;
    };
    let offline = replicas.iter().filter(|p| p["offline"] == true).count();
    offline * 2 >= replicas.len() + leader
}

/// The JetStream API as the provisioner uses it.
#[derive(Clone)]
pub struct JetStreamApi {
    context: jetstream::Context,
    domain: Option<String>,
}

impl JetStreamApi {
    pub fn new(client: async_nats::Client, domain: Option<String>, timeout: Duration) -> Self {
        let mut context = match &domain {
            Some(d) => jetstream::with_domain(client, d),
            None => jetstream::new(client),
        };
        context.set_timeout(timeout);
        JetStreamApi { context, domain }
    }

    /// The connection the JetStream calls go through.
    pub fn client(&self) -> async_nats::Client {
        self.context.client()
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The JetStream context (with the domain and timeout), for the provisioner's own KV
    /// bookkeeping (`admission.rs`).
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    async fn call(&self, op: &str, stream: &str, body: &Value) -> Result<Value, JsError> {
        self.request(format!("STREAM.{op}.{stream}"), body).await
    }

    /// One API request; `subject` is relative to the API prefix (`STREAM.INFO.x`).
    async fn request(&self, subject: String, body: &Value) -> Result<Value, JsError> {
        let response: Result<Response<Value>, _> = self.context.request(subject, body).await;
        match response {
            Ok(Response::Ok(v)) => Ok(v),
            Ok(Response::Err { error }) => Err(JsError::Api {
                code: error.code() as u64,
                err_code: error.error_code().0,
                description: error.to_string(),
            }),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => JsError::NoResponders,
                RequestErrorKind::TimedOut => JsError::TimedOut,
                _ => JsError::Other(e.to_string()),
            }),
        }
    }

    /// The stream's info, or `None` when it does not exist.
    pub async fn stream_info(&self, stream: &str) -> Result<Option<StreamInfo>, JsError> {
        match self.call("INFO", stream, &json!({})).await {
            Ok(v) => StreamInfo::from_response(v).map(Some),
            Err(e) if e.error_code() == Some(ErrorCode::STREAM_NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names of every stream in the account, page by page (`STREAM.NAMES`).
    pub async fn stream_names(&self) -> Result<Vec<String>, JsError> {
        let mut names: Vec<String> = Vec::new();
        loop {
            let page = self
                .request("STREAM.NAMES".into(), &json!({ "offset": names.len() }))
                .await?;
            let streams: Vec<String> = page["streams"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            if streams.is_empty() {
                return Ok(names);
            }
            names.extend(streams);
            if names.len() >= total {
                return Ok(names);
            }
        }
    }

    /// Creates a stream from a full config. The server treats a create with an identical
    /// config as success, so racing creates of the same desired config all succeed.
    pub async fn stream_create(&self, config: &Value) -> Result<StreamInfo, JsError> {
        let name = config["name"].as_str().unwrap_or_default();
        StreamInfo::from_response(self.call("CREATE", name, config).await?)
    }

    /// Updates a stream. `config` must be derived from the stream's current config.
    pub async fn stream_update(&self, config: &Value) -> Result<StreamInfo, JsError> {
        let name = config["name"].as_str().unwrap_or_default();
        StreamInfo::from_response(self.call("UPDATE", name, config).await?)
    }
}

#[cfg(test)]
mod tests;
