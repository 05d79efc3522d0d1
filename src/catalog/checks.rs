//! Must-hold checks: the drift rules of [`FIELDS`] made concrete for one row and its
//! desired config, how an observed value is judged against them, and the notes on what
//! differs without breaking anything.

use serde_json::{json, Value};

use super::classes::{Class, WITHIN_BOUNDS};
use super::fields::MIRROR_CHECKS;
use super::{field_rule, App, Row, Shape, FIELDS};

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
        wanted_value(self)
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
        if let Shape::Mirror(_) = self.shape {
            checks.retain(|c| !MIRROR_CHECKS.iter().any(|m| m.field == c.field));
            checks.extend(MIRROR_CHECKS.iter().filter_map(|m| {
                Some(Check {
                    field: m.field,
                    rule: m.want.rule(m.field, desired)?,
                    breaks: self.needed_by,
                    why: m.why,
                })
            }));
        }
        checks
    }

    /// The checks [`FIELDS`] gives this row's kind.
    fn table_checks(&self, desired: &Value) -> Vec<Check> {
        FIELDS
            .iter()
            .filter_map(|f| {
                let treatment = f.treatment(self.kind());
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
            let treatment = f.treatment(self.kind());
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
    use crate::catalog::{operator_row, row, Operator};
    use crate::settings::Settings;

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
