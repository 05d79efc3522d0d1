//! `backup` and `restore` against real nats-servers, through the real binary.
//!
//! The data: KV buckets with history 5 holding many keys, revisions, deleted and purged
//! keys (tombstones) and values up to 64 KiB. A backup is compared with what comes back
//! message by message (sequence, subject, headers, payload, time) and by full stream
//! config. The interop tests use `common/natscli_style.rs`, a separate client that
//! speaks the protocol as natscli does and nothing of the provisioner's code.

mod common;
#[path = "common/natscli_style.rs"]
mod natscli_style;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use common::{ClusterOptions, NatsCluster, NatsServer, ServerOptions};

/// One message as the stream holds it.
type Held = (u64, String, Vec<(String, Vec<String>)>, Vec<u8>, String);

/// How much data a test writes into a bucket.
#[derive(Clone, Copy)]
struct Fill {
    keys: usize,
    /// Keys with 4 more revisions (history 5).
    revised: usize,
    deleted: usize,
    purged: usize,
}

const FULL: Fill = Fill {
    keys: 10_000,
    revised: 1_000,
    deleted: 200,
    purged: 100,
};
const SMALL: Fill = Fill {
    keys: 1_000,
    revised: 100,
    deleted: 50,
    purged: 20,
};

fn js(client: &async_nats::Client, domain: Option<&str>) -> jetstream::Context {
    match domain {
        Some(d) => jetstream::with_domain(client.clone(), d),
        None => jetstream::new(client.clone()),
    }
}

fn api_prefix(domain: Option<&str>) -> String {
    match domain {
        Some(d) => format!("$JS.{d}.API"),
        None => "$JS.API".to_string(),
    }
}

/// A value of key `i`, revision `r`: mostly small, every 1000th key 64 KiB.
fn value(i: usize, r: usize) -> Vec<u8> {
    let len = if i % 1000 == 7 {
        64 * 1024
    } else {
        20 + (i * 31 + r) % 300
    };
    (0..len)
        .map(|j| ((i * 7 + r * 13 + j) % 251) as u8)
        .collect()
}

/// Creates bucket `bucket` (history 5, `replicas`) and fills it.
async fn fill(js: &jetstream::Context, bucket: &str, replicas: usize, f: Fill) -> kv::Store {
    // A cluster that has just started may not have every peer reported in yet.
    let store = common::eventually("create bucket", Duration::from_secs(30), || {
        js.create_key_value(kv::Config {
            bucket: bucket.to_string(),
            history: 5,
            num_replicas: replicas,
            ..Default::default()
        })
    })
    .await;
    let mut pending = Vec::new();
    let publish = |key: String, v: Vec<u8>| {
        let js = js.clone();
        let subject = format!("$KV.{bucket}.{key}");
        async move {
            js.publish(subject, v.into())
                .await
                .expect("publish")
                .await
                .expect("ack")
        }
    };
    for i in 0..f.keys {
        pending.push(publish(format!("k{i}"), value(i, 0)));
    }
    for r in 1..5 {
        for i in 0..f.revised {
            pending.push(publish(format!("k{i}"), value(i, r)));
        }
    }
    futures::stream::iter(pending)
        .buffered(256)
        .collect::<Vec<_>>()
        .await;
    for i in f.revised..f.revised + f.deleted {
        store.delete(format!("k{i}")).await.expect("delete");
    }
    let from = f.revised + f.deleted;
    for i in from..from + f.purged {
        store.purge(format!("k{i}")).await.expect("purge");
    }
    store
}

/// Every message of a stream, in order, read with an ordered consumer.
async fn held(js: &jetstream::Context, stream: &str) -> Vec<Held> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let info = s.info().await.expect("info").clone();
    let last = info.state.last_sequence;
    let count = info.state.messages as usize;
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return out;
    }
    let consumer = s
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    while let Some(m) = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .expect("messages in time")
    {
        let m = m.expect("message");
        let info = m.info().expect("message info");
        let seq = info.stream_sequence;
        let time = info.published.to_string();
        let mut headers: Vec<(String, Vec<String>)> = m
            .headers
            .as_ref()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            v.iter().map(|x| x.as_str().to_string()).collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        headers.sort();
        out.push((
            seq,
            m.subject.to_string(),
            headers,
            m.payload.to_vec(),
            time,
        ));
        if seq >= last {
            break;
        }
    }
    assert_eq!(out.len(), count, "read every message of {stream}");
    out
}

/// The stream's config as the server reports it.
async fn config(client: &async_nats::Client, domain: Option<&str>, stream: &str) -> Value {
    let answer = client
        .request(
            format!("{}.STREAM.INFO.{stream}", api_prefix(domain)),
            "".into(),
        )
        .await
        .expect("stream info");
    let v: Value = serde_json::from_slice(&answer.payload).expect("info JSON");
    assert!(v.get("error").is_none(), "{stream}: {v}");
    v["config"].clone()
}

/// What a bucket holds, to compare before and after.
struct Recorded {
    stream: String,
    messages: Vec<Held>,
    config: Value,
}

async fn record(client: &async_nats::Client, domain: Option<&str>, stream: &str) -> Recorded {
    Recorded {
        stream: stream.to_string(),
        messages: held(&js(client, domain), stream).await,
        config: config(client, domain, stream).await,
    }
}

async fn assert_same(client: &async_nats::Client, domain: Option<&str>, before: &Recorded) {
    let after = record(client, domain, &before.stream).await;
    assert_eq!(
        after.messages.len(),
        before.messages.len(),
        "{}: message count",
        before.stream
    );
    for (a, b) in after.messages.iter().zip(&before.messages) {
        assert_eq!(a, b, "{}: message differs", before.stream);
    }
    assert_eq!(after.config, before.config, "{}: config", before.stream);
}

async fn delete(client: &async_nats::Client, domain: Option<&str>, stream: &str) {
    js(client, domain)
        .delete_stream(stream)
        .await
        .expect("delete stream as admin");
}

fn cli(url: &str, domain: Option<&str>, args: &[&str]) -> Output {
    let mut c = common::provisioner_command();
    c.arg("--server").arg(url);
    if let Some(d) = domain {
        c.arg("--js-domain").arg(d);
    }
    c.args(args).output().expect("run the provisioner")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> Output {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    o
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Backs up lattice `lattice` with the binary, checks the folder, deletes the streams,
/// restores, and compares everything.
async fn round_trip(url: &str, domain: Option<&str>, replicas: usize, f: Fill) {
    let client = common::connect(url).await;
    let j = js(&client, domain);
    let lattice = "rt";
    fill(&j, &format!("CONFIGDATA_{lattice}"), replicas, f).await;
    fill(
        &j,
        &format!("LATTICEDATA_{lattice}"),
        replicas,
        Fill {
            keys: f.keys / 10,
            revised: 10,
            deleted: 5,
            purged: 5,
        },
    )
    .await;
    let streams = [
        format!("KV_LATTICEDATA_{lattice}"),
        format!("KV_CONFIGDATA_{lattice}"),
    ];
    let mut before = Vec::new();
    for s in &streams {
        before.push(record(&client, domain, s).await);
    }
    let mut events = client
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    client.flush().await.expect("flush");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("b1");
    let o = ok(cli(
        url,
        domain,
        &[
            "backup",
            "--lattice",
            lattice,
            "--out",
            path(&out),
            "--json",
        ],
    ));
    let manifest: Value = serde_json::from_slice(&o.stdout).expect("manifest on stdout");
    assert_eq!(manifest["js_domain"], serde_json::json!(domain));
    let listed: Vec<&str> = manifest["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["stream"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        listed,
        streams.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let on_disk: Value = serde_json::from_slice(
        &std::fs::read(out.join("backup-manifest.json")).expect("manifest file"),
    )
    .expect("manifest JSON");
    assert_eq!(on_disk, manifest);
    for (entry, rec) in manifest["streams"].as_array().unwrap().iter().zip(&before) {
        let folder = out.join(&rec.stream);
        let meta: Value =
            serde_json::from_slice(&std::fs::read(folder.join("backup.json")).unwrap()).unwrap();
        assert_eq!(meta["config"]["name"], rec.stream.as_str());
        assert_eq!(entry["messages"], rec.messages.len() as u64);
        let data = std::fs::read(folder.join("stream.tar.s2")).unwrap();
        assert_eq!(entry["data_bytes"], data.len() as u64);
        let sum =
            wasmcloud_provisioner::backup::manifest::sha256_file(&folder.join("stream.tar.s2"))
                .unwrap();
        assert_eq!(entry["sha256"], sum.as_str());
    }
    assert!(!out.join("BACKUP-INCOMPLETE").exists());
    // Nothing but the backup beside it: the temporary folder was renamed.
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);

    for s in &streams {
        delete(&client, domain, s).await;
    }
    ok(cli(url, domain, &["restore", "--from", path(&out)]));
    for rec in &before {
        assert_same(&client, domain, rec).await;
    }
    // The KV view agrees: a revised key has its history, deleted and purged keys read as
    // gone, a 64 KiB value is intact.
    let store = j
        .get_key_value(format!("CONFIGDATA_{lattice}"))
        .await
        .expect("bucket");
    // A restored R3 stream answers before every replica has caught up; the KV view's
    // consumer may start on one that has not.
    let history = common::eventually("k0's five revisions", Duration::from_secs(20), || async {
        let h: Vec<kv::Entry> = store.history("k0").await?.try_collect().await?;
        if h.len() == 5 {
            Ok::<_, Box<dyn std::error::Error>>(h)
        } else {
            Err(format!("{} revisions", h.len()).into())
        }
    })
    .await;
    assert_eq!(history[4].value.to_vec(), value(0, 4));
    let deleted = format!("k{}", f.revised);
    assert!(store.get(&deleted).await.expect("get").is_none());
    let purged = format!("k{}", f.revised + f.deleted);
    assert!(store.get(&purged).await.expect("get").is_none());
    assert_eq!(
        store.get("k7").await.expect("get").expect("k7").to_vec(),
        value(7, 4)
    );
    assert_eq!(value(7, 4).len(), 64 * 1024);
    // `plan` sees the restored buckets as they were: exists, no drift.
    let plan = cli(url, domain, &["plan", "--lattice", lattice, "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let body: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(common::actions(&body), ["exists", "exists"], "{body:#}");

    // Audit: one backed_up and one restored event per stream.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("audit events in time")
            .expect("subscription open");
        let e: Value = serde_json::from_slice(&m.payload).expect("event JSON");
        assert_eq!(e["js_domain"], serde_json::json!(domain));
        seen.push(format!(
            "{} {}",
            e["action"].as_str().unwrap_or("?"),
            e["resource"]["stream"].as_str().unwrap_or("?")
        ));
    }
    let want: Vec<String> = ["backed_up", "restored"]
        .iter()
        .flat_map(|a| streams.iter().map(move |s| format!("{a} {s}")))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn round_trip_single_node_keeps_every_key_revision_tombstone_and_config() {
    let server = NatsServer::start();
    round_trip(&server.url(), None, 1, FULL).await;
}

#[tokio::test]
async fn round_trip_single_node_in_a_jetstream_domain() {
    let server = NatsServer::start_with(ServerOptions {
        js_domain: Some("hub".into()),
        ..Default::default()
    });
    round_trip(&server.url(), Some("hub"), 1, SMALL).await;
}

#[tokio::test]
async fn round_trip_three_node_cluster() {
    let cluster = NatsCluster::start(3);
    round_trip(&cluster.client_url_all(), None, 3, SMALL).await;
}

#[tokio::test]
async fn round_trip_three_node_cluster_in_a_jetstream_domain() {
    let cluster = NatsCluster::start_with(
        3,
        ClusterOptions {
            js_domain: Some("hub".into()),
            ..Default::default()
        },
    );
    round_trip(&cluster.client_url_all(), Some("hub"), 3, SMALL).await;
}
