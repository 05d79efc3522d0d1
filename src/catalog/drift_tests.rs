//! The drift table judged against configs: what breaks an app is drift, what only differs
//! is a note, and every field a real server has is classified.

use serde_json::{json, Value};

use crate::catalog::{field_rule, row, violated, Desired, CATALOG, FIELDS};
use crate::settings::Settings;
use crate::settings::MIB;

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
