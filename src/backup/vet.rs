//! What `restore` checks in each `backup.json` config before it sends anything.
//!
//! `restore` creates streams with the config a folder carries, and a folder is only files:
//! anyone who could write it (or hand it to the operator) chooses that config. The server
//! takes any valid config, so without this check a restore would silently create, with the
//! operator's admin credentials, a `CONFIGDATA_<l>` bucket that republishes every value to
//! a subject anyone may subscribe to, a bucket whose keys expire or that the hosts cannot
//! write (`max_age`, a `mirror`, other subjects), or a stream that is none of the catalog's and records
//! subjects it was never meant to (`wasmbus.>`). `plan` would then report the first two as
//! drift or notes, after the data was already exposed.
//!
//! So a restore takes back only what the catalog knows, as the catalog would accept it:
//! - the stream is one of the catalog's (a lattice's bucket for a valid lattice name,
//!   wadm's, the operator's or the provisioner's own);
//! - its config passes every must-hold check `plan` makes (no drift);
//! - it sets nothing that exposes or alters the data (the fields `plan` always notes:
//!   `republish`, `sources`, …) and keeps the catalog's subjects.
//!
//! Differences the apps tolerate (history, limits, replicas, description) are restored as
//! backed up. For wadm's streams either wadm mode (multitenant or not) is accepted.

use serde_json::Value;

use crate::catalog::{self, field_rule, Class, Row, Scope, CATALOG};
use crate::settings::Settings;

use super::manifest::Folder;

/// Refuses a folder holding a stream the catalog does not know, or one whose config would
/// break hosts or wadm or expose the data. Names every problem and the next step.
pub fn check_folder(folder: &Folder, settings: &Settings) -> Result<(), String> {
    let mut problems = Vec::new();
    for s in &folder.streams {
        if let Err(p) = check_stream(&s.stream, &s.metadata["config"], settings) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "nothing was restored: {} would not be restored as the catalog makes it:\n{}\n\
         restore takes back only the catalog's buckets and streams, with configs that `plan` \
         would accept. If the backup is yours and the setting is intended, fix it in the \
         stream's backup.json (or restore that stream with natscli); if you did not make it, \
         the folder was tampered with: restore from another backup.",
        folder.dir.display(),
        problems.join("\n")
    ))
}

/// The catalog rows (with their lattice) a stream name belongs to.
fn rows_for(stream: &str) -> Vec<(&'static Row, String)> {
    let mut out = Vec::new();
    for row in CATALOG {
        match row.scope {
            Scope::Lattice => {
                let pattern = row.stream_for("{lattice}");
                let Some((prefix, suffix)) = pattern.split_once("{lattice}") else {
                    continue;
                };
                let lattice = stream
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix));
                if let Some(l) = lattice {
                    if crate::request::validate_lattice(l).is_ok() {
                        out.push((row, l.to_string()));
                    }
                }
            }
            Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => {
                if row.stream_for("") == stream {
                    out.push((row, String::new()));
                }
            }
        }
    }
    out
}

/// One stream: `Ok` when its config is one the catalog accepts for some row it belongs to
/// (and, for wadm's streams, some wadm mode); otherwise one line per problem of the
/// closest match.
fn check_stream(stream: &str, config: &Value, settings: &Settings) -> Result<(), String> {
    let rows = rows_for(stream);
    if rows.is_empty() {
        return Err(format!(
            "  {stream}: not one of the catalog's buckets or streams (restore creates only \
             those; a stream of another name could record any subject)"
        ));
    }
    let mut best: Option<Vec<String>> = None;
    for (row, lattice) in rows {
        for multitenant in [false, true] {
            let problems = problems(row, &lattice, multitenant, config, settings);
            if problems.is_empty() {
                return Ok(());
            }
            if best.as_ref().is_none_or(|b| problems.len() < b.len()) {
                best = Some(problems);
            }
        }
    }
    Err(best
        .unwrap_or_default()
        .into_iter()
        .map(|p| format!("  {stream}: {p}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn problems(
    row: &'static Row,
    lattice: &str,
    multitenant: bool,
    config: &Value,
    settings: &Settings,
) -> Vec<String> {
    let desired = row.desired(lattice, multitenant, settings);
    let mut out = Vec::new();
    let mut drifted = Vec::new();
    for check in &desired.must_hold {
        if let Some(have) = catalog::violated(check, config) {
            drifted.push(check.field);
            out.push(format!(
                "{} is {have}, {} needs {}: {}",
                check.field,
                check.breaks.as_str(),
                catalog::wanted(check),
                check.why
            ));
        }
    }
    let subjects = &config["subjects"];
    if !drifted.contains(&"subjects")
        && !catalog::same_setting(subjects, &desired.config["subjects"])
    {
        drifted.push("subjects");
        out.push(format!(
            "subjects are {subjects}, the catalog's are {}: a stream restored with other \
             subjects records messages it was not made for",
            desired.config["subjects"]
        ));
    }
    for note in row.notes(&desired.config, config, &drifted) {
        let exposes = field_rule(&note.field)
            .is_some_and(|f| matches!(f.treatment(row.kind()).class, Class::Note(_)));
        if exposes {
            out.push(format!(
                "{} is {}, the catalog never sets it: {}",
                note.field, note.have, note.why
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_of(stream_row: &str, lattice: &str) -> (String, Value) {
        let row = catalog::row(stream_row).unwrap();
        let d = row.desired(lattice, false, &Settings::default());
        (d.stream, d.config)
    }

    #[test]
    fn the_catalogs_own_configs_pass() {
        for row in CATALOG {
            for multitenant in [false, true] {
                let d = row.desired("l1", multitenant, &Settings::default());
                check_stream(&d.stream, &d.config, &Settings::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", d.stream));
            }
        }
    }

    #[test]
    fn hostile_configs_and_foreign_streams_are_refused() {
        let s = Settings::default();
        let (stream, mut c) = config_of("configdata", "prod");
        c["republish"] = json!({"src": ">", "dest": "leak.>"});
        let e = check_stream(&stream, &c, &s).unwrap_err();
        assert!(e.contains("republish"), "{e}");

        let (stream, mut c) = config_of("latticedata", "prod");
        c["max_age"] = json!(60_000_000_000u64);
        let e = check_stream(&stream, &c, &s).unwrap_err();
        assert!(e.contains("max_age") && e.contains("host needs"), "{e}");

        let (stream, mut c) = config_of("wadm_events", "");
        c["subjects"] = json!(["wadm.evt.*.>", "wasmbus.rpc.>"]);
        let e = check_stream(&stream, &c, &s).unwrap_err();
        assert!(e.contains("subjects"), "{e}");

        let (_, mut c) = config_of("configdata", "prod");
        c["name"] = json!("RECORDER");
        c["subjects"] = json!(["wasmbus.>"]);
        let e = check_stream("RECORDER", &c, &s).unwrap_err();
        assert!(e.contains("not one of the catalog's"), "{e}");
        // A name that looks like a bucket but whose lattice is not a valid lattice name.
        assert!(rows_for("KV_CONFIGDATA_").is_empty());
    }

    #[test]
    fn differences_the_apps_tolerate_are_restored_as_backed_up() {
        let (stream, mut c) = config_of("configdata", "prod");
        c["max_msgs_per_subject"] = json!(5);
        c["num_replicas"] = json!(3);
        c["description"] = json!("ours");
        check_stream(&stream, &c, &Settings::default()).unwrap();
    }
}
