//! `backup` and `restore` against real nats-servers, through the real binary.
//!
//! The data: KV buckets with history 5 holding many keys, revisions, deleted and purged
//! keys (tombstones) and values up to 64 KiB. A backup is compared with what comes back
//! message by message (sequence, subject, headers, payload, time) and by full stream
//! config. The interop tests use `common/natscli_style.rs`, a separate client that
//! speaks the protocol as natscli does and nothing of the provisioner's code.

#[path = "../common/mod.rs"]
mod common;

#[path = "../common/natscli_style.rs"]
mod natscli_style;
mod operations;
mod refusals;
mod round_trip;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use common::cli::{fails_saying, fails_with, text};
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

/// Every message of a stream, in order, read by sequence from the stream leader
/// (`STREAM.MSG.GET`): no consumer, so nothing depends on a replica having caught up.
async fn held(js: &jetstream::Context, stream: &str) -> Vec<Held> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let info = s.info().await.expect("info").clone();
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let count = info.state.messages as usize;
    if count == 0 {
        return Vec::new();
    }
    let out: Vec<Held> = futures::stream::iter(first..=last)
        .map(|seq| {
            let s = s.clone();
            async move {
                match s.get_raw_message(seq).await {
                    Ok(m) => Some(m),
                    Err(e)
                        if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound =>
                    {
                        None
                    }
                    Err(e) => panic!("{stream} sequence {seq}: {e}"),
                }
            }
        })
        .buffered(64)
        .filter_map(|m| async move { m })
        .map(|m| {
            let mut headers: Vec<(String, Vec<String>)> = m
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.iter().map(|x| x.as_str().to_string()).collect(),
                    )
                })
                .collect();
            headers.sort();
            (
                m.sequence,
                m.subject.to_string(),
                headers,
                m.payload.to_vec(),
                m.time.to_string(),
            )
        })
        .collect()
        .await;
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

/// Waits until every replica of a stream is current. A restored R3 stream answers before
/// its followers have caught up; a consumer placed on one of them then stalls (seen:
/// an ordered consumer's read paused ~15 s) until they have.
async fn settled(client: &async_nats::Client, domain: Option<&str>, stream: &str) {
    common::eventually("replicas current", Duration::from_secs(30), || async {
        let answer = client
            .request(
                format!("{}.STREAM.INFO.{stream}", api_prefix(domain)),
                "".into(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&answer.payload).map_err(|e| e.to_string())?;
        let cluster = &v["cluster"];
        let leader = cluster["leader"].as_str().is_some_and(|l| !l.is_empty());
        let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
        let want = v["config"]["num_replicas"].as_u64().unwrap_or(1) as usize;
        let current = replicas
            .iter()
            .filter(|r| r["current"] == true && r["offline"] != true)
            .count();
        if leader && current + 1 >= want {
            Ok(())
        } else {
            Err(format!("{cluster}"))
        }
    })
    .await
}

/// What a bucket holds, to compare before and after.
struct Recorded {
    stream: String,
    messages: Vec<Held>,
    config: Value,
}

async fn record(client: &async_nats::Client, domain: Option<&str>, stream: &str) -> Recorded {
    settled(client, domain, stream).await;
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

fn ok(o: Output) -> Output {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    o
}

/// Runs a command that a loaded 3-node cluster may refuse for a moment ("peer offline":
/// the meta leader has not heard from a peer within its window, as the cluster tests
/// also see) again, at most 3 times, as an operator would. A restore that stopped
/// half-way is run again with `--skip-existing`, as its error message says.
fn ok_retrying_transient(url: &str, domain: Option<&str>, args: &[&str]) -> Output {
    let mut args: Vec<&str> = args.to_vec();
    for attempt in 1.. {
        let o = cli(url, domain, &args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let transient = err.contains("peer offline") || err.contains("no quorum");
        if o.status.code() == Some(0) || !transient || attempt == 3 {
            return ok(o);
        }
        eprintln!("attempt {attempt} met a transient cluster refusal, again: {err}");
        std::thread::sleep(Duration::from_secs(2));
        if args[0] == "restore" && !args.contains(&"--skip-existing") {
            args.push("--skip-existing");
        }
    }
    unreachable!()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What the KV API shows: k0's history (revision, value), a deleted and a purged key, and
/// k7's 64 KiB value.
type KvView = (
    Vec<(u64, Vec<u8>)>,
    (Option<Vec<u8>>, Option<Vec<u8>>),
    Vec<u8>,
);

async fn kv_view(j: &jetstream::Context, lattice: &str, f: Fill) -> KvView {
    let store = j
        .get_key_value(format!("CONFIGDATA_{lattice}"))
        .await
        .expect("bucket");
    let history: Vec<kv::Entry> = store
        .history("k0")
        .await
        .expect("history")
        .try_collect()
        .await
        .expect("history entries");
    let get = |k: String| {
        let store = store.clone();
        async move { store.get(k).await.expect("get").map(|b| b.to_vec()) }
    };
    (
        history
            .iter()
            .map(|e| (e.revision, e.value.to_vec()))
            .collect(),
        (
            get(format!("k{}", f.revised)).await,
            get(format!("k{}", f.revised + f.deleted)).await,
        ),
        get("k7".to_string()).await.expect("k7"),
    )
}

async fn stream_exists(client: &async_nats::Client, stream: &str) -> bool {
    let answer = client
        .request(format!("$JS.API.STREAM.INFO.{stream}"), "".into())
        .await
        .expect("stream info");
    let v: Value = serde_json::from_slice(&answer.payload).expect("info JSON");
    v.get("error").is_none()
}
