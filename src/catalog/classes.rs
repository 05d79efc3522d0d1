//! The words of the drift table (`fields.rs`): what a field must be ([`Want`]), on which
//! rows ([`Trait`]), and how a value is reported ([`Class`]).

use serde_json::Value;

use super::checks::Rule;
use super::readme::human;
use super::{Kind, Row, Shape};

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
    /// The catalog's mirror, compared like one source.
    SameMirror,
}

impl Want {
    /// The concrete rule for a resource whose desired config is `desired`; `None` when
    /// anything holds.
    pub(super) fn rule(self, field: &str, desired: &Value) -> Option<Rule> {
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
            Want::SameMirror => Rule::SameMirror(created),
        })
    }

    /// For the README.
    pub(super) fn describe(self) -> String {
        match self {
            Want::AsCreated => "as created".into(),
            Want::Unset => "unset".into(),
            Want::UnsetOr(value) => format!("unset or `{value}`"),
            Want::AtLeast(min) => format!("≥ {min}"),
            Want::Limit { unlimited, min } => format!("`{unlimited}` or ≥ {}", human(min)),
            Want::LimitAsCreated { unlimited } => format!("`{unlimited}` or ≥ as created"),
            Want::SameSources => "the same sources and transforms".into(),
            Want::SameMirror => "the same mirror and transform".into(),
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
    pub(super) fn holds_for(self, row: &Row) -> bool {
        match (self, &row.shape) {
            (Trait::SubjectsCheckedByWadm, Shape::Stream(s)) => s.subjects_checked_by_wadm,
            (Trait::Sourcing, Shape::Stream(s)) => !s.sources.is_empty(),
            (_, Shape::Kv | Shape::Mirror(_)) => false,
        }
    }

    pub(super) fn describe(self) -> &'static str {
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
    /// A field judged the same way on KV buckets and on streams.
    pub(super) const fn both(field: &'static str, class: Class, why: &'static str) -> Self {
        FieldRule {
            field,
            kv: t(class, why),
            stream: t(class, why),
        }
    }

    pub fn treatment(&self, kind: Kind) -> &Treatment {
        match kind {
            Kind::Kv => &self.kv,
            Kind::Stream => &self.stream,
        }
    }
}

pub(super) const fn t(class: Class, why: &'static str) -> Treatment {
    Treatment { class, why }
}

/// Why a value that holds a drift rule but is not the catalog's is a note.
pub(super) const WITHIN_BOUNDS: &str =
    "differs from what the apps would create; within what they work with";
