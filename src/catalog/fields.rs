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

use super::classes::{t, Class, FieldRule, Trait, Want};
use crate::settings::{MIN_MAX_BYTES, MIN_MAX_MSG_SIZE};

/// Every field of a nats-server 2.12 stream config, in the server's order.
pub static FIELDS: &[FieldRule] = &[
    FieldRule::both("name", Class::Planned, "the stream is looked up by it"),
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
    FieldRule::both(
        "storage",
        Class::Tolerated,
        "storage cannot change on a live stream; tolerated by the apps",
    ),
    FieldRule::both(
        "num_replicas",
        Class::Planned,
        "fewer replicas than wanted are raised; more are a note",
    ),
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
    FieldRule::both(
        "template_owner",
        Class::Irrelevant,
        "deprecated stream templates, which the apps never use",
    ),
    FieldRule::both(
        "duplicate_window",
        Class::Tolerated,
        "the apps send no message ids",
    ),
    FieldRule::both(
        "placement",
        Class::Tolerated,
        "placement is only applied when the stream is created",
    ),
    FieldRule::both(
        "mirror",
        Class::Drift(Want::Unset),
        "a mirror refuses the apps' writes",
    ),
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
    FieldRule::both("compression", Class::Irrelevant, "transparent to clients"),
    FieldRule::both(
        "first_seq",
        Class::Irrelevant,
        "only used when the stream is created",
    ),
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
    FieldRule::both(
        "mirror_direct",
        Class::Irrelevant,
        "only for mirrors, which are drift",
    ),
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
    FieldRule::both(
        "sealed",
        Class::Drift(Want::Unset),
        "a sealed stream refuses every write",
    ),
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
    FieldRule::both(
        "allow_msg_counter",
        Class::Drift(Want::Unset),
        "a counter stream refuses every write that is not a counter increment",
    ),
    FieldRule::both(
        "allow_atomic",
        Class::Irrelevant,
        "allows atomic batches besides ordinary writes",
    ),
    FieldRule::both(
        "allow_msg_schedules",
        Class::Irrelevant,
        "allows scheduled messages besides ordinary writes",
    ),
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
    FieldRule::both(
        "metadata",
        Class::Irrelevant,
        "the server's own notes (API level, version)",
    ),
];

/// A field checked on one kind of row only, with what it must be and what breaks
/// otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RowCheck {
    pub field: &'static str,
    pub want: Want,
    pub why: &'static str,
}

/// The Kubernetes operator's stream is a mirror, which the table's stream column calls
/// drift: these checks replace that one and the retention's on mirror rows. The operator
/// binds any existing stream without looking at it; these are what its consumers depend
/// on.
pub static MIRROR_CHECKS: &[RowCheck] = &[
    RowCheck {
        field: "retention",
        want: Want::AsCreated,
        why: "the operator reads it as a work queue: with another retention acked events are \
              not removed and a consumer made again reads them all again",
    },
    RowCheck {
        field: "mirror",
        want: Want::SameMirror,
        why: "the operator's per-lattice consumers filter on `<stream>.<lattice>.>`: without \
              this mirror of wadm_events and its transform they receive no events",
    },
];

/// The rule of a field, if the table has one.
pub fn field_rule(field: &str) -> Option<&'static FieldRule> {
    FIELDS.iter().find(|f| f.field == field)
}
