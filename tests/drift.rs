//! The drift check against a real nats-server: every field of a stream config is
//! classified in the catalog (`catalog::FIELDS`), settings that break host or wadm on an
//! existing bucket are drift (a 409, `plan` exits 3), settings that expose the data are
//! notes, and the README's table is the catalog's.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::{json, Value};

use common::cli::{run_against as run, text as out};
use common::provisioner;
use common::reply::{call, client};
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::catalog;
use wasmcloud_provisioner::settings::Settings;

async fn js_api(client: &async_nats::Client, subject: &str, body: &Value) -> Value {
    let message = client
        .request(
            subject.to_string(),
            serde_json::to_vec(body).unwrap().into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&message.payload).expect("JetStream replies JSON")
}

/// Creates a stream from a raw config; panics with the server's answer if refused.
async fn create(client: &async_nats::Client, config: &Value) -> Value {
    let name = config["name"].as_str().expect("a name");
    let answer = js_api(client, &format!("$JS.API.STREAM.CREATE.{name}"), config).await;
    assert!(answer.get("error").is_none(), "create {name}: {answer}");
    answer["config"].clone()
}

fn resource<'a>(body: &'a Value, stream: &str) -> &'a Value {
    body["resources"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["stream"] == stream))
        .unwrap_or_else(|| panic!("no {stream} in {body}"))
}

fn fields(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|f| f["field"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn bucket_config(lattice: &str, which: &str) -> Value {
    catalog::row(which)
        .expect("a catalog row")
        .desired(lattice, false, &Settings::default())
        .config
}

/// Streams with every setting nats-server accepts, so that its answers show every field
/// of a stream config. A new server version's field shows up here and fails the test
/// until `catalog::FIELDS` classifies it.
#[tokio::test]
async fn every_field_the_server_returns_is_classified() {
    let server = NatsServer::start_with(ServerOptions {
        // So that a placement by tag can be satisfied on one server.
        extra_config: "server_tags: [\"ssd\"]\n".into(),
        ..Default::default()
    });
    let nc = client(&server.url()).await;
    let mut keys = BTreeSet::new();
    let mut collect = |config: &Value| {
        keys.extend(config.as_object().expect("a config").keys().cloned());
    };
    collect(&create(&nc, &json!({ "name": "SRC", "subjects": ["src.>"] })).await);
    collect(
        &create(
            &nc,
            &json!({
                "name": "FULL", "description": "every option at once", "subjects": ["f.>"],
                "retention": "limits", "max_consumers": 10, "max_msgs": 100,
                "max_bytes": 1_000_000, "max_age": 3_600_000_000_000u64,
                "max_msgs_per_subject": 5, "max_msg_size": 1000, "discard": "new",
                "discard_new_per_subject": true, "storage": "file", "num_replicas": 1,
                "no_ack": true, "duplicate_window": 60_000_000_000u64,
                "placement": { "tags": ["ssd"] },
                "sources": [{
                    "name": "SRC", "opt_start_seq": 1, "filter_subject": "src.a",
                    "external": { "api": "$JS.hub.API", "deliver": "deliver.hub" }
                }],
                "compression": "s2", "first_seq": 5,
                "subject_transform": { "src": "f.>", "dest": "g.>" },
                "republish": { "src": ">", "dest": "rp.>", "headers_only": true },
                "allow_direct": true, "mirror_direct": false, "sealed": false,
                "deny_delete": true, "deny_purge": false, "allow_rollup_hdrs": true,
                "consumer_limits": { "inactive_threshold": 1_000_000_000u64, "max_ack_pending": 10 },
                "allow_msg_ttl": true, "subject_delete_marker_ttl": 2_000_000_000u64,
                "persist_mode": "async", "metadata": { "owner": "test" }
            }),
        )
        .await,
    );
    // Atomic batches and schedules (not with async persistence or sources), then sealed.
    let mut batch = create(
        &nc,
        &json!({
            "name": "BATCH", "subjects": ["b.>"], "allow_atomic": true,
            "allow_msg_schedules": true, "allow_msg_ttl": true
        }),
    )
    .await;
    collect(&batch);
    batch["sealed"] = json!(true);
    let sealed = js_api(&nc, "$JS.API.STREAM.UPDATE.BATCH", &batch).await;
    assert!(sealed.get("error").is_none(), "seal: {sealed}");
    collect(&sealed["config"]);
    collect(
        &create(
            &nc,
            &json!({ "name": "COUNTER", "subjects": ["c.>"], "allow_msg_counter": true }),
        )
        .await,
    );
    collect(
        &create(
            &nc,
            &json!({
                "name": "MIRROR", "mirror_direct": true,
                "mirror": {
                    "name": "SRC", "opt_start_time": "2020-01-01T00:00:00Z",
                    "subject_transforms": [{ "src": "src.>", "dest": "m.>" }]
                }
            }),
        )
        .await,
    );

    let unclassified: Vec<&String> = keys
        .iter()
        .filter(|k| catalog::field_rule(k).is_none())
        .collect();
    assert!(
        unclassified.is_empty(),
        "{} returns stream config fields the catalog does not classify: {unclassified:?}; \
         add them to catalog::FIELDS (drift, tolerated, note or irrelevant)",
        common::nats_server_version()
    );
    // The streams above did show the fields (so the check above means something).
    for expected in [
        "placement",
        "sources",
        "mirror",
        "republish",
        "subject_transform",
        "consumer_limits",
        "metadata",
        "compression",
        "first_seq",
        "allow_msg_ttl",
        "subject_delete_marker_ttl",
        "allow_msg_counter",
        "allow_atomic",
        "allow_msg_schedules",
        "persist_mode",
        "no_ack",
        "discard_new_per_subject",
        "sealed",
    ] {
        assert!(keys.contains(expected), "{expected} not seen in {keys:?}");
    }
}

/// One broken bucket per lattice: the field, the value set, what the server stores.
const BREAKING: &[(&str, &str, i64)] = &[
    ("noack", "no_ack", 1),
    ("msgsize", "max_msg_size", 1),
    ("bytes", "max_bytes", 1),
    // 0 is "unlimited" on the wire; the server stores -1.
    ("history", "max_msgs_per_subject", 0),
];

#[tokio::test]
async fn settings_that_break_a_bucket_are_drift_and_a_republish_is_a_note() {
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;
    for (lattice, field, value) in BREAKING {
        let mut broken = bucket_config(lattice, "latticedata");
        broken[*field] = if *field == "no_ack" {
            json!(true)
        } else {
            json!(value)
        };
        create(&nc, &broken).await;
        create(&nc, &bucket_config(lattice, "configdata")).await;
    }
    // What the drift means: the host's puts hang (no_ack) or are refused.
    let mut js = jetstream::new(nc.clone());
    js.set_timeout(Duration::from_secs(2));
    for (lattice, _, _) in BREAKING.iter().take(3) {
        let subject = format!("$KV.LATTICEDATA_{lattice}.key");
        let put = async { js.publish(subject.clone(), "value".into()).await?.await };
        assert!(
            put.await.is_err(),
            "a put into LATTICEDATA_{lattice} was acknowledged"
        );
    }
    // A bucket republished to a subject anyone may read: it works, and the operator is told.
    let mut leaky = bucket_config("leak", "configdata");
    leaky["republish"] = json!({ "src": ">", "dest": "leak.>" });
    create(&nc, &leaky).await;
    create(&nc, &bucket_config("leak", "latticedata")).await;

    let service = provisioner::spawn(&url, Settings::default()).await;
    for (lattice, field, _) in BREAKING {
        let stream = format!("KV_LATTICEDATA_{lattice}");
        let (code, dry) = call(
            &nc,
            "wasmcloud.provision.lattice",
            &json!({ "lattice": lattice, "dry_run": true }).to_string(),
        )
        .await
        .parts();
        assert_eq!(code, None, "{dry}");
        let r = resource(&dry, &stream);
        assert_eq!(r["action"], "drift", "{r}");
        assert_eq!(fields(&r["drift"]), vec![field.to_string()], "{r}");
        assert_eq!(r["drift"][0]["breaks"], "host", "{r}");
        let (code, applied) = call(&nc, "wasmcloud.provision.lattice", lattice)
            .await
            .parts();
        assert_eq!(code, Some(409), "{applied}");
        assert_eq!(resource(&applied, &stream)["action"], "drift");
    }
    let (code, body) = call(&nc, "wasmcloud.provision.lattice", "leak")
        .await
        .parts();
    assert_eq!(code, None, "{body}");
    let r = resource(&body, "KV_CONFIGDATA_leak");
    assert_eq!(r["action"], "exists", "{r}");
    assert_eq!(fields(&r["notes"]), vec!["republish"], "{r}");
    assert_eq!(r["notes"][0]["have"]["dest"], "leak.>", "{r}");
    assert!(
        r["notes"][0]["why"]
            .as_str()
            .is_some_and(|w| w.contains("reads this bucket")),
        "{r}"
    );
    service.shutdown().await.expect("serve() returns Ok");

    // `plan` says the same with its exit codes: 3 for drift, 0 for a note.
    let mut args = vec!["plan"];
    for (lattice, _, _) in BREAKING {
        args.extend(["--lattice", lattice]);
    }
    let o = tokio::task::spawn_blocking({
        let url = url.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        move || run(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("join");
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for (_, field, _) in BREAKING {
        assert!(stdout.contains(&format!("drift {field}:")), "{}", out(&o));
    }
    let o = tokio::task::spawn_blocking(move || run(&url, &["plan", "--lattice", "leak"]))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("note  republish:"),
        "{}",
        out(&o)
    );
}

/// The README's drift table is the catalog's, rendered by `catalog::readme_table`.
#[test]
fn the_readme_lists_the_catalogs_classification() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let (begin, end) = (
        "<!-- generated:drift-fields -->\n",
        "<!-- /generated:drift-fields -->",
    );
    let start = readme
        .find(begin)
        .expect("README has the drift-fields marker")
        + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README has the end marker")
        + start;
    let want = catalog::readme_table();
    assert!(
        readme[start..stop] == want,
        "README.md's drift table is not the catalog's; replace the text between the \
         drift-fields markers with:\n{want}"
    );
}

/// wadm's streams are judged per stream: a retention age shorter than wadm keeps its
/// commands for is drift; a republish of its status is a note.
#[tokio::test]
async fn wadm_streams_are_judged_by_their_own_rules() {
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;
    for row in catalog::CATALOG
        .iter()
        .filter(|r| r.scope == catalog::Scope::Wadm)
    {
        let mut config = row.desired("", false, &Settings::default()).config;
        match row.key {
            // 10 s: commands expire before wadm has read them.
            "wadm_commands" => {
                config["max_age"] = json!(10_000_000_000u64);
                config["duplicate_window"] = json!(10_000_000_000u64);
            }
            "wadm_status" => config["republish"] = json!({ "src": ">", "dest": "leak.>" }),
            _ => {}
        }
        create(&nc, &config).await;
    }
    let service = provisioner::spawn(&url, Settings::default()).await;
    let (code, body) = call(&nc, "wasmcloud.provision.wadm", r#"{"dry_run":true}"#)
        .await
        .parts();
    assert_eq!(code, None, "{body}");
    let commands = resource(&body, "wadm_commands");
    assert_eq!(commands["action"], "drift", "{commands}");
    assert_eq!(fields(&commands["drift"]), vec!["max_age"], "{commands}");
    assert_eq!(commands["drift"][0]["breaks"], "wadm", "{commands}");
    let status = resource(&body, "wadm_status");
    assert_eq!(status["action"], "exists", "{status}");
    assert_eq!(fields(&status["notes"]), vec!["republish"], "{status}");
    for stream in [
        "wadm_events",
        "wasmbus_events",
        "wadm_notify",
        "wadm_event_consumer",
    ] {
        let r = resource(&body, stream);
        assert_eq!(r["action"], "exists", "{r}");
        assert!(r.get("notes").is_none(), "{r}");
    }
    let (code, _) = call(&nc, "wasmcloud.provision.wadm", "").await.parts();
    assert_eq!(code, Some(409));
    service.shutdown().await.expect("serve() returns Ok");
}
