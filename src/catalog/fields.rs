//! How every field of a JetStream stream config is judged on an existing resource.
//!
//! A resource the provisioner did not create (a host, wadm or a person made it) is checked
//! field by field against [`FIELDS`], one row per field nats-server 2.12 has in a stream
//! config. Each field gets, per kind of resource (KV bucket or wadm stream), one [`Class`]:
//! - **drift**: a value that breaks host or wadm (puts that hang or fail, keys that expire,
//!   watches refused). Reported as drift; nothing is changed;
//! - **tolerated**: the apps work with any value; a value other than the catalog's is
//!   reported as a note, so the operator sees it;
//! - **note**: a setting the catalog never makes and the apps do not need, which exposes or
//!   alters the data (a republish copies every message to another subject, a source
//!   writes another stream's messages into a bucket): always reported as a note;
//! - **irrelevant**: no effect on the apps (compression, metadata, …); not reported.
//!
//! A field that is not in the table (a newer server's setting) is reported as a note when
//! it is set, and the test `every_server_field_is_classified` fails, so that a new server
//! version's field gets a row here.
//!
//! The two size floors are the same for every resource: a value of any size that NATS
//! carries by default (`max_payload` 1 MiB) must fit. wadm keeps every version of an
//! application in one key of `wadm_manifests` and each lattice's host inventory in one key
//! of `wadm_state`, and the hosts' config values are the operator's, so no smaller bound
//! is safe; a stream whose `max_bytes` cannot hold even one such message refuses it (or,
//! with discard old, keeps nothing).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{Check, Kind, Row, Rule, Shape};

/// One mebibyte: nats-server's default `max_payload`, the largest message a client may send
/// unless the operator raised it.
pub const MIB: i64 = 1024 * 1024;

/// The smallest `max_bytes` a resource may have (besides -1, unlimited).
pub const MIN_MAX_BYTES: i64 = MIB;

/// The smallest `max_msg_size` a resource may have (besides -1, unlimited).
pub const MIN_MAX_MSG_SIZE: i64 = MIB;

/// What a value must be, before it is made concrete against the catalog's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The value the catalog creates (a missing field and its zero value are the same).
    AsCreated,
    /// Not set: missing, or its zero value (false, 0, "", [] or {}).
    Unset,
    /// Not set, or this value (the server's name for its default).
    UnsetOr(&'static str),
    /// A number at least this large.
    AtLeast(i64),
    /// `unlimited`, or a number at least `min`.
    Limit { unlimited: i64, min: i64 },
    /// `unlimited`, or at least the catalog's value; anything when the catalog's value is
    /// itself `unlimited`.
    LimitAsCreated { unlimited: i64 },
    /// The catalog's sources, by name and subject transforms, in any order.
    SameSources,
}

impl Want {
    /// The concrete rule for a resource whose desired config is `desired`; `None` when
    /// anything holds.
    fn rule(self, field: &str, desired: &Value) -> Option<Rule> {
        let created = desired.get(field).cloned().unwrap_or(Value::Null);
        Some(match self {
            Want::AsCreated => Rule::Equals(created),
            Want::Unset => Rule::Equals(Value::Null),
            Want::UnsetOr(value) => Rule::UnsetOr(value),
            Want::AtLeast(min) => Rule::AtLeast(min),
            Want::Limit { unlimited, min } => Rule::Limit { unlimited, min },
            Want::LimitAsCreated { unlimited } => match created.as_i64() {
                Some(min) if min != unlimited => Rule::Limit { unlimited, min },
                _ => return None,
            },
            Want::SameSources => Rule::SameSources(created),
        })
    }

    /// For the README.
    fn describe(self) -> String {
        match self {
            Want::AsCreated => "as created".into(),
            Want::Unset => "unset".into(),
            Want::UnsetOr(value) => format!("unset or `{value}`"),
            Want::AtLeast(min) => format!("≥ {min}"),
            Want::Limit { unlimited, min } => format!("`{unlimited}` or ≥ {}", human(min)),
            Want::LimitAsCreated { unlimited } => format!("`{unlimited}` or ≥ as created"),
            Want::SameSources => "the same sources and transforms".into(),
        }
    }
}

/// A property of a catalog row that decides whether a field is checked on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trait {
    /// wadm deletes and recreates the stream unless its subjects are exactly equal.
    SubjectsCheckedByWadm,
    /// The stream sources others (wadm checks its retention, and needs its sources).
    Sourcing,
}

impl Trait {
    fn holds_for(self, row: &Row) -> bool {
        match (self, row.shape) {
            (
                Trait::SubjectsCheckedByWadm,
                Shape::Stream {
                    subjects_checked_by_wadm,
                    ..
                },
            ) => subjects_checked_by_wadm,
            (Trait::Sourcing, Shape::Stream { sources, .. }) => !sources.is_empty(),
            (_, Shape::Kv | Shape::Mirror { .. }) => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Trait::SubjectsCheckedByWadm => "`wadm_events`, `wadm_commands`, `wasmbus_events`",
            Trait::Sourcing => "`wadm_event_consumer`",
        }
    }
}

/// How a field is judged on one kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Drift unless the value is as wanted. A value that holds but is not the catalog's is
    /// a note.
    Drift(Want),
    /// As [`Class::Drift`] on rows with the trait; elsewhere tolerated, with this note.
    DriftWhere(Trait, Want, &'static str),
    /// Any value works; one other than the catalog's is a note.
    Tolerated,
    /// A note unless the value is as wanted: it exposes or alters the data, or weakens
    /// durability, without breaking the apps.
    Note(Want),
    /// No effect on the apps; never reported.
    Irrelevant,
    /// The planner handles it itself (`num_replicas`: raised, never lowered; `name`).
    Planned,
}

/// A class and why it was chosen: for drift, what breaks; for a note, what the operator
/// should know.
#[derive(Debug, Clone, Copy)]
pub struct Treatment {
    pub class: Class,
    pub why: &'static str,
}

/// One stream config field and how it is judged on each kind of resource.
#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    /// The field as JetStream names it in a stream config.
    pub field: &'static str,
    pub kv: Treatment,
    pub stream: Treatment,
}

impl FieldRule {
    pub fn treatment(&self, kind: Kind) -> &Treatment {
        match kind {
            Kind::Kv => &self.kv,
            Kind::Stream => &self.stream,
        }
    }
}

const fn t(class: Class, why: &'static str) -> Treatment {
    Treatment { class, why }
}

/// Why a value that holds a drift rule but is not the catalog's is a note.
const WITHIN_BOUNDS: &str = "differs from what the apps would create; within what they work with";

/// Every field of a nats-server 2.12 stream config, in the server's order.
pub static FIELDS: &[FieldRule] = &[
    FieldRule {
        field: "name",
        kv: t(Class::Planned, "the stream is looked up by it"),
        stream: t(Class::Planned, "the stream is looked up by it"),
    },
    FieldRule {
        field: "description",
        kv: t(Class::Irrelevant, "the apps never read it"),
        stream: t(Class::Tolerated, "wadm sets it but never reads it"),
    },
    FieldRule {
        field: "subjects",
        kv: t(
            Class::Drift(Want::AsCreated),
            "KV reads and writes use exactly these subjects",
        ),
        stream: t(
            Class::DriftWhere(
                Trait::SubjectsCheckedByWadm,
                Want::AsCreated,
                "wadm does not check the subjects of this stream; it publishes and consumes \
                 on the catalog's",
            ),
            "wadm deletes and recreates the stream (losing its data) unless the subjects are \
             exactly equal",
        ),
    },
    FieldRule {
        field: "retention",
        kv: t(
            Class::Drift(Want::AsCreated),
            "a KV bucket must keep its values: a work queue refuses the watches' consumers, \
             interest retention drops values nobody consumes",
        ),
        stream: t(
            Class::DriftWhere(
                Trait::Sourcing,
                Want::AsCreated,
                "wadm does not check the retention of this stream",
            ),
            "wadm deletes and recreates the stream unless it is a work queue",
        ),
    },
    FieldRule {
        field: "max_consumers",
        kv: t(
            Class::Tolerated,
            "caps the consumers: every host watches the bucket with consumers of its own, so \
             hosts past the cap cannot watch; prefer an account limit",
        ),
        stream: t(
            Class::Tolerated,
            "caps the consumers: wadm creates one durable consumer per lattice",
        ),
    },
    FieldRule {
        field: "max_msgs",
        kv: t(
            Class::Tolerated,
            "once the bucket holds this many messages (each key and each delete marker is \
             one), puts of new keys fail (discard new) or the oldest keys vanish (discard old)",
        ),
        stream: t(
            Class::Tolerated,
            "once the stream holds this many messages, the oldest are dropped before wadm \
             may have read them",
        ),
    },
    FieldRule {
        field: "max_bytes",
        kv: t(
            Class::Drift(Want::Limit {
                unlimited: -1,
                min: MIN_MAX_BYTES,
            }),
            "the bucket cannot hold even one value of the size NATS carries by default \
             (1 MiB): puts fail",
        ),
        stream: t(
            Class::Drift(Want::Limit {
                unlimited: -1,
                min: MIN_MAX_BYTES,
            }),
            "the stream cannot hold even one message of the size NATS carries by default \
             (1 MiB): wadm loses events and commands",
        ),
    },
    FieldRule {
        field: "max_age",
        kv: t(
            Class::Drift(Want::Unset),
            "keys expire: the host loses links and config, wadm its applications and state",
        ),
        stream: t(
            Class::Drift(Want::LimitAsCreated { unlimited: 0 }),
            "events and commands expire before the 70 s wadm keeps them for",
        ),
    },
    FieldRule {
        field: "max_msgs_per_subject",
        kv: t(
            Class::Drift(Want::AtLeast(1)),
            "history below 1 is not a KV bucket: the app tries to create it, is refused and \
             fails to start",
        ),
        stream: t(
            Class::Tolerated,
            "keeps fewer messages per subject than wadm expects",
        ),
    },
    FieldRule {
        field: "max_msg_size",
        kv: t(
            Class::Drift(Want::Limit {
                unlimited: -1,
                min: MIN_MAX_MSG_SIZE,
            }),
            "puts of values the apps write fail: a value may be as large as NATS carries by \
             default (1 MiB; wadm keeps every version of an application in one key)",
        ),
        stream: t(
            Class::Drift(Want::Limit {
                unlimited: -1,
                min: MIN_MAX_MSG_SIZE,
            }),
            "messages the apps publish are refused: one may be as large as NATS carries by \
             default (1 MiB)",
        ),
    },
    FieldRule {
        field: "discard",
        kv: t(
            Class::Tolerated,
            "with discard old, a full bucket silently drops its oldest keys instead of \
             refusing puts",
        ),
        stream: t(
            Class::Tolerated,
            "with discard new, a full stream refuses new events and commands",
        ),
    },
    FieldRule {
        field: "storage",
        kv: t(
            Class::Tolerated,
            "storage cannot change on a live stream; tolerated by the apps",
        ),
        stream: t(
            Class::Tolerated,
            "storage cannot change on a live stream; tolerated by the apps",
        ),
    },
    FieldRule {
        field: "num_replicas",
        kv: t(
            Class::Planned,
            "fewer replicas than wanted are raised; more are a note",
        ),
        stream: t(
            Class::Planned,
            "fewer replicas than wanted are raised; more are a note",
        ),
    },
    FieldRule {
        field: "no_ack",
        kv: t(
            Class::Drift(Want::Unset),
            "JetStream does not acknowledge writes: every KV put waits for an ack that never \
             comes",
        ),
        stream: t(
            Class::Tolerated,
            "JetStream does not acknowledge writes: a client that waits for the ack times out \
             (hosts publish wasmbus events without one; the catalog sets it where the \
             server requires it)",
        ),
    },
    FieldRule {
        field: "template_owner",
        kv: t(
            Class::Irrelevant,
            "deprecated stream templates, which the apps never use",
        ),
        stream: t(
            Class::Irrelevant,
            "deprecated stream templates, which the apps never use",
        ),
    },
    FieldRule {
        field: "duplicate_window",
        kv: t(Class::Tolerated, "the apps send no message ids"),
        stream: t(Class::Tolerated, "the apps send no message ids"),
    },
    FieldRule {
        field: "placement",
        kv: t(
            Class::Tolerated,
            "placement is only applied when the stream is created",
        ),
        stream: t(
            Class::Tolerated,
            "placement is only applied when the stream is created",
        ),
    },
    FieldRule {
        field: "mirror",
        kv: t(
            Class::Drift(Want::Unset),
            "a mirror refuses the apps' writes",
        ),
        stream: t(
            Class::Drift(Want::Unset),
            "a mirror refuses the apps' writes",
        ),
    },
    FieldRule {
        field: "sources",
        kv: t(
            Class::Note(Want::Unset),
            "another stream's messages are written into the bucket: whoever may write there \
             writes these keys",
        ),
        stream: t(
            Class::DriftWhere(
                Trait::Sourcing,
                Want::SameSources,
                "another stream's messages are written into this one: whoever may write there \
                 writes these events",
            ),
            "wadm never repairs the sources: without them and their transforms it receives no \
             events",
        ),
    },
    FieldRule {
        field: "compression",
        kv: t(Class::Irrelevant, "transparent to clients"),
        stream: t(Class::Irrelevant, "transparent to clients"),
    },
    FieldRule {
        field: "first_seq",
        kv: t(Class::Irrelevant, "only used when the stream is created"),
        stream: t(Class::Irrelevant, "only used when the stream is created"),
    },
    FieldRule {
        field: "subject_transform",
        kv: t(
            Class::Drift(Want::Unset),
            "stored messages get other subjects than were written: keys change or vanish",
        ),
        stream: t(
            Class::Drift(Want::Unset),
            "stored messages get other subjects than were published: wadm's consumers, which \
             filter by subject, miss them",
        ),
    },
    FieldRule {
        field: "republish",
        kv: t(
            Class::Note(Want::Unset),
            "every value written is also published on another subject: whoever may \
             subscribe there reads this bucket (config values included)",
        ),
        stream: t(
            Class::Note(Want::Unset),
            "every message stored is also published on another subject: whoever may \
             subscribe there reads it",
        ),
    },
    FieldRule {
        field: "allow_direct",
        kv: t(
            Class::Drift(Want::AsCreated),
            "reads fall back to STREAM.MSG.GET, which least-privilege users may not call",
        ),
        stream: t(
            Class::Tolerated,
            "wadm reads wadm_status by direct get and falls back to STREAM.MSG.GET",
        ),
    },
    FieldRule {
        field: "mirror_direct",
        kv: t(Class::Irrelevant, "only for mirrors, which are drift"),
        stream: t(Class::Irrelevant, "only for mirrors, which are drift"),
    },
    FieldRule {
        field: "discard_new_per_subject",
        kv: t(
            Class::Drift(Want::Unset),
            "with history 1, every put to an existing key is refused",
        ),
        stream: t(
            Class::Tolerated,
            "refuses messages on a subject that holds max_msgs_per_subject (wadm_status: 10)",
        ),
    },
    FieldRule {
        field: "sealed",
        kv: t(
            Class::Drift(Want::Unset),
            "a sealed stream refuses every write",
        ),
        stream: t(
            Class::Drift(Want::Unset),
            "a sealed stream refuses every write",
        ),
    },
    FieldRule {
        field: "deny_delete",
        kv: t(
            Class::Tolerated,
            "the apps never delete messages by sequence",
        ),
        stream: t(Class::Tolerated, "wadm never deletes messages by sequence"),
    },
    FieldRule {
        field: "deny_purge",
        kv: t(
            Class::Drift(Want::Unset),
            "deleting keys purges them (a rollup), which the stream refuses",
        ),
        stream: t(Class::Tolerated, "wadm never purges its streams"),
    },
    FieldRule {
        field: "allow_rollup_hdrs",
        kv: t(
            Class::Drift(Want::AsCreated),
            "deleting keys uses purge (a rollup), which the stream refuses",
        ),
        stream: t(
            Class::Tolerated,
            "lets anyone who may publish here replace the stream's messages with one",
        ),
    },
    FieldRule {
        field: "consumer_limits",
        kv: t(
            Class::Drift(Want::Unset),
            "a max_ack_pending limit refuses the host's watches (ordered consumers without \
             acks, JetStream error 10082), an inactive_threshold limit deletes idle \
             consumers",
        ),
        stream: t(
            Class::Note(Want::Unset),
            "caps wadm's consumers: a consumer asking for more max_ack_pending is refused \
             (10121), and an inactive_threshold deletes wadm's durable consumers when idle",
        ),
    },
    FieldRule {
        field: "allow_msg_ttl",
        kv: t(
            Class::Irrelevant,
            "the apps send no Nats-TTL; a writer could as well delete",
        ),
        stream: t(
            Class::Irrelevant,
            "wadm sends no Nats-TTL; a writer could as well publish",
        ),
    },
    FieldRule {
        field: "subject_delete_marker_ttl",
        kv: t(
            Class::Note(Want::Unset),
            "the server writes delete markers, which the apps' clients (async-nats 0.39) do \
             not know",
        ),
        stream: t(
            Class::Note(Want::Unset),
            "the server writes delete markers into the stream, which wadm reads as messages",
        ),
    },
    FieldRule {
        field: "allow_msg_counter",
        kv: t(
            Class::Drift(Want::Unset),
            "a counter stream refuses every write that is not a counter increment",
        ),
        stream: t(
            Class::Drift(Want::Unset),
            "a counter stream refuses every write that is not a counter increment",
        ),
    },
    FieldRule {
        field: "allow_atomic",
        kv: t(
            Class::Irrelevant,
            "allows atomic batches besides ordinary writes",
        ),
        stream: t(
            Class::Irrelevant,
            "allows atomic batches besides ordinary writes",
        ),
    },
    FieldRule {
        field: "allow_msg_schedules",
        kv: t(
            Class::Irrelevant,
            "allows scheduled messages besides ordinary writes",
        ),
        stream: t(
            Class::Irrelevant,
            "allows scheduled messages besides ordinary writes",
        ),
    },
    FieldRule {
        field: "persist_mode",
        kv: t(
            Class::Note(Want::UnsetOr("default")),
            "writes are acknowledged before they are stored: a crash can lose acknowledged \
             values",
        ),
        stream: t(
            Class::Note(Want::UnsetOr("default")),
            "writes are acknowledged before they are stored: a crash can lose acknowledged \
             messages",
        ),
    },
    FieldRule {
        field: "metadata",
        kv: t(
            Class::Irrelevant,
            "the server's own notes (API level, version)",
        ),
        stream: t(
            Class::Irrelevant,
            "the server's own notes (API level, version)",
        ),
    },
];

/// The rule of a field, if the table has one.
pub fn field_rule(field: &str) -> Option<&'static FieldRule> {
    FIELDS.iter().find(|f| f.field == field)
}

/// Whether a config value means "not set": missing, null or its type's zero value. The
/// server leaves zero values out of the configs it returns.
pub fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Two config values are the same setting: equal, or both unset.
pub fn same_setting(a: &Value, b: &Value) -> bool {
    a == b || (is_unset(a) && is_unset(b))
}

/// A difference reported as a note.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub field: String,
    pub want: Value,
    pub have: Value,
    pub why: String,
}

impl Row {
    /// The drift checks of this row, from [`FIELDS`].
    pub(super) fn checks(&self, desired: &Value) -> Vec<Check> {
        let mut checks = self.table_checks(desired);
        if let Shape::Mirror { retention, .. } = self.shape {
            // The Kubernetes operator's stream is a mirror, which the table's wadm-stream
            // column calls drift: its own two checks replace that one and the retention.
            // The operator binds any existing stream without looking at it; these are what
            // its consumers depend on.
            checks.retain(|c| c.field != "mirror" && c.field != "retention");
            checks.push(Check {
                field: "retention",
                rule: Rule::Equals(json!(retention.as_str())),
                breaks: self.needed_by,
                why: "the operator reads it as a work queue: with another retention acked \
                      events are not removed and a consumer made again reads them all again",
            });
            checks.push(Check {
                field: "mirror",
                rule: Rule::SameMirror(desired["mirror"].clone()),
                breaks: self.needed_by,
                why: "the operator's per-lattice consumers filter on `<stream>.<lattice>.>`: \
                      without this mirror of wadm_events and its transform they receive no \
                      events",
            });
        }
        checks
    }

    /// The checks [`FIELDS`] gives this row's kind.
    fn table_checks(&self, desired: &Value) -> Vec<Check> {
        FIELDS
            .iter()
            .filter_map(|f| {
                let treatment = f.treatment(self.kind);
                let want = match treatment.class {
                    Class::Drift(want) => want,
                    Class::DriftWhere(trait_, want, _) if trait_.holds_for(self) => want,
                    _ => return None,
                };
                Some(Check {
                    field: f.field,
                    rule: want.rule(f.field, desired)?,
                    breaks: self.needed_by,
                    why: treatment.why,
                })
            })
            .collect()
    }

    /// The notes on an existing copy of this row: tolerated differences from `desired`,
    /// settings that expose data, and set fields this table does not know. Fields in
    /// `drifted` are already reported as drift.
    pub fn notes(&self, desired: &Value, observed: &Value, drifted: &[&str]) -> Vec<Note> {
        let mut notes = Vec::new();
        let value = |field: &str| observed.get(field).cloned().unwrap_or(Value::Null);
        for f in FIELDS {
            if drifted.contains(&f.field) {
                continue;
            }
            let treatment = f.treatment(self.kind);
            let have = value(f.field);
            let created = desired.get(f.field).cloned().unwrap_or(Value::Null);
            let differs = !same_setting(&have, &created);
            let (want, why) = match treatment.class {
                Class::Planned | Class::Irrelevant => continue,
                Class::Note(want) => match want.rule(f.field, desired) {
                    Some(rule) if !rule.holds(&have) => (rule.wanted(), treatment.why),
                    _ => continue,
                },
                _ if !differs => continue,
                Class::Tolerated => (created, treatment.why),
                Class::DriftWhere(trait_, _, otherwise) if !trait_.holds_for(self) => {
                    (created, otherwise)
                }
                Class::Drift(_) | Class::DriftWhere(..) => (created, WITHIN_BOUNDS),
            };
            notes.push(Note {
                field: f.field.into(),
                want,
                have,
                why: why.into(),
            });
        }
        if let Some(all) = observed.as_object() {
            for (field, have) in all {
                if field_rule(field).is_none() && !is_unset(have) {
                    notes.push(Note {
                        field: field.clone(),
                        want: Value::Null,
                        have: have.clone(),
                        why: "a setting this version of the provisioner does not know (a newer \
                              server's?), so it was not judged: check that host and wadm work \
                              with it"
                            .into(),
                    });
                }
            }
        }
        notes
    }
}

/// `1 MiB` for README tables.
fn human(bytes: i64) -> String {
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

fn describe(treatment: &Treatment) -> String {
    let why = treatment.why;
    match treatment.class {
        Class::Drift(want) => format!("**drift** unless {}: {why}", want.describe()),
        Class::DriftWhere(trait_, want, otherwise) => format!(
            "on {}: **drift** unless {}: {why}. Elsewhere a note if it differs: {otherwise}",
            trait_.describe(),
            want.describe()
        ),
        Class::Tolerated => format!("note if it differs: {why}"),
        Class::Note(want) => format!("note unless {}: {why}", want.describe()),
        Class::Irrelevant => format!("not judged: {why}"),
        Class::Planned => why.to_string(),
    }
}

/// The README table of [`FIELDS`] (between the `drift-fields` markers).
pub fn readme_table() -> String {
    let mut out = String::from("| field | KV buckets | wadm streams |\n|---|---|---|\n");
    for f in FIELDS {
        let kv = describe(&f.kv);
        let stream = describe(&f.stream);
        let stream = if stream == kv { "same".into() } else { stream };
        let _ = writeln!(out, "| `{}` | {kv} | {stream} |", f.field);
    }
    out
}

/// A rule's wanted value, for reports.
pub(super) fn wanted_value(rule: &Rule) -> Value {
    match rule {
        Rule::Equals(v) | Rule::SameSources(v) | Rule::SameMirror(v) => v.clone(),
        Rule::AtLeast(min) => json!(format!(">= {min}")),
        Rule::Limit { unlimited, min } => json!(format!("{unlimited} or >= {min}")),
        Rule::UnsetOr(value) => json!(format!("unset or {value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{row, violated, Desired, CATALOG};
    use crate::settings::Settings;

    /// The keys of stream configs nats-server 2.12.8 returned for streams created with
    /// every option it accepts (a source with an external API, a mirror with transforms,
    /// a counter stream, a sealed one, …). `tests/drift.rs` asks a real server.
    const SERVER_2_12_KEYS: &[&str] = &[
        "allow_atomic",
        "allow_direct",
        "allow_msg_counter",
        "allow_msg_schedules",
        "allow_msg_ttl",
        "allow_rollup_hdrs",
        "compression",
        "consumer_limits",
        "deny_delete",
        "deny_purge",
        "description",
        "discard",
        "discard_new_per_subject",
        "duplicate_window",
        "first_seq",
        "max_age",
        "max_bytes",
        "max_consumers",
        "max_msg_size",
        "max_msgs",
        "max_msgs_per_subject",
        "metadata",
        "mirror",
        "mirror_direct",
        "name",
        "no_ack",
        "num_replicas",
        "persist_mode",
        "placement",
        "republish",
        "retention",
        "sealed",
        "sources",
        "storage",
        "subject_delete_marker_ttl",
        "subject_transform",
        "subjects",
    ];

    fn all_desired() -> Vec<Desired> {
        let s = Settings::default();
        let mut all = Vec::new();
        for multitenant in [false, true] {
            for r in CATALOG {
                all.push(r.desired("x", multitenant, &s));
            }
        }
        all
    }

    fn kv() -> Desired {
        row("latticedata")
            .unwrap()
            .desired("x", false, &Settings::default())
    }

    fn stream(key: &str) -> Desired {
        row(key).unwrap().desired("", false, &Settings::default())
    }

    fn drifted(d: &Desired, observed: &Value) -> Vec<&'static str> {
        d.must_hold
            .iter()
            .filter(|c| violated(c, observed).is_some())
            .map(|c| c.field)
            .collect()
    }

    fn noted(d: &Desired, observed: &Value) -> Vec<String> {
        let drift = drifted(d, observed);
        d.row
            .notes(&d.config, observed, &drift)
            .into_iter()
            .map(|n| n.field)
            .collect()
    }

    #[test]
    fn every_server_field_is_classified_once() {
        for key in SERVER_2_12_KEYS {
            assert!(field_rule(key).is_some(), "{key} is not classified");
        }
        let mut fields: Vec<_> = FIELDS.iter().map(|f| f.field).collect();
        fields.sort();
        fields.dedup();
        assert_eq!(fields.len(), FIELDS.len(), "a field has two rows");
    }

    #[test]
    fn the_catalog_configs_are_neither_drift_nor_noted() {
        for d in all_desired() {
            assert!(drifted(&d, &d.config).is_empty(), "{}", d.stream);
            assert!(noted(&d, &d.config).is_empty(), "{}", d.stream);
        }
    }

    #[test]
    fn the_catalog_configs_keep_their_own_rules() {
        // The rules that are not "as created" must accept what the catalog creates.
        for d in all_desired() {
            for check in &d.must_hold {
                assert!(
                    violated(check, &d.config).is_none(),
                    "{}: {}",
                    d.stream,
                    check.field
                );
            }
        }
    }

    #[test]
    fn settings_that_break_a_bucket_are_drift() {
        let d = kv();
        let cases = [
            ("no_ack", json!(true)),
            ("max_msg_size", json!(1)),
            ("max_msg_size", json!(MIB - 1)),
            ("max_bytes", json!(1)),
            ("max_msgs_per_subject", json!(-1)),
            ("max_age", json!(1_000_000_000u64)),
            ("retention", json!("workqueue")),
            ("retention", json!("interest")),
            ("sealed", json!(true)),
            ("allow_msg_counter", json!(true)),
            ("mirror", json!({"name": "OTHER"})),
            ("subject_transform", json!({"src": ">", "dest": "x.>"})),
            ("discard_new_per_subject", json!(true)),
            ("deny_purge", json!(true)),
            ("consumer_limits", json!({"max_ack_pending": 1})),
            ("allow_rollup_hdrs", json!(false)),
            ("allow_direct", json!(false)),
            ("subjects", json!(["$KV.other.>"])),
        ];
        for (field, value) in cases {
            let mut have = d.config.clone();
            have[field] = value.clone();
            assert_eq!(drifted(&d, &have), vec![field], "{field} = {value}");
            assert!(!noted(&d, &have).contains(&field.to_string()), "{field}");
        }
    }

    #[test]
    fn limits_above_the_floor_are_notes_not_drift() {
        let d = kv();
        for (field, value) in [
            ("max_bytes", json!(MIB)),
            ("max_bytes", json!(10 * 1024 * MIB)),
            ("max_msg_size", json!(8 * MIB)),
            ("max_msgs", json!(1)),
            ("max_msgs_per_subject", json!(5)),
            ("discard", json!("old")),
        ] {
            let mut have = d.config.clone();
            have[field] = value.clone();
            assert!(drifted(&d, &have).is_empty(), "{field} = {value}");
            assert_eq!(noted(&d, &have), vec![field.to_string()], "{field}");
        }
    }

    #[test]
    fn settings_that_expose_data_are_notes() {
        for d in [kv(), stream("wadm_events"), stream("wadm_status")] {
            for (field, value) in [
                ("republish", json!({"src": ">", "dest": "leak.>"})),
                ("persist_mode", json!("async")),
                ("subject_delete_marker_ttl", json!(1_000_000_000u64)),
            ] {
                let mut have = d.config.clone();
                have[field] = value;
                assert!(drifted(&d, &have).is_empty(), "{}: {field}", d.stream);
                assert_eq!(noted(&d, &have), vec![field.to_string()], "{}", d.stream);
            }
        }
        // A source writes another stream's messages into a bucket.
        let d = kv();
        let mut have = d.config.clone();
        have["sources"] = json!([{"name": "ELSEWHERE"}]);
        assert!(drifted(&d, &have).is_empty());
        assert_eq!(noted(&d, &have), vec!["sources"]);
        // persist_mode's default spelled out is not a note.
        have = d.config.clone();
        have["persist_mode"] = json!("default");
        assert!(noted(&d, &have).is_empty());
    }

    #[test]
    fn wadm_streams_keep_events_for_70_seconds() {
        let d = stream("wadm_commands");
        let mut have = d.config.clone();
        have["max_age"] = json!(10_000_000_000u64);
        assert_eq!(drifted(&d, &have), vec!["max_age"]);
        for ok in [0u64, 3_600_000_000_000] {
            have["max_age"] = json!(ok);
            assert!(drifted(&d, &have).is_empty(), "{ok}");
            assert_eq!(noted(&d, &have), vec!["max_age"]);
        }
        // wadm_status keeps its entries for ever; an age is tolerated.
        let d = stream("wadm_status");
        let mut have = d.config.clone();
        have["max_age"] = json!(1_000_000_000u64);
        assert!(drifted(&d, &have).is_empty());
        assert_eq!(noted(&d, &have), vec!["max_age"]);
    }

    #[test]
    fn no_ack_breaks_buckets_and_is_a_note_on_streams() {
        let d = stream("wadm_commands");
        let mut have = d.config.clone();
        have["no_ack"] = json!(true);
        assert!(drifted(&d, &have).is_empty());
        assert_eq!(noted(&d, &have), vec!["no_ack"]);
        // Multitenant wasmbus_events is created with it.
        let mt = row("wasmbus_events")
            .unwrap()
            .desired("", true, &Settings::default());
        let mut have = mt.config.clone();
        assert!(noted(&mt, &have).is_empty());
        have.as_object_mut().unwrap().remove("no_ack");
        assert_eq!(noted(&mt, &have), vec!["no_ack"]);
    }

    #[test]
    fn a_field_nobody_knows_is_a_note_when_set() {
        let d = kv();
        let mut have = d.config.clone();
        have["allow_teleport"] = json!(false);
        assert!(noted(&d, &have).is_empty());
        have["allow_teleport"] = json!(true);
        assert_eq!(noted(&d, &have), vec!["allow_teleport"]);
    }

    #[test]
    fn the_readme_table_names_every_field() {
        let table = readme_table();
        for f in FIELDS {
            assert!(table.contains(&format!("| `{}` |", f.field)), "{}", f.field);
        }
        assert!(
            table.contains("**drift** unless `-1` or ≥ 1 MiB"),
            "{table}"
        );
    }
}
