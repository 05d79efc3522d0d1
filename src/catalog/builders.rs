//! Stream configs built from the rows: the create payload, exactly as the apps' own create
//! looks once the server has filled its defaults.

use serde_json::{json, Map, Value};

use super::{Desired, DesiredKey, MirrorShape, Retention, Shape, SourceRow, StreamShape};

/// Nanoseconds per second: JetStream durations are nanoseconds on the wire.
pub(super) const NANOS: u64 = 1_000_000_000;

/// The server's default duplicate window, which it caps at `max_age` when one is set.
const DEFAULT_DUPLICATE_WINDOW_SECS: u64 = 120;

impl DesiredKey {
    /// Builds the full desired resource: config, dependencies and must-hold checks.
    pub fn desired(self) -> Desired {
        let row = self.row;
        let subjects = row.subjects_named(&self.name, self.multitenant);
        let mut config = match &row.shape {
            Shape::Kv => kv_config(&self.stream, &subjects),
            Shape::Stream(s) => stream_config(s, &self.stream, &subjects, self.multitenant),
            Shape::Mirror(m) => mirror_config(m, &self.stream),
        };
        self.settings.apply_to(&mut config);
        let depends_on = row.origins().iter().map(|s| s.from.to_string()).collect();
        Desired {
            row,
            name: self.name,
            stream: self.stream,
            must_hold: row.checks(&config),
            config,
            depends_on,
            settings: self.settings,
            multitenant: self.multitenant,
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

/// What wadm's streams and the operator's mirror set alike: a description, a retention
/// and an age, old messages discarded.
fn app_stream_config(
    stream: &str,
    description: &str,
    retention: Retention,
    max_age_secs: u64,
) -> Map<String, Value> {
    let mut c = base_config(stream);
    c.insert("description".into(), json!(description));
    c.insert("retention".into(), json!(retention.as_str()));
    c.insert("max_age".into(), json!(max_age_secs * NANOS));
    c.insert("discard".into(), json!("old"));
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

/// A mirror's config, as the server normalizes the app's create request: no subjects,
/// no duplicate window (the server keeps none for a mirror), one transform.
fn mirror_config(shape: &MirrorShape, stream: &str) -> Value {
    let mut c = app_stream_config(
        stream,
        shape.description,
        shape.retention,
        shape.max_age_secs,
    );
    c.insert("max_msgs_per_subject".into(), json!(-1));
    c.insert("allow_direct".into(), json!(false));
    // Never set `domain` on a mirror either: nats-server 2.12 rejects it.
    c.insert("mirror".into(), source_config(&shape.mirror, false));
    Value::Object(c)
}

fn stream_config(
    shape: &StreamShape,
    stream: &str,
    subjects: &[String],
    multitenant: bool,
) -> Value {
    let mut c = app_stream_config(
        stream,
        shape.description,
        shape.retention,
        shape.max_age_secs,
    );
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
    c.insert(
        "max_msgs_per_subject".into(),
        json!(shape.max_msgs_per_subject.unwrap_or(-1)),
    );
    c.insert("allow_direct".into(), json!(shape.allow_direct));
    c.insert(
        "duplicate_window".into(),
        json!(duplicate_window_secs(shape.max_age_secs) * NANOS),
    );
    if !shape.sources.is_empty() {
        let list = shape
            .sources
            .iter()
            .map(|s| source_config(s, multitenant))
            .collect();
        c.insert("sources".into(), Value::Array(list));
    }
    Value::Object(c)
}

/// One source (or a mirror) with its subject transform. Never with a `domain`: nats-server
/// 2.12 rejects it.
fn source_config(source: &SourceRow, multitenant: bool) -> Value {
    let (src, dest) = if multitenant {
        (
            source.transform_src_multitenant,
            source.transform_dest_multitenant,
        )
    } else {
        (source.transform_src, source.transform_dest)
    };
    json!({
        "name": source.from,
        "subject_transforms": [{ "src": src, "dest": dest }],
    })
}

/// The server caps the duplicate window at `max_age`.
fn duplicate_window_secs(max_age_secs: u64) -> u64 {
    if max_age_secs > 0 && max_age_secs < DEFAULT_DUPLICATE_WINDOW_SECS {
        max_age_secs
    } else {
        DEFAULT_DUPLICATE_WINDOW_SECS
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::{operator_keys, row, wadm_keys, App, Operator};
    use crate::settings::Settings;

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
}
