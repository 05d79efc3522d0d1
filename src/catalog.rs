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

mod fields;
pub use fields::{
    field_rule, is_unset, readme_table, same_setting, Class, FieldRule, Note, Trait, Treatment,
    Want, FIELDS, MIN_MAX_BYTES, MIN_MAX_MSG_SIZE,
};

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

/// Which request provisions a resource: once per lattice, once for wadm, or once for the
/// Kubernetes operator of one version (with wadm's, when asked for); or the provisioner's
/// own bookkeeping, created when the provisioner first needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Lattice,
    Wadm,
    Operator(Operator),
    Provisioner,
}

/// The wasmCloud Kubernetes operator's version line. Its stream and consumer names changed
/// when it was renamed from wasmcloud-operator (0.4.x, what the `wasmcloud-platform` chart
/// 0.1.x installs, and the last release under that name, 0.5.0) to wadm-operator (tag
/// v0.5.1 on); everything else about them is the same. The value names the stream, so a
/// wasmcloud-operator 0.5.0 is `0.4`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
pub enum Operator {
    /// wasmcloud-operator 0.4.x and 0.5.0: stream `wasmcloud_operator_events`.
    #[serde(rename = "0.4")]
    #[value(name = "0.4")]
    V0_4,
    /// wadm-operator (0.5.1 on): stream `wadm_operator_events`.
    #[serde(rename = "0.5")]
    #[value(name = "0.5")]
    V0_5,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::V0_4 => "0.4",
            Operator::V0_5 => "0.5",
        }
    }
}

/// The application that binds a resource and breaks when it is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    Host,
    Wadm,
    /// The wasmCloud Kubernetes operator (wasmcloud-operator 0.4.x–0.5.0 / wadm-operator).
    Operator,
    /// The provisioner itself (its bookkeeping; no host or wadm gets access to it).
    Provisioner,
}

impl App {
    pub fn as_str(self) -> &'static str {
        match self {
            App::Host => "host",
            App::Wadm => "wadm",
            App::Operator => "operator",
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
    /// A mirror of another catalog stream, with one subject transform: no subjects of its
    /// own. Duplicate window and the like are left to the server, as the app leaves them.
    Mirror {
        retention: Retention,
        max_age_secs: u64,
        description: &'static str,
        mirror: SourceRow,
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
    /// One named durable pull consumer per lattice (`{lattice}` in `consumer`), bound or
    /// created with async-nats `get_or_create_consumer`: CONSUMER.INFO, then on a 404
    /// CONSUMER.CREATE.<stream>.<name>.<filter>; then MSG.NEXT and acks. No LIST, no
    /// ephemeral consumers (the operator).
    NamedPull { consumer: &'static str },
}

/// Which `backup` run takes a resource. wasmCloud's docs ask for the host's buckets and
/// wadm's manifests to be "file backed and backed up": they hold what nobody can rebuild
/// (component config, links, application definitions). wadm rebuilds its state within
/// about a minute and its streams carry short-lived events, so those are optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backup {
    /// Taken by every `backup` (the default set).
    Recommended,
    /// Taken only by `backup --all`.
    Optional,
    /// Never taken: data derived from other streams (a mirror copies its origin, and its
    /// deletions and corruption with it), restored by restoring the origin.
    Never,
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
    /// Whether `backup` takes it by default or only with `--all` (see `crate::backup`).
    pub backup: Backup,
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
        backup: Backup::Recommended,
    },
    Row {
        key: "configdata",
        kind: Kind::Kv,
        scope: Scope::Lattice,
        name: "CONFIGDATA_{lattice}",
        needed_by: App::Host,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWriteWatch],
        backup: Backup::Recommended,
    },
    Row {
        key: "wadm_manifests",
        kind: Kind::Kv,
        scope: Scope::Wadm,
        name: "wadm_manifests",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
        backup: Backup::Recommended,
    },
    Row {
        key: "wadm_state",
        kind: Kind::Kv,
        scope: Scope::Wadm,
        name: "wadm_state",
        needed_by: App::Wadm,
        shape: Shape::Kv,
        access: &[Access::Info, Access::KvReadWrite],
        backup: Backup::Optional,
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
        backup: Backup::Optional,
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
        backup: Backup::Optional,
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
        backup: Backup::Optional,
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
        backup: Backup::Optional,
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
        backup: Backup::Optional,
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
        backup: Backup::Optional,
    },
    // The Kubernetes operator's stream, as wasmcloud-operator 0.4.x–0.5.0 / wadm-operator
    // create it (`get_or_create_stream`, async-nats 0.33): a work-queue mirror of
    // `wadm_events` whose transform puts each lattice's events under `<stream>.<l>.>`,
    // where the operator's per-lattice consumer (filter `<stream>.<l>.>`) reads them.
    Row {
        key: "wasmcloud_operator_events",
        kind: Kind::Stream,
        scope: Scope::Operator(Operator::V0_4),
        name: "wasmcloud_operator_events",
        needed_by: App::Operator,
        shape: Shape::Mirror {
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            description: "Stream for wadm events consumed by the wasmCloud K8s Operator",
            mirror: SourceRow {
                from: "wadm_events",
                transform_src: "wadm.evt.*.>",
                transform_src_multitenant: "wadm.evt.*.>",
                transform_dest: "wasmcloud_operator_events.{{wildcard(1)}}.>",
                transform_dest_multitenant: "wasmcloud_operator_events.{{wildcard(1)}}.>",
            },
        },
        access: &[
            Access::Info,
            Access::NamedPull {
                consumer: "wasmcloud_operator_service-{lattice}",
            },
        ],
        // A mirror of wadm_events: made again from it, nothing of its own to keep.
        backup: Backup::Never,
    },
    Row {
        key: "wadm_operator_events",
        kind: Kind::Stream,
        scope: Scope::Operator(Operator::V0_5),
        name: "wadm_operator_events",
        needed_by: App::Operator,
        shape: Shape::Mirror {
            retention: Retention::WorkQueue,
            max_age_secs: WADM_MAX_AGE_SECS,
            description: "Stream for wadm events consumed by the wadm K8s Operator",
            mirror: SourceRow {
                from: "wadm_events",
                transform_src: "wadm.evt.*.>",
                transform_src_multitenant: "wadm.evt.*.>",
                transform_dest: "wadm_operator_events.{{wildcard(1)}}.>",
                transform_dest_multitenant: "wadm_operator_events.{{wildcard(1)}}.>",
            },
        },
        access: &[
            Access::Info,
            Access::NamedPull {
                consumer: "wadm_operator_service-{lattice}",
            },
        ],
        // A mirror of wadm_events: made again from it, nothing of its own to keep.
        backup: Backup::Never,
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
        // Reservations that live minutes: nothing to restore.
        backup: Backup::Never,
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
    Messaging {
        app: App::Operator,
        // The six wadm API calls the operator makes (wadm-client 0.2: list, get, status,
        // put + deploy, delete), named exactly rather than `wadm.api.{lattice}.>`: the
        // operator never undeploys or lists versions, and in the platform chart its user is
        // also the hosts' leaf link, which anything reaching a host pod may use.
        publish: &[
            "wadm.api.{lattice}.model.list",
            "wadm.api.{lattice}.model.get.*",
            "wadm.api.{lattice}.model.status.*",
            "wadm.api.{lattice}.model.put",
            "wadm.api.{lattice}.model.deploy.*",
            "wadm.api.{lattice}.model.del.*",
        ],
        // Only replies, on `_INBOX.>`.
        subscribe: &[],
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

/// The operator's stream row for its version.
pub fn operator_row(operator: Operator) -> &'static Row {
    rows(Scope::Operator(operator))
        .next()
        .unwrap_or_else(|| unreachable!("the catalog has a row for every operator version"))
}

/// How one comparison of a must-hold check is made.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The field equals the value (a missing field equals the zero value of any type: the
    /// server leaves zero values out of the configs it returns).
    Equals(Value),
    /// The field is a number at least this large.
    AtLeast(i64),
    /// The field is `unlimited` or a number at least `min`.
    Limit { unlimited: i64, min: i64 },
    /// The field is unset or this string.
    UnsetOr(&'static str),
    /// The sources, compared by name and subject transforms, ignoring order.
    SameSources(Value),
    /// The mirror, compared like one source.
    SameMirror(Value),
}

impl Rule {
    /// Whether an observed value (`Null` when missing) satisfies the rule.
    pub fn holds(&self, have: &Value) -> bool {
        match self {
            Rule::Equals(want) => same_setting(have, want),
            Rule::AtLeast(min) => have.as_i64().is_some_and(|v| v >= *min),
            Rule::Limit { unlimited, min } => {
                have.as_i64().is_some_and(|v| v == *unlimited || v >= *min)
            }
            Rule::UnsetOr(value) => is_unset(have) || have.as_str() == Some(value),
            Rule::SameSources(want) => same_sources(want, have),
            Rule::SameMirror(want) => {
                !have.is_null() && same_sources(&json!([want]), &json!([have]))
            }
        }
    }

    /// What the rule wants, for reports.
    pub fn wanted(&self) -> Value {
        fields::wanted_value(self)
    }
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
            Shape::Mirror { .. } => row.mirror_config(&self.stream),
        };
        self.settings.apply_to(&mut config);
        let depends_on = row
            .source_rows()
            .copied()
            .chain(row.mirror_row())
            .map(|s| s.from.to_string())
            .collect();
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
            Shape::Mirror { .. } => Vec::new(),
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
            Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => "",
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
            Shape::Kv | Shape::Mirror { .. } => &[],
        };
        sources.iter()
    }

    fn mirror_row(&self) -> Option<SourceRow> {
        match self.shape {
            Shape::Mirror { mirror, .. } => Some(mirror),
            Shape::Kv | Shape::Stream { .. } => None,
        }
    }

    /// A mirror's config, as the server normalizes the app's create request: no subjects,
    /// no duplicate window (the server keeps none for a mirror), one transform.
    fn mirror_config(&self, stream: &str) -> Value {
        let Shape::Mirror {
            retention,
            max_age_secs,
            description,
            mirror,
        } = self.shape
        else {
            unreachable!("mirror_config is only called for mirror rows")
        };
        let mut c = base_config(stream);
        c.insert("description".into(), json!(description));
        c.insert("retention".into(), json!(retention.as_str()));
        c.insert("max_age".into(), json!(max_age_secs * NANOS));
        c.insert("max_msgs_per_subject".into(), json!(-1));
        c.insert("discard".into(), json!("old"));
        c.insert("allow_direct".into(), json!(false));
        // Never set `domain` on a mirror either: nats-server 2.12 rejects it.
        c.insert(
            "mirror".into(),
            json!({
                "name": mirror.from,
                "subject_transforms": [{ "src": mirror.transform_src, "dest": mirror.transform_dest }],
            }),
        );
        Value::Object(c)
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

    /// What must hold on an existing copy of this resource for the apps to work: the drift
    /// rules of [`FIELDS`] that apply to this row, made concrete with its desired config.
    fn must_hold(&self, desired: &Value) -> Vec<Check> {
        self.checks(desired)
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

/// The operator's stream for its version, configs not built. It mirrors `wadm_events`, so
/// it goes with wadm's resources and is created after them.
pub fn operator_keys(operator: Operator, settings: &Settings) -> Vec<DesiredKey> {
    vec![operator_row(operator).desired_key("", false, settings)]
}

/// Evaluates a check against an observed stream config. `None` when it holds.
pub fn violated(check: &Check, observed: &Value) -> Option<Value> {
    let have = observed.get(check.field).cloned().unwrap_or(Value::Null);
    (!check.rule.holds(&have)).then_some(have)
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
    check.rule.wanted()
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

    /// `shared/spec/resources.md` §6, as a real nats-server normalizes the operator's
    /// create request.
    #[test]
    fn operator_stream_is_the_mirror_the_operator_creates() {
        let s = Settings::default();
        for (v, name) in [
            (Operator::V0_4, "wasmcloud_operator_events"),
            (Operator::V0_5, "wadm_operator_events"),
        ] {
            let keys = operator_keys(v, &s);
            assert_eq!(keys.len(), 1);
            let d = keys.into_iter().next().unwrap().desired();
            assert_eq!(d.stream, name);
            assert_eq!(d.row.needed_by, App::Operator);
            let c = &d.config;
            assert!(c.get("subjects").is_none(), "a mirror has no subjects");
            assert!(c.get("duplicate_window").is_none());
            assert_eq!(c["retention"], "workqueue");
            assert_eq!(c["max_age"], 70 * NANOS);
            assert_eq!(c["discard"], "old");
            assert_eq!(c["num_replicas"], 1);
            assert_eq!(c["allow_direct"], false);
            assert_eq!(
                c["mirror"],
                json!({
                    "name": "wadm_events",
                    "subject_transforms": [{
                        "src": "wadm.evt.*.>",
                        "dest": format!("{name}.{{{{wildcard(1)}}}}.>"),
                    }],
                })
            );
            assert!(c["mirror"].get("domain").is_none());
            assert_eq!(d.depends_on, vec!["wadm_events"]);
            assert!(c["description"]
                .as_str()
                .unwrap()
                .starts_with("Stream for wadm events consumed by the w"));
            // Not among wadm's own rows: only asked for with an operator version.
            assert!(!wadm_keys(false, &s).iter().any(|k| k.stream == name));
        }
    }

    #[test]
    fn operator_stream_checks_retention_and_mirror() {
        let d = operator_row(Operator::V0_4).desired("", false, &Settings::default());
        let mut observed = d.config.clone();
        // What the server adds does not matter.
        observed["mirror"]["filter_subject"] = json!("");
        observed["duplicate_window"] = json!(0);
        assert!(d.must_hold.iter().all(|c| violated(c, &observed).is_none()));
        observed["retention"] = json!("limits");
        observed["mirror"]["subject_transforms"][0]["dest"] = json!("x.{{wildcard(1)}}.>");
        let broken: Vec<_> = d
            .must_hold
            .iter()
            .filter(|c| violated(c, &observed).is_some())
            .map(|c| (c.field, c.breaks))
            .collect();
        assert_eq!(
            broken,
            vec![("retention", App::Operator), ("mirror", App::Operator)]
        );
        observed.as_object_mut().unwrap().remove("mirror");
        observed["subjects"] = json!(["wadm.evt.*.>"]);
        let mirror = d.must_hold.iter().find(|c| c.field == "mirror").unwrap();
        assert_eq!(violated(mirror, &observed), Some(Value::Null));
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
