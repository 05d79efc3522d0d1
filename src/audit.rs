//! Audit events: every change the provisioner makes (a create, a replica raise) is
//! published as JSON on `wasmcloud.provision.events.<action>` (`created`, `updated`);
//! `backup` and `restore` publish `backed_up` and `restored` the same way.
//! The schema is `schemas/audit_event.json`.
//!
//! The reconciler calls a [`ChangeListener`](crate::plan::ChangeListener) synchronously,
//! in the middle of a request. The listener here only builds the event and puts it on a
//! bounded queue (`try_send`); a task publishes from the queue (`audit/publisher.rs`). So
//! a slow or disconnected NATS connection never holds up a request: when the queue is
//! full the event is dropped, counted and logged.
//!
//! Who asked is the [`Origin`] (`origin.rs`) the reconciler captured for the change.

use serde::Serialize;
use serde_json::Value;

use crate::catalog::Kind;
use crate::plan::{Action, Change};
use crate::subjects::EVENTS_PREFIX;

mod publisher;
use crate::origin::Origin;
pub use publisher::AuditPublisher;

/// The `schema` field of every event; bumped when a field changes meaning.
pub const SCHEMA_ID: &str = "wasmcloud-provisioner/audit_event/v1";
/// The JSON schema of an event.
pub const SCHEMA: &str = include_str!("../schemas/audit_event.json");
/// An event is at most this large: half the 32 KiB `max_payload` the README suggests for
/// requesters' accounts, and far below nats-server's default of 1 MiB, so an event of a
/// change is always publishable. The bounds above keep an ordinary worst case under it;
/// strings that JSON escapes (six bytes for a control character) could exceed it, and then
/// the request info is dropped ([`AuditEvent::to_bytes`]).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Events waiting to be published before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use serde_json::Map;

    use crate::origin::{MAX_FIELD_CHARS, MAX_TAGS, REQUEST_INFO_FIELDS};
    use crate::plan::ResourceReport;
    use crate::subjects::{MAX_REQUEST_INFO_BYTES, REQUEST_INFO_HEADER};
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
}
