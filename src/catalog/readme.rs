//! The README's generated tables, rendered from the catalog. `tests/drift.rs` and
//! `tests/readme_tables.rs` check that the README's text between the markers is exactly
//! this.

use std::fmt::Write as _;

use serde_json::Value;

use super::checks::Rule;
use super::classes::{Class, Treatment};
use super::{Retention, Row, Scope, Shape, CATALOG, FIELDS};
use crate::settings::{Settings, MIB};

/// `1 MiB` for README tables.
pub(super) fn human(bytes: i64) -> String {
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

/// The README table of [`CATALOG`] (between the `resources` markers): every resource, its
/// stream, its shape, who needs it and whether `backup` takes it.
pub fn resources_table() -> String {
    let mut out = String::from(
        "| name | stream | kind | for | must hold on an existing copy | backup |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in CATALOG {
        let name = match row.scope {
            Scope::Operator(v) => format!("`{}` (operator {})", row.name_for("<l>"), v.as_str()),
            _ => format!("`{}`", row.name_for("<l>")),
        };
        let backup = match row.backup {
            super::Backup::Recommended => "always",
            super::Backup::Optional => "with `--all`",
            super::Backup::Never => "never",
        };
        let _ = writeln!(
            out,
            "| {name} | `{}` | {} | {} | {} | {backup} |",
            row.stream_for("<l>"),
            shape_words(row),
            row.needed_by.as_str(),
            must_hold_words(row),
        );
    }
    out
}

/// The row's own must-hold checks in words: a value it must have, a history, its sources
/// or mirror. The floors and the fields that must stay unset are the same for every row
/// and are in the drift table.
fn must_hold_words(row: &'static Row) -> String {
    let desired = row.desired("<l>", false, &Settings::default());
    let words: Vec<String> = desired
        .must_hold
        .iter()
        .filter_map(|c| {
            let field = c.field;
            Some(match &c.rule {
                Rule::Equals(Value::Bool(true)) => format!("`{field}`"),
                Rule::Equals(Value::String(s)) => format!("`{field}` {s}"),
                Rule::Equals(Value::Array(list)) if !list.is_empty() => {
                    let list: Vec<String> =
                        list.iter().map(|v| format!("`{}`", str_of(v))).collect();
                    format!("`{field}` exactly {}", list.join(", "))
                }
                Rule::AtLeast(min) => format!("`{field}` ≥ {min}"),
                Rule::SameSources(_) => "both sources with their transforms".into(),
                Rule::SameMirror(_) => "that mirror and transform".into(),
                _ => return None,
            })
        })
        .collect();
    if words.is_empty() {
        "—".into()
    } else {
        words.join(", ")
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// A row's shape in words: `KV`, or a stream's retention, age and limits, subjects and
/// where it copies from.
fn shape_words(row: &Row) -> String {
    let retention = |r: Retention| match r {
        Retention::Limits => "limits",
        Retention::WorkQueue => "work queue",
        Retention::Interest => "interest",
    };
    let age = |secs: u64| (secs > 0).then(|| format!("{secs} s"));
    let list = |s: &[&str]| {
        s.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &row.shape {
        Shape::Kv => "KV".into(),
        Shape::Stream(s) => {
            let mut traits: Vec<String> = vec![retention(s.retention).into()];
            traits.extend(age(s.max_age_secs));
            traits.extend(s.max_msgs_per_subject.map(|n| format!("{n} per subject")));
            if s.allow_direct {
                traits.push("direct get".into());
            }
            let mut words = format!("stream ({})", traits.join(", "));
            if !s.subjects.is_empty() {
                let _ = write!(words, " on {}", list(s.subjects));
                if s.subjects_multitenant != s.subjects {
                    let _ = write!(words, " (multitenant: {})", list(s.subjects_multitenant));
                }
            }
            let sources: Vec<String> = s
                .sources
                .iter()
                .map(|source| {
                    format!(
                        "`{}` (`{}` → `{}`)",
                        source.from, source.transform_src, source.transform_dest
                    )
                })
                .collect();
            if !sources.is_empty() {
                let _ = write!(words, ", sourcing {}", sources.join(" and "));
            }
            words
        }
        Shape::Mirror(m) => {
            let mut traits: Vec<String> = vec![retention(m.retention).into()];
            traits.extend(age(m.max_age_secs));
            format!(
                "stream ({}), a mirror of `{}` with transform `{}` → `{}`",
                traits.join(", "),
                m.mirror.from,
                m.mirror.transform_src,
                m.mirror.transform_dest
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_resources_table_names_every_row() {
        let table = resources_table();
        for row in CATALOG {
            assert!(
                table.contains(&format!("| `{}` |", row.stream_for("<l>"))),
                "{}",
                row.key
            );
        }
        assert!(
            table.contains("| `KV_LATTICEDATA_<l>` | KV | host | `subjects` exactly"),
            "{table}"
        );
        assert!(table.contains("`allow_rollup_hdrs` | always |"), "{table}");
    }
}
