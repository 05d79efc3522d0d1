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

use async_nats::jetstream::{self, context::RequestErrorKind, response::Response};
use serde_json::{json, Value};

use crate::error::{ErrorKind, ProvisionError};

/// JetStream API error codes the provisioner reacts to.
pub mod codes {
    /// Stream not found.
    pub const STREAM_NOT_FOUND: u64 = 10059;
    /// Stream name already in use with a different configuration.
    pub const STREAM_NAME_IN_USE: u64 = 10058;
    /// JetStream system temporarily unavailable (no meta leader / quorum).
    pub const CLUSTER_NOT_AVAILABLE: u64 = 10008;
    /// No suitable peers for placement: too few servers (matching the placement), or, with
    /// "peer offline" in the description, servers the stream needs are down.
    pub const NO_SUITABLE_PEERS: u64 = 10005;
    /// Replicas > 1 not supported in non-clustered mode (HTTP-like code 500 on the wire).
    pub const REPLICAS_NOT_SUPPORTED: u64 = 10074;
    /// Stream is offline: every server holding it is down.
    pub const STREAM_OFFLINE: u64 = 10118;
    /// JetStream not enabled for account.
    pub const NOT_ENABLED_FOR_ACCOUNT: u64 = 10039;
    /// JetStream not enabled.
    pub const NOT_ENABLED: u64 = 10076;
    /// Insufficient resources: the server (not the account) has no room.
    pub const INSUFFICIENT_RESOURCES: u64 = 10023;
    /// Stream subjects overlap with an existing stream.
    pub const SUBJECT_OVERLAP: u64 = 10065;
    /// Resource limits exceeded for the account.
    pub const ACCOUNT_RESOURCES_EXCEEDED: u64 = 10002;
    /// Maximum number of streams reached (the account's `max_streams`).
    pub const MAXIMUM_STREAMS: u64 = 10027;
    /// Insufficient memory resources available (the account's `max_mem`, the server's
    /// `max_memory_store`).
    pub const MEMORY_RESOURCES_EXCEEDED: u64 = 10028;
    /// Insufficient storage resources available (the account's `max_file`, the server's
    /// `max_file_store`); nats-server 2.12 answers it with HTTP-like code 500.
    pub const STORAGE_RESOURCES_EXCEEDED: u64 = 10047;
    /// The account requires every stream to have `max_bytes` (`max_bytes_required`).
    pub const MAX_BYTES_REQUIRED: u64 = 10113;
    /// No JetStream default or tiered limit applies (the account has limits for other
    /// replica counts only).
    pub const NO_LIMITS: u64 = 10120;
    /// The stream's `max_bytes` exceeds the account's per-stream maximum
    /// (`disk_max_stream_bytes` / `mem_max_stream_bytes`).
    pub const MAX_STREAM_BYTES_EXCEEDED: u64 = 10122;
}

/// What to change when a storage limit refuses a stream: where the limits are set.
const RAISE_STORAGE: &str =
    "raise the limit (an account's `jetstream { max_file, max_mem }` in the server config, \
     or `nsc edit account --js-disk-storage / --js-mem-storage` in operator mode; a server's \
     `jetstream { max_file_store, max_memory_store }`), free space by removing streams you \
     no longer need, or give the provisioner's resources a smaller max_bytes (--max-bytes or \
     `max_bytes` in its config file; at least 1 MiB). Every replica of a stream counts";

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
        match self {
            Call::Lookup(stream) => format!("$JS.API.STREAM.INFO.{stream}"),
            Call::Create(stream) => format!("$JS.API.STREAM.CREATE.{stream}"),
            Call::RaiseReplicas(stream, _) => format!("$JS.API.STREAM.UPDATE.{stream}"),
            Call::CountLattices => "$JS.API.STREAM.NAMES".into(),
        }
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

    /// Turns the error of `call` into an operator-facing reply error.
    pub fn explain(&self, call: Call<'_>, domain: Option<&str>) -> ProvisionError {
        let action = &call.action();
        let subject = &call.subject();
        let where_js = match domain {
            Some(d) => format!("JetStream domain `{d}`"),
            None => "JetStream".to_string(),
        };
        match self {
            JsError::NoResponders => ProvisionError::unavailable(format!(
                "{where_js} is not available to the provisioner's account (no responders on \
                 {subject}): enable JetStream on the server (`-js` or a `jetstream {{}}` block) \
                 and for the account, and check --js-domain"
            )),
            JsError::TimedOut => {
                let silent = format!(
                    "JetStream may have no quorum (check that a majority of the cluster's \
                     JetStream servers is up and `nats server report jetstream` shows a meta \
                     leader), or the provisioner's user may not publish to `{subject}` (check \
                     the server log for a permissions violation)"
                );
                ProvisionError::unavailable(if call.changes() {
                    // A replicated stream answers its create or update only once its Raft
                    // group has a leader; when the first election misfires, nats-server
                    // holds the next one after an election timeout of 4 to 9 s. The change
                    // then still completes.
                    format!(
                        "{where_js} did not answer in time to {action}; it may still complete, \
                         and repeating the request is safe (it finds the stream and reports \
                         it). A replicated stream answers only once it has a leader, which can \
                         take about 10 s when its first election fails: if this recurs, raise \
                         --js-timeout. If it stays silent, {silent}"
                    )
                } else {
                    format!("{where_js} did not answer in time to {action}: {silent}")
                })
            }
            JsError::Other(msg) => {
                ProvisionError::unavailable(format!("could not {action}: {msg}"))
            }
            JsError::Api {
                code,
                err_code,
                description,
            } => {
                let (kind, hint) = match *err_code {
                    codes::CLUSTER_NOT_AVAILABLE => (
                        ErrorKind::Unavailable,
                        "JetStream has no quorum (no meta leader): bring a majority of the \
                         cluster's JetStream servers back, then retry"
                            .to_string(),
                    ),
                    codes::NOT_ENABLED | codes::NOT_ENABLED_FOR_ACCOUNT => (
                        ErrorKind::Unavailable,
                        "enable JetStream on the server and for the provisioner's account"
                            .to_string(),
                    ),
                    codes::REPLICAS_NOT_SUPPORTED => {
                        (ErrorKind::Conflict, NOT_CLUSTERED_HINT.to_string())
                    }
                    // Placement counts offline servers as candidates but needs a majority of
                    // the replicas online: "peer offline" means quorum, not cluster size.
                    codes::NO_SUITABLE_PEERS if description.contains("offline") => (
                        ErrorKind::Unavailable,
                        "JetStream has no quorum for this stream: fewer than a majority of \
                         the servers it would be placed on are up (or, in a cluster that has \
                         just started, have reported in yet); bring the cluster's JetStream \
                         servers back, then retry"
                            .to_string(),
                    ),
                    codes::STREAM_OFFLINE => (
                        ErrorKind::Unavailable,
                        "every JetStream server holding this stream is down, so JetStream has \
                         no quorum for it: bring those servers back, then retry"
                            .to_string(),
                    ),
                    codes::NO_SUITABLE_PEERS => (
                        ErrorKind::Conflict,
                        "the cluster has too few JetStream servers (matching the placement) for \
                         the replicas asked for: lower the replicas, relax the placement, or \
                         add servers"
                            .to_string(),
                    ),
                    codes::STORAGE_RESOURCES_EXCEEDED | codes::ACCOUNT_RESOURCES_EXCEEDED => (
                        ErrorKind::InsufficientStorage,
                        format!(
                            "the account's JetStream file storage limit has no room left for \
                             this stream's max_bytes: {RAISE_STORAGE}"
                        ),
                    ),
                    codes::MEMORY_RESOURCES_EXCEEDED => (
                        ErrorKind::InsufficientStorage,
                        format!(
                            "the account's JetStream memory limit has no room left for this \
                             stream's max_bytes: {RAISE_STORAGE}"
                        ),
                    ),
                    codes::INSUFFICIENT_RESOURCES => (
                        ErrorKind::InsufficientStorage,
                        format!(
                            "the JetStream server (or cluster) has no room left for this \
                             stream: {RAISE_STORAGE}"
                        ),
                    ),
                    codes::MAXIMUM_STREAMS => (
                        ErrorKind::InsufficientStorage,
                        "the account has as many streams as its JetStream limit allows: raise \
                         `max_streams` (`jetstream { max_streams }` of the account, or `nsc \
                         edit account --js-streams`); every lattice needs 2 streams, wadm 6 \
                         and 2 buckets"
                            .to_string(),
                    ),
                    codes::MAX_BYTES_REQUIRED => (
                        ErrorKind::Conflict,
                        "the account requires every stream to have a size limit \
                         (`max_bytes_required`): set one for the provisioner's resources with \
                         --max-bytes or `max_bytes` in its config file (at least 1 MiB), or \
                         lift the requirement"
                            .to_string(),
                    ),
                    codes::MAX_STREAM_BYTES_EXCEEDED => (
                        ErrorKind::Conflict,
                        "the stream's max_bytes is larger than the account allows for one \
                         stream (`disk_max_stream_bytes` / `mem_max_stream_bytes`, or `nsc \
                         edit account --js-max-disk-stream / --js-max-mem-stream`): lower \
                         --max-bytes (or `max_bytes` in the config file), or raise the \
                         account's per-stream maximum"
                            .to_string(),
                    ),
                    codes::NO_LIMITS => (
                        ErrorKind::Conflict,
                        "the account has JetStream limits for other replica counts only \
                         (tiered limits): add a tier for this stream's replicas to the \
                         account, or ask for replicas it has a tier for"
                            .to_string(),
                    ),
                    codes::SUBJECT_OVERLAP => (
                        ErrorKind::Conflict,
                        "another stream already captures these subjects: find it with \
                         `nats stream ls` and remove the overlap by hand"
                            .to_string(),
                    ),
                    codes::STREAM_NAME_IN_USE => (
                        ErrorKind::Conflict,
                        "a stream of this name exists with another config; run `plan` to see \
                         how it differs"
                            .to_string(),
                    ),
                    _ if *code == 503 => (
                        ErrorKind::Unavailable,
                        "JetStream is temporarily unavailable; retry".to_string(),
                    ),
                    _ if *code == 403 || description.contains("permission") => (
                        ErrorKind::Forbidden,
                        format!("grant the provisioner's user publish on `{subject}`"),
                    ),
                    _ => (
                        ErrorKind::Internal,
                        "unexpected JetStream error; see the server log".to_string(),
                    ),
                };
                ProvisionError::new(
                    kind,
                    format!(
                        "could not {action}: {description} (JetStream error {err_code}): {hint}"
                    ),
                )
            }
        }
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
            Err(e) if e.err_code() == Some(codes::STREAM_NOT_FOUND) => Ok(None),
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
mod tests {
    use super::*;

    fn info(answer: Value) -> StreamInfo {
        let mut answer = answer;
        answer["config"] = json!({ "name": "S", "num_replicas": 3 });
        StreamInfo::from_response(answer).expect("valid answer")
    }

    #[test]
    fn a_timed_out_change_says_it_may_still_complete_and_is_safe_to_repeat() {
        let create = JsError::TimedOut.explain(Call::Create("KV_X"), None);
        assert_eq!(create.code(), 503);
        for words in [
            "may still complete",
            "safe",
            "--js-timeout",
            "STREAM.CREATE.KV_X",
        ] {
            assert!(
                create.message.contains(words),
                "{words}: {}",
                create.message
            );
        }
        let raise = JsError::TimedOut.explain(Call::RaiseReplicas("KV_X", 3), Some("hub"));
        assert!(
            raise.message.contains("may still complete"),
            "{}",
            raise.message
        );
        assert!(
            raise.message.contains("STREAM.UPDATE.KV_X"),
            "{}",
            raise.message
        );
        assert!(raise.message.contains("domain `hub`"), "{}", raise.message);
        // A look-up changes nothing: no promise about an outcome.
        let lookup = JsError::TimedOut.explain(Call::Lookup("KV_X"), None);
        assert!(
            !lookup.message.contains("may still complete"),
            "{}",
            lookup.message
        );
        assert!(
            lookup.message.contains("STREAM.INFO.KV_X"),
            "{}",
            lookup.message
        );
    }

    #[test]
    fn limits_name_the_limit_and_what_to_change() {
        let api = |err_code: u64, code: u64, description: &str| JsError::Api {
            code,
            err_code,
            description: description.into(),
        };
        let cases = [
            (
                api(10047, 500, "insufficient storage resources available"),
                507,
                &["max_file", "--max-bytes", "nsc edit account"][..],
            ),
            (
                api(10028, 500, "insufficient memory resources available"),
                507,
                &["max_mem", "--max-bytes"][..],
            ),
            (
                api(10023, 500, "insufficient resources"),
                507,
                &["max_file_store", "server"][..],
            ),
            (
                api(10002, 400, "resource limits exceeded for account"),
                507,
                &["max_file"][..],
            ),
            (
                api(10027, 400, "maximum number of streams reached"),
                507,
                &["max_streams", "--js-streams"][..],
            ),
            (
                api(
                    10113,
                    400,
                    "account requires a stream config to have max bytes set",
                ),
                409,
                &["max_bytes_required", "--max-bytes"][..],
            ),
            (
                api(
                    10122,
                    400,
                    "stream max bytes exceeds account limit max stream bytes",
                ),
                409,
                &["disk_max_stream_bytes", "--max-bytes"][..],
            ),
            (
                api(
                    10120,
                    400,
                    "no jetstream default or applicable tiered limit present",
                ),
                409,
                &["tier"][..],
            ),
        ];
        for (error, code, words) in cases {
            let e = error.explain(Call::Create("KV_LATTICEDATA_x"), None);
            assert_eq!(e.code(), code, "{}", e.message);
            assert!(e.message.contains("KV_LATTICEDATA_x"), "{}", e.message);
            for word in words {
                assert!(e.message.contains(word), "{word}: {}", e.message);
            }
            assert!(!e.message.contains("unexpected"), "{}", e.message);
        }
    }

    #[test]
    fn a_single_server_is_not_clustered() {
        // STREAM.INFO of a single server names a leader but no cluster; its create
        // answer has no `cluster` at all.
        assert!(!info(json!({ "cluster": { "leader": "n1" } })).clustered);
        assert!(!info(json!({})).clustered);
        assert!(info(json!({ "cluster": { "name": "c1", "leader": "n2" } })).clustered);
    }

    #[test]
    fn quorum_is_lost_only_without_leader_and_with_most_peers_offline() {
        let peer = |name: &str, offline: bool| json!({ "name": name, "offline": offline });
        let lost = json!({ "name": "c1", "replicas": [peer("n1", false), peer("n2", true), peer("n3", true)] });
        assert!(info(json!({ "cluster": lost })).quorum_lost);
        // An election in progress: no leader, but the peers are up.
        let electing = json!({ "name": "c1", "replicas": [peer("n1", false), peer("n2", false), peer("n3", true)] });
        assert!(!info(json!({ "cluster": electing })).quorum_lost);
        // A leader that has not noticed yet that both followers are gone.
        let stale = json!({ "name": "c1", "leader": "n1", "replicas": [peer("n2", true), peer("n3", true)] });
        assert!(info(json!({ "cluster": stale })).quorum_lost);
        let one_down = json!({ "name": "c1", "leader": "n1", "replicas": [peer("n2", false), peer("n3", true)] });
        assert!(!info(json!({ "cluster": one_down })).quorum_lost);
        assert!(!info(json!({ "cluster": { "name": "c1", "leader": "n1" } })).quorum_lost);
    }
}
