//! The resource catalog: the single table of everything wasmCloud hosts (1.9.x) and wadm
//! (0.21.x) expect to find in JetStream.
//!
//! Every fact about a resource lives in one [`Row`] of [`CATALOG`]: its name, its stream
//! settings exactly as the apps would create them, what must hold on a pre-existing copy
//! for the apps to work, and who uses it. Creation ([`crate::reconcile`]), drift checks,
//! permission templates and the README table are all derived from these rows, so adding
//! a resource means adding one row.
//!
//! The settings are those the apps themselves send, after the server fills its defaults
//! (see `shared/spec/resources.md`). The create payload spells out every field the apps'
//! normalized config has, so that a create racing a host's or wadm's create of the same
//! resource is accepted by the server as identical instead of failing with 10058.

use serde_json::{json, Map, Value};

use crate::settings::{ResourceSettings, Settings};

/// Nanoseconds per second: JetStream durations are nanoseconds on the wire.
const NANOS: u64 = 1_000_000_000;

/// wadm's `DEFAULT_EXPIRY_TIME` for its event and command streams.
const WADM_MAX_AGE_SECS: u64 = 70;

/// The server's default duplicate window, which it caps at `max_age` when one is set.
const DEFAULT_DUPLICATE_WINDOW_SECS: u64 = 120;

/// Whether a resource is a KV bucket (a stream named `KV_<bucket>`) or a plain stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Kv,
    Stream,
}

/// Which request provisions a resource: once per lattice, or once for wadm; or the
/// provisioner's own bookkeeping, created when the provisioner first needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Lattice,
    Wadm,
    Provisioner,
}

/// The application that binds a resource and breaks when it is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    Host,
    Wadm,
    /// The provisioner itself (its bookkeeping; no host or wadm gets access to it).
    Provisioner,
}

impl App {
    pub fn as_str(self) -> &'static str {
        match self {
            App::Host => "host",
            App::Wadm => "wadm",
            App::Provisioner => "provisioner",
        }
    }
}

/// Stream retention policy, as JetStream spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Limits,
    WorkQueue,
    Interest,
}

impl Retention {
    fn as_str(self) -> &'static str {
        match self {
            Retention::Limits => "limits",
            Retention::WorkQueue => "workqueue",
            Retention::Interest => "interest",
        }
    }
}

/// One source of a sourcing stream, with its subject transform.
#[derive(Debug, Clone, Copy)]
pub struct SourceRow {
    /// Catalog key of the stream sourced from (it must be created first).
    pub from: &'static str,
    pub transform_src: &'static str,
    pub transform_src_multitenant: &'static str,
    pub transform_dest: &'static str,
    pub transform_dest_multitenant: &'static str,
}

/// How a row's stream is shaped. KV buckets all share one shape, so it is not repeated.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A KV bucket with history 1, as `create_key_value` with a default config makes it.
    Kv,
    Stream {
        subjects: &'static [&'static str],
        subjects_multitenant: &'static [&'static str],
        retention: Retention,
        max_age_secs: u64,
        /// `None`: unlimited (-1).
        max_msgs_per_subject: Option<i64>,
        allow_direct: bool,
        description: &'static str,
        sources: &'static [SourceRow],
        /// wadm deletes and recreates these streams unless the subjects are exactly equal.
        subjects_checked_by_wadm: bool,
    },
}

/// A permission a role needs on a resource once it exists; permission templates are
/// derived from these (see `permissions.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `$JS.API.STREAM.INFO.<stream>`: both apps look a resource up before binding it.
    Info,
    /// KV reads by direct get and writes/purges on `$KV.<bucket>.>`, watches through
    /// unnamed ordered consumers (the host).
    KvReadWriteWatch,
    /// KV reads by direct get and writes on `$KV.<bucket>.>`, no watches (wadm).
    KvReadWrite,
    /// Named durable pull consumers plus LIST/INFO/NEXT/ACK (wadm's work queues).
    DurablePull,
    /// Unnamed ephemeral pull consumers plus NEXT/ACK (wadm's notify stream).
    EphemeralPull,
    /// Direct get and STREAM.MSG.GET reads (wadm status).
    DirectRead,
    /// Core publishes on the stream's own subjects (wadm's commands, events, status and
    /// notifications are published into its streams).
    Publish,
    /// Core subscriptions on the stream's own subjects (wadm also listens to host events
    /// live, besides consuming them from `wadm_event_consumer`).
    Subscribe,
}

/// One resource that hosts or wadm need.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Stable identifier used in config files for per-resource settings.
    pub key: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    /// Bucket or stream name as users know it; `{lattice}` is replaced per lattice.
    pub name: &'static str,
    pub needed_by: App,
    pub shape: Shape,
    pub access: &'static [Access],
}

/// The catalog. Order matters only in that a sourcing stream comes after its sources;
/// [`Desired::depends_on`] makes that explicit for the executor.
pub static CATALOG: &[Row] = &[
    Row {
        key: "latticedata",
        kind: Kind::Kv,
        scope: Scope::Lattice,
        name: "LATTICEDATA_{lattice}",
        needed_by: App::Host,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWriteWatch],
    },
    Row {
        key: "configdata",
        kind: Kind::Kv,
        scope: Scope::Lattice,
        name: "CONFIGDATA_{lattice}",
        needed_by: App::Host,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWriteWatch],
    },
    Row {
        key: "wadm_manifests",
        kind: Kind::Kv,
        scope: Scope::Wadm,
        name: "wadm_manifests",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
    },
    Row {
        key: "wadm_state",
        kind: Kind::Kv,
        scope: Scope::Wadm,
        name: "wadm_state",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
    },
    Row {
        key: "wadm_events",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wadm_events",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &["wadm.evt.*.>"],
            subjects_multitenant: &["wadm.evt.*.>"],
            retention: Retention::Limits,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description:
                "A stream that stores all events coming in on the wadm.evt subject in a cluster",
            sources: &[],
            subjects_checked_by_wadm: true,
        },
        access: &[Access::Info, Access::Publish],
    },
    Row {
        key: "wadm_commands",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wadm_commands",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &["wadm.cmd.*"],
            subjects_multitenant: &["wadm.cmd.*"],
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream that stores all commands for wadm",
            sources: &[],
            subjects_checked_by_wadm: true,
        },
        access: &[Access::Info, Access::DurablePull, Access::Publish],
    },
    Row {
        key: "wadm_status",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wadm_status",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &["wadm.status.*.*"],
            subjects_multitenant: &["wadm.status.*.*"],
            retention: Retention::Limits,
            max_age_secs: 0,
            max_msgs_per_subject: Some(10),
            allow_direct: true,
            description: "A stream that stores all status updates for wadm applications",
            sources: &[],
            subjects_checked_by_wadm: false,
        },
        access: &[Access::Info, Access::DirectRead, Access::Publish],
    },
    Row {
        key: "wasmbus_events",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wasmbus_events",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &["wasmbus.evt.*.>"],
            subjects_multitenant: &["*.wasmbus.evt.*.>"],
            retention: Retention::Limits,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description:
                "A stream that stores all events coming in on the wasmbus.evt subject in a cluster",
            sources: &[],
            subjects_checked_by_wadm: true,
        },
        access: &[Access::Info, Access::Subscribe],
    },
    Row {
        key: "wadm_notify",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wadm_notify",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &["wadm.notify.*"],
            subjects_multitenant: &["wadm.notify.*"],
            retention: Retention::Interest,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream for capturing all notification events for wadm",
            sources: &[],
            subjects_checked_by_wadm: false,
        },
        access: &[Access::Info, Access::EphemeralPull, Access::Publish],
    },
    Row {
        key: "wadm_event_consumer",
        kind: Kind::Stream,
        scope: Scope::Wadm,
        name: "wadm_event_consumer",
        needed_by: App::Wadm,
        shape: Shape::Stream {
            subjects: &[],
            subjects_multitenant: &[],
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            max_msgs_per_subject: None,
            allow_direct: false,
            description: "A stream that sources from wadm_events and wasmbus_events for wadm event consumer's use",
            sources: &[
                SourceRow {
                    from: "wasmbus_events",
                    transform_src: "wasmbus.evt.*.>",
                    transform_src_multitenant: "*.wasmbus.evt.*.>",
                    transform_dest: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                    transform_dest_multitenant: "wadm_event_consumer.evt.{{wildcard(2)}}.>",
                },
                SourceRow {
                    from: "wadm_events",
                    transform_src: "wadm.evt.*.>",
                    transform_src_multitenant: "wadm.evt.*.>",
                    transform_dest: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                    transform_dest_multitenant: "wadm_event_consumer.evt.{{wildcard(1)}}.>",
                },
            ],
            subjects_checked_by_wadm: false,
        },
        access: &[Access::Info, Access::DurablePull],
    },
    // `--max-lattices` across instances: new lattices are reserved here, one
    // compare-and-set at a time, before they are created (see `admission.rs`).
    Row {
        key: "provisioner_admissions",
        kind: Kind::Kv,
        scope: Scope::Provisioner,
        name: "wasmcloud_provisioner_admissions",
        needed_by: App::Provisioner,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
    },
];

/// Subjects an app uses for its own messaging, outside the resources above: control and
/// RPC traffic, host events. Together with each row's [`Access`] they make the apps'
/// permission templates; `{lattice}` is replaced per lattice. These are the lists proven
/// with host 1.9.2 and wadm 0.21.1 (`shared/spec/permissions.md`).
#[derive(Debug, Clone, Copy)]
pub struct Messaging {
    pub app: App,
    /// Core publishes.
    pub publish: &'static [&'static str],
    /// Core subscriptions.
    pub subscribe: &'static [&'static str],
}

pub static MESSAGING: &[Messaging] = &[
    Messaging {
        app: App::Host,
        // Events and heartbeats; link notifications to providers; wRPC calls.
        publish: &[
            "wasmbus.evt.{lattice}.>",
            "wasmbus.rpc.{lattice}.>",
            "{lattice}.>",
        ],
        // The control interface; wRPC serving.
        subscribe: &["wasmbus.ctl.v1.{lattice}.>", "{lattice}.>"],
    },
    Messaging {
        app: App::Wadm,
        // wadm drives hosts of every lattice through their control interface.
        publish: &["wasmbus.ctl.v1.*.>"],
        // wadm's own API.
        subscribe: &["wadm.api.>"],
    },
];

/// Streams an app looks up (`STREAM.INFO`) but that are never created: wadm 0.21 checks for
/// its legacy mirrors at start to migrate from them, and without the permission logs a
/// violation and waits 5 s.
pub static LOOKED_UP_ONLY: &[(App, &str)] = &[
    (App::Wadm, "wadm_mirror"),
    (App::Wadm, "wadm_multitenant_mirror"),
];

/// Looks a row up by its key.
pub fn row(key: &str) -> Option<&'static Row> {
    CATALOG.iter().find(|r| r.key == key)
}

/// The rows of one scope, in catalog order.
pub fn rows(scope: Scope) -> impl Iterator<Item = &'static Row> {
    CATALOG.iter().filter(move |r| r.scope == scope)
}

/// How one comparison of a must-hold check is made.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The field equals the value exactly.
    Equals(Value),
    /// The field is a number at least this large.
    AtLeast(i64),
    /// The sources, compared by name and subject transforms, ignoring order.
    SameSources(Value),
}

/// Something that must hold on an existing resource or an app breaks.
#[derive(Debug, Clone)]
pub struct Check {
    /// Stream config field, as JetStream names it.
    pub field: &'static str,
    pub rule: Rule,
    pub breaks: App,
    /// What goes wrong, for the operator.
    pub why: &'static str,
}

/// A catalog row made concrete for one lattice and one wadm mode.
#[derive(Debug, Clone)]
pub struct Desired {
    pub row: &'static Row,
    /// Bucket or stream name as users know it.
    pub name: String,
    /// JetStream stream name (`KV_<bucket>` for buckets).
    pub stream: String,
    /// The full create payload (stream config), operator settings applied.
    pub config: Value,
    /// Stream names this one sources from; they must exist first.
    pub depends_on: Vec<String>,
    pub settings: ResourceSettings,
    /// wadm's multitenant mode (changes subjects); false for lattice rows.
    pub multitenant: bool,
    pub must_hold: Vec<Check>,
}

/// Which resource a request wants and with which settings, before its config is built.
///
/// The config is a pure function of the row, the lattice, the wadm mode and the resource
/// settings, so two keys with the same stream, mode and settings want the identical config.
/// That is what the warm path compares (see `reconcile::KnownStreams`): a request whose
/// resources were all checked with the same key is answered without building any config.
#[derive(Debug, Clone)]
pub struct DesiredKey {
    pub row: &'static Row,
    /// Bucket or stream name as users know it (the lattice is in it).
    pub name: String,
    /// JetStream stream name (`KV_<bucket>` for buckets).
    pub stream: String,
    pub multitenant: bool,
    pub settings: ResourceSettings,
}

impl DesiredKey {
    /// Builds the full desired resource: config, dependencies and must-hold checks.
    pub fn desired(self) -> Desired {
        let row = self.row;
        let subjects = row.subjects_named(&self.name, self.multitenant);
        let mut config = match row.shape {
            Shape::Kv => kv_config(&self.stream, &subjects),
            Shape::Stream { .. } => row.stream_config(&self.stream, &subjects, self.multitenant),
        };
        self.settings.apply_to(&mut config);
        let depends_on = row.source_rows().map(|s| s.from.to_string()).collect();
        Desired {
            row,
            name: self.name,
            stream: self.stream,
            must_hold: row.must_hold(&config),
            config,
            depends_on,
            settings: self.settings,
            multitenant: self.multitenant,
        }
    }
}

impl Row {
    /// The user-facing name for a lattice (ignored for wadm rows).
    pub fn name_for(&self, lattice: &str) -> String {
        self.name.replace("{lattice}", lattice)
    }

    /// The stream that backs the resource.
    pub fn stream_for(&self, lattice: &str) -> String {
        match self.kind {
            Kind::Kv => format!("KV_{}", self.name_for(lattice)),
            Kind::Stream => self.name_for(lattice),
        }
    }

    /// Subjects of the backing stream.
    pub fn subjects_for(&self, lattice: &str, multitenant: bool) -> Vec<String> {
        self.subjects_named(&self.name_for(lattice), multitenant)
    }

    /// [`Row::subjects_for`] from the resource's name (`name_for(lattice)`).
    fn subjects_named(&self, name: &str, multitenant: bool) -> Vec<String> {
        match self.shape {
            Shape::Kv => vec![format!("$KV.{name}.>")],
            Shape::Stream {
                subjects,
                subjects_multitenant,
                ..
            } => {
                let list = if multitenant {
                    subjects_multitenant
                } else {
                    subjects
                };
                list.iter().map(|s| s.to_string()).collect()
            }
        }
    }

    /// Makes the row concrete. `lattice` is ignored for wadm rows.
    pub fn desired(
        &'static self,
        lattice: &str,
        multitenant: bool,
        settings: &Settings,
    ) -> Desired {
        self.desired_key(lattice, multitenant, settings).desired()
    }

    /// What [`Row::desired`] is built from, without building the config.
    pub fn desired_key(
        &'static self,
        lattice: &str,
        multitenant: bool,
        settings: &Settings,
    ) -> DesiredKey {
        let lattice = match self.scope {
            Scope::Lattice => lattice,
            Scope::Wadm | Scope::Provisioner => "",
        };
        let name = self.name_for(lattice);
        let stream = match self.kind {
            Kind::Kv => format!("KV_{name}"),
            Kind::Stream => name.clone(),
        };
        DesiredKey {
            row: self,
            name,
            stream,
            multitenant: multitenant && self.scope == Scope::Wadm,
            settings: settings.for_resource(self.key),
        }
    }

    fn source_rows(&self) -> impl Iterator<Item = &'static SourceRow> + '_ {
        let sources: &'static [SourceRow] = match self.shape {
            Shape::Stream { sources, .. } => sources,
            Shape::Kv => &[],
        };
        sources.iter()
    }

    fn stream_config(&self, stream: &str, subjects: &[String], multitenant: bool) -> Value {
        let Shape::Stream {
            retention,
            max_age_secs,
            max_msgs_per_subject,
            allow_direct,
            description,
            sources,
            ..
        } = self.shape
        else {
            unreachable!("stream_config is only called for stream rows")
        };
        let mut c = base_config(stream);
        if !subjects.is_empty() {
            c.insert("subjects".into(), json!(subjects));
        }
        // A subject starting with a wildcard (wadm --multitenant's `*.wasmbus.evt.*.>`)
        // overlaps `$JS.>`; nats-server 2.10.28+/2.11.2+ refuse such a stream (error 10052)
        // unless it is `no_ack`. wadm 0.21 sends no_ack false and so cannot create it on
        // those servers; it binds an existing one by its subjects alone. The apps publish
        // into it without reply subjects, so no_ack changes nothing for them.
        if subjects.iter().any(|s| s.starts_with(['*', '>'])) {
            c.insert("no_ack".into(), json!(true));
        }
        c.insert("description".into(), json!(description));
        c.insert("retention".into(), json!(retention.as_str()));
        c.insert("max_age".into(), json!(max_age_secs * NANOS));
        c.insert(
            "max_msgs_per_subject".into(),
            json!(max_msgs_per_subject.unwrap_or(-1)),
        );
        c.insert("discard".into(), json!("old"));
        c.insert("allow_direct".into(), json!(allow_direct));
        c.insert(
            "duplicate_window".into(),
            json!(duplicate_window_secs(max_age_secs) * NANOS),
        );
        if !sources.is_empty() {
            let list: Vec<Value> = sources
                .iter()
                .map(|s| {
                    let (src, dest) = if multitenant {
                        (s.transform_src_multitenant, s.transform_dest_multitenant)
                    } else {
                        (s.transform_src, s.transform_dest)
                    };
                    // Never set `domain` on a source: nats-server 2.12 rejects it.
                    json!({
                        "name": s.from,
                        "subject_transforms": [{ "src": src, "dest": dest }],
                    })
                })
                .collect();
            c.insert("sources".into(), Value::Array(list));
        }
        Value::Object(c)
    }

    /// What must hold on an existing copy of this resource, derived from its shape and the
    /// desired config. Everything else may differ without breaking the apps.
    fn must_hold(&self, desired: &Value) -> Vec<Check> {
        match self.shape {
            Shape::Kv => vec![
                Check {
                    field: "max_msgs_per_subject",
                    rule: Rule::AtLeast(1),
                    breaks: self.needed_by,
                    why: "history below 1 is not a KV bucket: the app tries to create it, is refused and fails to start",
                },
                Check {
                    field: "allow_rollup_hdrs",
                    rule: Rule::Equals(json!(true)),
                    breaks: self.needed_by,
                    why: "deleting keys uses purge (a rollup), which the stream refuses",
                },
                Check {
                    field: "allow_direct",
                    rule: Rule::Equals(json!(true)),
                    breaks: self.needed_by,
                    why: "reads fall back to STREAM.MSG.GET, which least-privilege users may not call",
                },
                Check {
                    field: "subjects",
                    rule: Rule::Equals(desired["subjects"].clone()),
                    breaks: self.needed_by,
                    why: "KV reads and writes use exactly these subjects",
                },
            ],
            Shape::Stream {
                subjects_checked_by_wadm,
                retention,
                sources,
                ..
            } => {
                let mut checks = Vec::new();
                if subjects_checked_by_wadm {
                    checks.push(Check {
                        field: "subjects",
                        rule: Rule::Equals(desired["subjects"].clone()),
                        breaks: App::Wadm,
                        why: "wadm deletes and recreates the stream (losing its data) unless the subjects are exactly equal",
                    });
                }
                if !sources.is_empty() {
                    checks.push(Check {
                        field: "retention",
                        rule: Rule::Equals(json!(retention.as_str())),
                        breaks: App::Wadm,
                        why: "wadm deletes and recreates the stream unless it is a work queue",
                    });
                    checks.push(Check {
                        field: "sources",
                        rule: Rule::SameSources(desired["sources"].clone()),
                        breaks: App::Wadm,
                        why: "wadm never repairs the sources: without them and their transforms it receives no events",
                    });
                }
                checks
            }
        }
    }
}

/// Settings every catalog stream shares before shape and operator settings are applied.
fn base_config(stream: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("name".into(), json!(stream));
    c.insert("storage".into(), json!("file"));
    c.insert("num_replicas".into(), json!(1));
    c.insert("max_consumers".into(), json!(-1));
    c.insert("max_msgs".into(), json!(-1));
    c.insert("max_bytes".into(), json!(-1));
    c.insert("max_msg_size".into(), json!(-1));
    c.insert("allow_rollup_hdrs".into(), json!(false));
    c.insert("deny_delete".into(), json!(false));
    c.insert("deny_purge".into(), json!(false));
    c.insert("mirror_direct".into(), json!(false));
    c
}

/// The KV stream config, as async-nats `create_key_value` with a default config (history
/// 1, no TTL, no limits) produces it once the server has filled its defaults.
fn kv_config(stream: &str, subjects: &[String]) -> Value {
    let mut c = base_config(stream);
    c.insert("subjects".into(), json!(subjects));
    c.insert("retention".into(), json!("limits"));
    c.insert("max_age".into(), json!(0));
    c.insert("max_msgs_per_subject".into(), json!(1));
    c.insert("discard".into(), json!("new"));
    c.insert(
        "duplicate_window".into(),
        json!(DEFAULT_DUPLICATE_WINDOW_SECS * NANOS),
    );
    c.insert("allow_rollup_hdrs".into(), json!(true));
    c.insert("deny_delete".into(), json!(true));
    c.insert("allow_direct".into(), json!(true));
    Value::Object(c)
}

/// The server caps the duplicate window at `max_age`.
fn duplicate_window_secs(max_age_secs: u64) -> u64 {
    if max_age_secs > 0 && max_age_secs < DEFAULT_DUPLICATE_WINDOW_SECS {
        max_age_secs
    } else {
        DEFAULT_DUPLICATE_WINDOW_SECS
    }
}

/// Everything a lattice needs, in creation order.
pub fn lattice_resources(lattice: &str, settings: &Settings) -> Vec<Desired> {
    lattice_keys(lattice, settings)
        .into_iter()
        .map(DesiredKey::desired)
        .collect()
}

/// Everything wadm needs, in creation order.
pub fn wadm_resources(multitenant: bool, settings: &Settings) -> Vec<Desired> {
    wadm_keys(multitenant, settings)
        .into_iter()
        .map(DesiredKey::desired)
        .collect()
}

/// The keys of [`lattice_resources`], configs not built.
pub fn lattice_keys(lattice: &str, settings: &Settings) -> Vec<DesiredKey> {
    rows(Scope::Lattice)
        .map(|r| r.desired_key(lattice, false, settings))
        .collect()
}

/// The keys of [`wadm_resources`], configs not built.
pub fn wadm_keys(multitenant: bool, settings: &Settings) -> Vec<DesiredKey> {
    rows(Scope::Wadm)
        .map(|r| r.desired_key("", multitenant, settings))
        .collect()
}

/// Evaluates a check against an observed stream config. `None` when it holds.
pub fn violated(check: &Check, observed: &Value) -> Option<Value> {
    let have = observed.get(check.field).cloned().unwrap_or(Value::Null);
    let holds = match &check.rule {
        Rule::Equals(want) => {
            &have == want || (want.is_array() && have.is_null() && want == &json!([]))
        }
        Rule::AtLeast(min) => have.as_i64().is_some_and(|v| v >= *min),
        Rule::SameSources(want) => same_sources(want, &have),
    };
    (!holds).then_some(have)
}

/// Compares sources by name and subject transforms, ignoring order and fields the server
/// adds (such as an empty `filter_subject`).
fn same_sources(want: &Value, have: &Value) -> bool {
    fn key(source: &Value) -> (String, Vec<(String, String)>) {
        let name = source["name"].as_str().unwrap_or_default().to_string();
        let mut transforms: Vec<(String, String)> = source["subject_transforms"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|t| {
                        (
                            t["src"].as_str().unwrap_or_default().to_string(),
                            t["dest"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        transforms.sort();
        (name, transforms)
    }
    let keys = |v: &Value| {
        let mut k: Vec<_> = v
            .as_array()
            .map(|l| l.iter().map(key).collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    keys(want) == keys(have)
}

/// What a rule wants, for reports.
pub fn wanted(check: &Check) -> Value {
    match &check.rule {
        Rule::Equals(v) | Rule::SameSources(v) => v.clone(),
        Rule::AtLeast(min) => json!(format!(">= {min}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_comes_from_an_earlier_row() {
        for (i, row) in CATALOG.iter().enumerate() {
            for s in row.source_rows() {
                let pos = CATALOG.iter().position(|r| r.key == s.from);
                assert!(pos.is_some_and(|p| p < i), "{} sources {}", row.key, s.from);
            }
        }
    }

    #[test]
    fn keys_and_names_are_unique() {
        let mut keys: Vec<_> = CATALOG.iter().map(|r| r.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CATALOG.len());
    }

    #[test]
    fn kv_bucket_config_matches_the_spec() {
        let d = row("latticedata")
            .unwrap()
            .desired("default", false, &Settings::default());
        assert_eq!(d.name, "LATTICEDATA_default");
        assert_eq!(d.stream, "KV_LATTICEDATA_default");
        let c = &d.config;
        assert_eq!(c["subjects"], json!(["$KV.LATTICEDATA_default.>"]));
        assert_eq!(c["max_msgs_per_subject"], 1);
        assert_eq!(c["discard"], "new");
        assert_eq!(c["allow_rollup_hdrs"], true);
        assert_eq!(c["deny_delete"], true);
        assert_eq!(c["allow_direct"], true);
        assert_eq!(c["duplicate_window"], 120 * NANOS);
        assert!(c.get("description").is_none());
    }

    #[test]
    fn multitenant_changes_wasmbus_events_and_its_transform() {
        let s = Settings::default();
        let w = row("wasmbus_events").unwrap().desired("", true, &s);
        assert_eq!(w.config["subjects"], json!(["*.wasmbus.evt.*.>"]));
        // Overlaps `$JS.>`: servers since 2.10.28/2.11.2 only accept it with no_ack.
        assert_eq!(w.config["no_ack"], true);
        let single = row("wasmbus_events").unwrap().desired("", false, &s);
        assert!(single.config.get("no_ack").is_none());
        let c = row("wadm_event_consumer").unwrap().desired("", true, &s);
        let first = &c.config["sources"][0];
        assert_eq!(first["name"], "wasmbus_events");
        assert_eq!(first["subject_transforms"][0]["src"], "*.wasmbus.evt.*.>");
        assert_eq!(
            first["subject_transforms"][0]["dest"],
            "wadm_event_consumer.evt.{{wildcard(2)}}.>"
        );
        assert!(c.config.get("subjects").is_none());
        assert_eq!(c.depends_on, vec!["wasmbus_events", "wadm_events"]);
    }

    #[test]
    fn duplicate_window_is_capped_by_max_age() {
        assert_eq!(duplicate_window_secs(70), 70);
        assert_eq!(duplicate_window_secs(0), 120);
        assert_eq!(duplicate_window_secs(600), 120);
    }

    #[test]
    fn checks_detect_violations() {
        let d = row("configdata")
            .unwrap()
            .desired("x", false, &Settings::default());
        let mut observed = d.config.clone();
        assert!(d.must_hold.iter().all(|c| violated(c, &observed).is_none()));
        observed["max_msgs_per_subject"] = json!(-1);
        observed["allow_rollup_hdrs"] = json!(false);
        let broken: Vec<_> = d
            .must_hold
            .iter()
            .filter(|c| violated(c, &observed).is_some())
            .map(|c| c.field)
            .collect();
        assert_eq!(broken, vec!["max_msgs_per_subject", "allow_rollup_hdrs"]);
    }

    #[test]
    fn sources_compare_ignoring_order_and_extra_fields() {
        let d = row("wadm_event_consumer")
            .unwrap()
            .desired("", false, &Settings::default());
        let mut have = d.config["sources"].clone();
        have.as_array_mut().unwrap().reverse();
        have[0]["filter_subject"] = json!("");
        assert!(same_sources(&d.config["sources"], &have));
        have.as_array_mut().unwrap().pop();
        assert!(!same_sources(&d.config["sources"], &have));
    }
}
