//! Audit events: every change the provisioner makes (a create, a replica raise) is
//! published as JSON on `wasmcloud.provision.events.<action>` (`created`, `updated`);
//! `backup` and `restore` publish `backed_up` and `restored` the same way.
//! The schema is `schemas/audit_event.json`.
//!
//! The reconciler calls a [`ChangeListener`] synchronously, in the middle of a request. The
//! listener here only builds the event and puts it on a bounded queue (`try_send`); a task
//! publishes from the queue. So a slow or disconnected NATS connection never holds up a
//! request: when the queue is full the event is dropped, counted and logged.
//!
//! Who asked: the service runs each request inside [`with_origin`], and the reconciler
//! captures [`current_origin`] when it starts a change, so the event names the request
//! that caused it (with single flight, the first of the concurrent requests for the same
//! resource). `Nats-Request-Info` is nats-server's header naming the requesting client;
//! the server sets it (overwriting any value the client sent) only when the request
//! crosses a service import into the provisioner's account, with user details when the
//! import has `share: true`. Within one account no server sets it, and a client can send
//! the header itself: there it is a claim, not proof.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::catalog::Kind;
use crate::reconcile::{Action, Change, ChangeListener};

pub use crate::subjects::EVENTS_PREFIX;
/// The `schema` field of every event; bumped when a field changes meaning.
pub const SCHEMA_ID: &str = "wasmcloud-provisioner/audit_event/v1";
/// The JSON schema of an event.
pub const SCHEMA: &str = include_str!("../schemas/audit_event.json");
pub use crate::subjects::{MAX_REQUEST_INFO_BYTES, REQUEST_INFO_HEADER};
/// Events waiting to be published before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;

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
const REQUEST_INFO_FIELDS: &[&str] = &[
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
/// An event is at most this large: half the 32 KiB `max_payload` the README suggests for
/// requesters' accounts, and far below nats-server's default of 1 MiB, so an event of a
/// change is always publishable. The bounds above keep an ordinary worst case under it;
/// strings that JSON escapes (six bytes for a control character) could exceed it, and then
/// the request info is dropped ([`AuditEvent::to_bytes`]).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

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

/// Which provisioner made the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    /// Unique per process; also in the service's `$SRV.INFO` metadata as `instance_id`.
    pub id: String,
    pub name: String,
    pub version: String,
    /// The machine's host name, when the environment tells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Instance {
    /// A new instance identity for this process.
    pub fn new(name: &str) -> Self {
        Instance {
            id: nuid::next().to_string(),
            name: name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            host: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                }),
        }
    }
}

/// The settings of a stream that matter to an operator reading the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigSummary {
    pub replicas: u64,
    pub storage: Option<String>,
    pub retention: Option<String>,
    pub subjects: Vec<String>,
    pub max_bytes: Option<i64>,
    /// Nanoseconds, as JetStream reports it; 0 is unlimited.
    pub max_age: Option<i64>,
    /// For KV buckets: the history.
    pub max_msgs_per_subject: Option<i64>,
    pub allow_direct: Option<bool>,
    pub placement: Option<Value>,
    /// Names of the streams it sources from.
    pub sources: Vec<String>,
}

impl ConfigSummary {
    /// Summarises a stream config as JetStream returns it.
    pub fn of(config: &Value) -> Self {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        ConfigSummary {
            replicas: config["num_replicas"].as_u64().unwrap_or(1),
            storage: config["storage"].as_str().map(String::from),
            retention: config["retention"].as_str().map(String::from),
            subjects: strings(&config["subjects"]),
            max_bytes: config["max_bytes"].as_i64(),
            max_age: config["max_age"].as_i64(),
            max_msgs_per_subject: config["max_msgs_per_subject"].as_i64(),
            allow_direct: config["allow_direct"].as_bool(),
            placement: config.get("placement").filter(|p| !p.is_null()).cloned(),
            sources: config["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The resource an event is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRef {
    pub name: String,
    pub kind: Kind,
    pub stream: String,
}

/// One audit event (see `schemas/audit_event.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub schema: &'static str,
    /// Unique per event, for de-duplication.
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// `created` or `updated`.
    pub action: &'static str,
    pub resource: ResourceRef,
    pub js_domain: Option<String>,
    /// The tenant account the resource is in (`accounts`); absent for the provisioner's
    /// own account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `null` for a create.
    pub before: Option<ConfigSummary>,
    pub after: ConfigSummary,
    /// `null` when the change had no known cause.
    pub requester: Option<Origin>,
    pub provisioner: Instance,
    /// `backed_up` and `restored`: the backup the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRef>,
}

/// The backup of one stream an event is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupRef {
    /// The backup folder, as given on the command line.
    pub folder: String,
    pub messages: u64,
    pub last_seq: u64,
    /// Size of the stream's data file, and its SHA-256 (unknown for a natscli folder).
    pub data_bytes: u64,
    pub sha256: Option<String>,
}

impl AuditEvent {
    /// The event of one change; `None` for outcomes that change nothing.
    pub fn of(change: &Change, instance: &Instance, js_domain: Option<&str>) -> Option<Self> {
        let action = match change.report.action {
            Action::Created => "created",
            Action::Updated => "updated",
            _ => return None,
        };
        Some(AuditEvent {
            schema: SCHEMA_ID,
            id: nuid::next().to_string(),
            time: now_rfc3339(),
            action,
            resource: ResourceRef {
                name: change.report.name.clone(),
                kind: change.report.kind,
                stream: change.report.stream.clone(),
            },
            js_domain: js_domain.map(String::from),
            account: None,
            before: change.before.as_ref().map(ConfigSummary::of),
            after: ConfigSummary::of(&change.after),
            requester: change.origin.as_deref().cloned(),
            provisioner: instance.clone(),
            backup: None,
        })
    }

    /// The event of a stream backed up (`backed_up`: `after` is its config as backed up)
    /// or restored (`restored`: its config as the server restored it). `before` is null:
    /// a backup changes nothing, and a restore only ever creates.
    #[allow(clippy::too_many_arguments)]
    pub fn backup_event(
        action: &'static str,
        resource: ResourceRef,
        config: &Value,
        instance: &Instance,
        js_domain: Option<&str>,
        requester: Option<Origin>,
        backup: BackupRef,
    ) -> Self {
        AuditEvent {
            schema: SCHEMA_ID,
            id: nuid::next().to_string(),
            time: now_rfc3339(),
            action,
            resource,
            js_domain: js_domain.map(String::from),
            // `backup`/`restore` run with one connection, in the account it logs into.
            account: None,
            before: None,
            after: ConfigSummary::of(config),
            requester,
            provisioner: instance.clone(),
            backup: Some(backup),
        }
    }

    pub fn subject(&self) -> String {
        format!("{EVENTS_PREFIX}.{}", self.action)
    }

    /// The event as published: JSON of at most [`MAX_EVENT_BYTES`]. The bounds on what is
    /// kept from a request keep it far below; should it still be larger, the request info
    /// is replaced by `{"truncated": true}` rather than the event lost.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let body = match serde_json::to_vec(self) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot serialize an audit event: {e}");
                return None;
            }
        };
        if body.len() <= MAX_EVENT_BYTES {
            return Some(body);
        }
        let mut smaller = self.clone();
        if let Some(Origin::Request { request_info, .. }) = &mut smaller.requester {
            *request_info = Some(serde_json::json!({ "truncated": true }));
        }
        let body = serde_json::to_vec(&smaller).ok()?;
        if body.len() > MAX_EVENT_BYTES {
            tracing::warn!(
                resource = %self.resource.name,
                bytes = body.len(),
                "audit event larger than {MAX_EVENT_BYTES} bytes; publishing it anyway"
            );
        }
        Some(body)
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

enum Message {
    Event(Box<AuditEvent>),
    /// Publish everything queued before, flush, then answer and stop.
    Close(oneshot::Sender<()>),
}

/// Publishes audit events from a bounded queue. A clone publishes through the same queue.
#[derive(Clone)]
pub struct AuditPublisher {
    queue: mpsc::Sender<Message>,
    instance: Instance,
    js_domain: Option<String>,
    dropped: Arc<AtomicU64>,
}

impl AuditPublisher {
    /// Starts the publishing task on `client`.
    pub fn start(
        client: async_nats::Client,
        instance: Instance,
        js_domain: Option<String>,
    ) -> Self {
        let (queue, mut rx) = mpsc::channel::<Message>(QUEUE_CAPACITY);
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                match message {
                    Message::Event(event) => {
                        let Some(body) = event.to_bytes() else {
                            continue;
                        };
                        if let Err(e) = client.publish(event.subject(), body.into()).await {
                            tracing::warn!(
                                resource = %event.resource.name,
                                action = event.action,
                                "audit event not published: {e}"
                            );
                        }
                    }
                    Message::Close(done) => {
                        if let Err(e) = client.flush().await {
                            tracing::warn!("audit events may be lost: flush failed: {e}");
                        }
                        let _ = done.send(());
                        break;
                    }
                }
            }
        });
        AuditPublisher {
            queue,
            instance,
            js_domain,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Events dropped because the queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The listener to hand to [`crate::reconcile::Reconciler::with_listener`]. Never
    /// blocks: a full queue drops the event.
    pub fn listener(&self) -> ChangeListener {
        self.listener_in(None, self.js_domain.clone())
    }

    /// [`AuditPublisher::listener`] for the reconciler of a tenant account (`accounts`):
    /// its events name the account and its JetStream domain.
    pub fn listener_in(
        &self,
        account: Option<String>,
        js_domain: Option<String>,
    ) -> ChangeListener {
        let queue = self.queue.clone();
        let instance = self.instance.clone();
        let dropped = self.dropped.clone();
        Arc::new(move |change: &Change| {
            let Some(mut event) = AuditEvent::of(change, &instance, js_domain.as_deref()) else {
                return;
            };
            event.account = account.clone();
            if let Err(e) = queue.try_send(Message::Event(Box::new(event))) {
                let total = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the publisher has stopped",
                };
                tracing::warn!(
                    resource = %change.report.name,
                    dropped = total,
                    "audit event dropped: {why}"
                );
            }
        })
    }

    /// Queues an event built by the caller (backup and restore). Never blocks: a full
    /// queue drops the event.
    pub fn publish(&self, event: AuditEvent) {
        if self
            .queue
            .try_send(Message::Event(Box::new(event)))
            .is_err()
        {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = total, "audit event dropped: the queue is full");
        }
    }

    /// Publishes what is queued and flushes, waiting at most `timeout`.
    pub async fn close(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        let closing = async {
            if self.queue.send(Message::Close(done)).await.is_ok() {
                let _ = finished.await;
            }
        };
        if tokio::time::timeout(timeout, closing).await.is_err() {
            tracing::warn!("audit events still queued after {timeout:?}; some may be lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ResourceReport;
    use serde_json::json;

    fn change(action: Action, origin: Option<Origin>) -> Change {
        Change {
            report: ResourceReport {
                name: "LATTICEDATA_default".into(),
                kind: Kind::Kv,
                stream: "KV_LATTICEDATA_default".into(),
                action,
                replicas: 3,
                desired_replicas: 3,
                previous_replicas: Some(1),
                drift: vec![],
                notes: vec![],
                warm: false,
            },
            before: Some(
                json!({"num_replicas": 1, "storage": "file", "subjects": ["$KV.LATTICEDATA_default.>"], "max_bytes": -1}),
            ),
            after: json!({"num_replicas": 3, "storage": "file", "subjects": ["$KV.LATTICEDATA_default.>"], "max_bytes": -1, "placement": null}),
            origin: origin.map(Arc::new),
        }
    }

    fn validator() -> jsonschema::Validator {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    }

    #[test]
    fn events_validate_against_the_schema() {
        let instance = Instance::new("wasmcloud-provisioner");
        let v = validator();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            REQUEST_INFO_HEADER,
            r#"{"acc":"HOSTS","user":"host-1","jwt":"eyJ...","rtt":1000,"kind":"Client"}"#,
        );
        for (action, origin) in [
            (
                Action::Updated,
                Some(Origin::request(
                    "lattice",
                    "wasmcloud.provision.lattice",
                    Some(&headers),
                )),
            ),
            (Action::Created, Some(Origin::cli("apply"))),
            (Action::Created, None),
        ] {
            let event = AuditEvent::of(&change(action, origin), &instance, Some("hub")).unwrap();
            let json = serde_json::to_value(&event).unwrap();
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{json:#}\n{errors:?}");
        }
    }

    #[test]
    fn backup_events_validate_against_the_schema() {
        let instance = Instance::new("wasmcloud-provisioner-cli");
        let v = validator();
        for (action, sha) in [("backed_up", Some("ab".to_string())), ("restored", None)] {
            let event = AuditEvent::backup_event(
                action,
                ResourceRef {
                    name: "CONFIGDATA_default".into(),
                    kind: Kind::Kv,
                    stream: "KV_CONFIGDATA_default".into(),
                },
                &json!({"num_replicas": 1, "storage": "file", "subjects": ["$KV.CONFIGDATA_default.>"]}),
                &instance,
                None,
                Some(Origin::cli(if action == "restored" {
                    "restore"
                } else {
                    "backup"
                })),
                BackupRef {
                    folder: "/backups/2026-01-01".into(),
                    messages: 3,
                    last_seq: 7,
                    data_bytes: 100,
                    sha256: sha,
                },
            );
            assert_eq!(
                event.subject(),
                format!("wasmcloud.provision.events.{action}")
            );
            let json = serde_json::to_value(&event).unwrap();
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{json:#}\n{errors:?}");
        }
    }

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

    /// The event of a request whose `Nats-Request-Info` has every kept field, and the most
    /// tags, each one character longer than is kept, made of `c`. (A larger event, possible
    /// with strings JSON escapes, drops its request info: see the next test.)
    fn event_with_longest_fields(c: char) -> Vec<u8> {
        let long: String = std::iter::repeat_n(c, MAX_FIELD_CHARS + 1).collect();
        let mut all = Map::new();
        for field in REQUEST_INFO_FIELDS {
            all.insert((*field).into(), json!(long));
        }
        all.insert("id".into(), json!(u64::MAX));
        all.insert("tags".into(), json!(vec![long; MAX_TAGS]));
        let raw = Value::Object(all).to_string();
        assert!(raw.len() < MAX_REQUEST_INFO_BYTES, "{}", raw.len());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(REQUEST_INFO_HEADER, raw.as_str());
        let origin = Origin::request(&"e".repeat(10_000), &"s".repeat(10_000), Some(&headers));
        AuditEvent::of(
            &change(Action::Created, Some(origin)),
            &Instance::new("p"),
            None,
        )
        .unwrap()
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn an_event_with_the_longest_request_info_is_small_and_valid() {
        // Plain characters: everything kept is in the event, well under the bound.
        let body = event_with_longest_fields('x');
        assert!(body.len() < MAX_EVENT_BYTES, "{} bytes", body.len());
        let json: Value = serde_json::from_slice(&body).unwrap();
        let info = &json["requester"]["request_info"];
        assert_eq!(info["user"].as_str().map(str::len), Some(MAX_FIELD_CHARS));
        assert_eq!(info["tags"].as_array().map(Vec::len), Some(MAX_TAGS));
        assert_eq!(info["truncated"], true);
        let errors: Vec<String> = validator()
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn an_oversized_event_drops_the_request_info_not_the_event() {
        let mut event = AuditEvent::of(
            &change(Action::Created, Some(Origin::cli("apply"))),
            &Instance::new("p"),
            None,
        )
        .unwrap();
        event.requester = Some(Origin::Request {
            endpoint: "lattice".into(),
            subject: "s".into(),
            request_info: Some(json!({ "user": "u".repeat(2 * MAX_EVENT_BYTES) })),
        });
        let body = event.to_bytes().unwrap();
        assert!(body.len() <= MAX_EVENT_BYTES);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["requester"]["request_info"],
            json!({ "truncated": true })
        );
    }

    #[test]
    fn only_changes_make_events() {
        let instance = Instance::new("p");
        assert!(AuditEvent::of(&change(Action::Exists, None), &instance, None).is_none());
        let e = AuditEvent::of(&change(Action::Updated, None), &instance, None).unwrap();
        assert_eq!(e.subject(), "wasmcloud.provision.events.updated");
        assert_eq!(e.before.as_ref().map(|b| b.replicas), Some(1));
        assert_eq!(e.after.replicas, 3);
        assert_eq!(e.after.placement, None);
    }

    #[tokio::test]
    async fn origin_is_scoped_to_the_request() {
        assert!(current_origin().is_none());
        let seen = with_origin(Origin::cli("apply"), async { current_origin() }).await;
        assert_eq!(seen.as_deref(), Some(&Origin::cli("apply")));
    }
}
