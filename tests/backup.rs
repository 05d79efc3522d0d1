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
    let kv_before = kv_view(&j, lattice, f).await;
    assert_eq!(kv_before.0.len(), 5, "k0 has five revisions");
    assert_eq!(
        kv_before.1,
        (None, None),
        "deleted and purged keys read as gone"
    );
    assert_eq!(kv_before.2.len(), 64 * 1024);
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
    ok_retrying_transient(url, domain, &["restore", "--from", path(&out)]);
    for rec in &before {
        assert_same(&client, domain, rec).await;
    }
    // The KV view agrees: a revised key has its five revisions, deleted and purged keys
    // read as gone, a 64 KiB value is intact. A restored R3 stream answers before every
    // replica has caught up, so the KV view is given time to converge.
    common::eventually("the KV view", Duration::from_secs(20), || async {
        let v = kv_view(&j, lattice, f).await;
        if v == kv_before {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    // `plan` sees the restored buckets as they were: exists, no drift.
    let plan = cli(url, domain, &["plan", "--lattice", lattice, "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let body: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(common::actions(&body), ["exists", "exists"], "{body:#}");

    if replicas == 3 {
        // --replicas changes the restored stream's replicas, nothing else.
        delete(&client, domain, &streams[0]).await;
        ok_retrying_transient(
            url,
            domain,
            &[
                "restore",
                "--from",
                path(&out),
                "--skip-existing",
                "--replicas",
                "1",
            ],
        );
        let mut want = before[0].config.clone();
        want["num_replicas"] = 1.into();
        assert_eq!(config(&client, domain, &streams[0]).await, want);
    }
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
    assert_eq!(seen[..4], want[..]);
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

/// Fills a lattice's two buckets with a little data and backs them up; returns the
/// records and the folder.
async fn small_backup(
    url: &str,
    client: &async_nats::Client,
    lattice: &str,
    dir: &Path,
) -> (Vec<Recorded>, std::path::PathBuf) {
    let j = js(client, None);
    let tiny = Fill {
        keys: 200,
        revised: 20,
        deleted: 5,
        purged: 5,
    };
    fill(&j, &format!("LATTICEDATA_{lattice}"), 1, tiny).await;
    fill(&j, &format!("CONFIGDATA_{lattice}"), 1, tiny).await;
    let mut records = Vec::new();
    for s in [
        format!("KV_LATTICEDATA_{lattice}"),
        format!("KV_CONFIGDATA_{lattice}"),
    ] {
        records.push(record(client, None, &s).await);
    }
    let out = dir.join(format!("backup-{lattice}"));
    let o = ok(cli(
        url,
        None,
        &["backup", "--lattice", lattice, "--out", path(&out)],
    ));
    // Not a terminal: one line per stream, then the summary.
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, r) in lines.iter().zip(&records) {
        assert!(
            line.starts_with(&format!(
                "backed up {}: {} messages",
                r.stream,
                r.messages.len()
            )),
            "{line}"
        );
    }
    assert!(
        lines[2].starts_with("backup complete: 2 stream(s)"),
        "{}",
        lines[2]
    );
    (records, out)
}

async fn stream_exists(client: &async_nats::Client, stream: &str) -> bool {
    let answer = client
        .request(format!("$JS.API.STREAM.INFO.{stream}"), "".into())
        .await
        .expect("stream info");
    let v: Value = serde_json::from_slice(&answer.payload).expect("info JSON");
    v.get("error").is_none()
}

#[tokio::test]
async fn restore_refuses_existing_streams_and_changes_nothing_then_skip_existing_restores_the_rest()
{
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "ex", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    // A host's bootstrap recreates CONFIGDATA empty (as `apply` would).
    ok(cli(&url, None, &["apply", "--lattice", "ex"]));
    delete(&client, None, "KV_LATTICEDATA_ex").await;
    let refused = cli(&url, None, &["restore", "--from", path(&out)]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    for words in [
        "nothing was restored",
        "KV_CONFIGDATA_ex: 0 messages, created 20",
        "recreated it empty",
        "--skip-existing",
    ] {
        assert!(err.contains(words), "{words}: {err}");
    }
    assert!(!err.contains("KV_LATTICEDATA_ex:"), "{err}");
    // Nothing was restored, not even the missing one.
    assert!(!stream_exists(&client, "KV_LATTICEDATA_ex").await);
    // A dry run says what it would do and changes nothing.
    let dry = ok(cli(
        &url,
        None,
        &[
            "restore",
            "--from",
            path(&out),
            "--skip-existing",
            "--dry-run",
            "--json",
        ],
    ));
    let plan: Value = serde_json::from_slice(&dry.stdout).expect("dry run JSON");
    let actions: Vec<String> = plan["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"].as_str().unwrap(),
                s["stream"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "skipped_existing KV_CONFIGDATA_ex",
            "would_restore KV_LATTICEDATA_ex"
        ]
    );
    assert!(!stream_exists(&client, "KV_LATTICEDATA_ex").await);
    // --skip-existing restores the missing one and leaves the existing one untouched.
    ok(cli(
        &url,
        None,
        &["restore", "--from", path(&out), "--skip-existing"],
    ));
    assert_same(&client, None, &records[0]).await;
    let kept = js(&client, None)
        .get_stream("KV_CONFIGDATA_ex")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(kept, 0, "the existing stream was left as it was");
}

#[tokio::test]
async fn missing_and_memory_streams_are_refused_and_nothing_is_written() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    // Nothing exists yet.
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("KV_LATTICEDATA_mem (LATTICEDATA_mem) does not exist"),
        "{}",
        text(&o)
    );
    let j = js(&client, None);
    for bucket in ["LATTICEDATA_mem", "CONFIGDATA_mem"] {
        j.create_key_value(kv::Config {
            bucket: bucket.into(),
            storage: jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect("create memory bucket");
    }
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("memory-storage stream: JetStream cannot snapshot"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // An existing --out is refused before anything else.
    std::fs::create_dir(&out).unwrap();
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exists: backup never overwrites"),
        "{}",
        text(&o)
    );
}

/// Copies a backup folder (files only, two levels).
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_folder(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn corrupted_truncated_or_foreign_files_are_refused_and_nothing_is_half_restored() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "bad", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    let data = |folder: &Path| folder.join("KV_CONFIGDATA_bad").join("stream.tar.s2");
    let nothing_restored = || async {
        for r in &records {
            assert!(
                !stream_exists(&client, &r.stream).await,
                "{} was restored",
                r.stream
            );
        }
    };
    let refused = |folder: &Path, words: &[&str]| {
        let o = cli(&url, None, &["restore", "--from", path(folder)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        for w in words {
            assert!(err.contains(w), "{w}: {err}");
        }
    };

    // One flipped byte: the checksum catches it before anything is sent.
    let flipped = dir.path().join("flipped");
    copy_folder(&out, &flipped);
    let mut bytes = std::fs::read(data(&flipped)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(data(&flipped), &bytes).unwrap();
    refused(
        &flipped,
        &["SHA-256", "does not match", "nothing was restored"],
    );
    nothing_restored().await;

    // Truncated.
    let truncated = dir.path().join("truncated");
    copy_folder(&out, &truncated);
    let bytes = std::fs::read(data(&truncated)).unwrap();
    std::fs::write(data(&truncated), &bytes[..bytes.len() / 2]).unwrap();
    refused(&truncated, &["truncated", "nothing was restored"]);
    nothing_restored().await;

    // A backup.json for another stream in a stream's folder.
    let renamed = dir.path().join("renamed");
    copy_folder(&out, &renamed);
    std::fs::copy(
        renamed.join("KV_LATTICEDATA_bad").join("backup.json"),
        renamed.join("KV_CONFIGDATA_bad").join("backup.json"),
    )
    .unwrap();
    std::fs::remove_file(renamed.join("backup-manifest.json")).unwrap();
    refused(&renamed, &["is for stream \"KV_LATTICEDATA_bad\""]);
    nothing_restored().await;

    // Foreign data in natscli's layout (no manifest to check against): the server refuses
    // the archive, and the stream it was for does not exist afterwards.
    let foreign = dir.path().join("foreign");
    copy_folder(&out, &foreign);
    std::fs::remove_file(foreign.join("backup-manifest.json")).unwrap();
    std::fs::remove_dir_all(foreign.join("KV_LATTICEDATA_bad")).unwrap();
    let junk: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data(&foreign), junk).unwrap();
    refused(&foreign, &["could not restore KV_CONFIGDATA_bad"]);
    nothing_restored().await;

    // A stream folder the manifest does not list.
    let added = dir.path().join("added");
    copy_folder(&out, &added);
    copy_folder(&added.join("KV_CONFIGDATA_bad"), &added.join("KV_OTHER"));
    refused(&added, &["KV_OTHER is not listed"]);
    nothing_restored().await;

    // natscli's layout with an empty data file.
    let empty = dir.path().join("empty");
    copy_folder(&out, &empty);
    std::fs::remove_file(empty.join("backup-manifest.json")).unwrap();
    std::fs::write(data(&empty), b"").unwrap();
    refused(&empty, &["stream.tar.s2 is empty"]);
    nothing_restored().await;

    // A data file that no longer matches its checksum while it is sent: its last chunk
    // is withheld, so the server creates nothing (it is given longer than its ~5 s
    // restore stall timeout). This file is a single chunk, so nothing at all is sent.
    let api =
        wasmcloud_provisioner::backup::api::Api::new(client.clone(), None, Duration::from_secs(5));
    let folder = wasmcloud_provisioner::backup::manifest::read_folder(&out).expect("read folder");
    let s = &folder.streams[1];
    let err = wasmcloud_provisioner::backup::restore::restore_from_file(
        &api,
        &s.stream,
        &s.metadata,
        &s.data_path,
        Some("00"),
        &mut |_| {},
    )
    .await
    .expect_err("a changed file is not completed");
    assert!(err.contains("changed after it was checked"), "{err}");
    tokio::time::sleep(Duration::from_secs(7)).await;
    nothing_restored().await;

    // A hostile manifest naming a path outside the folder.
    let hostile = dir.path().join("hostile");
    copy_folder(&out, &hostile);
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(hostile.join("backup-manifest.json")).unwrap())
            .unwrap();
    m["streams"][0]["stream"] = "../flipped/KV_CONFIGDATA_bad".into();
    std::fs::write(hostile.join("backup-manifest.json"), m.to_string()).unwrap();
    refused(&hostile, &["not a valid stream name"]);
    nothing_restored().await;

    // The untouched backup still restores.
    ok(cli(&url, None, &["restore", "--from", path(&out)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }
}

/// The folders in `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// Starts `backup` of lattice `big` and returns once its data file has bytes in it.
fn start_backup_and_wait_for_data(url: &str, out: &Path) -> std::process::Child {
    let parent = out.parent().unwrap();
    let mut child = common::provisioner_command()
        .args([
            "--server",
            url,
            "backup",
            "--lattice",
            "big",
            "--js-timeout",
            "2",
            "--out",
            path(out),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start backup");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let writing = named(parent, ".b.partial-").into_iter().any(|p| {
            std::fs::metadata(p.join("KV_LATTICEDATA_big").join("stream.tar.s2"))
                .is_ok_and(|m| m.len() > 0)
        });
        if writing {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the backup ended ({status}) before it could be interrupted: give it more data");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup wrote no data in 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test]
async fn an_interrupted_backup_leaves_no_folder_that_claims_to_be_complete() {
    let mut server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    common::fill_kv_bucket(&client, "LATTICEDATA_big", 48).await;
    common::fill_kv_bucket(&client, "CONFIGDATA_big", 1).await;
    let dir = tempfile::tempdir().unwrap();

    // The process killed mid-way: no folder at --out; the leftover is marked unfinished
    // and restore refuses it.
    let out = dir.path().join("b");
    let mut child = start_backup_and_wait_for_data(&url, &out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed backup left {}", out.display());
    let leftovers = named(dir.path(), ".b.partial-");
    assert_eq!(leftovers.len(), 1);
    assert!(leftovers[0].join("BACKUP-INCOMPLETE").exists());
    assert!(!leftovers[0].join("backup-manifest.json").exists());
    let o = cli(&url, None, &["restore", "--from", path(&leftovers[0])]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unfinished backup"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&leftovers[0]).unwrap();

    // The server stopped mid-way: the backup fails, says so, and removes what it wrote.
    let child = start_backup_and_wait_for_data(&url, &out);
    server.kill();
    let started = std::time::Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("incomplete"), "{err}");
    assert!(!out.exists());
    assert!(named(dir.path(), ".b.partial-").is_empty());
}

#[tokio::test]
async fn natscli_layout_restores_and_ours_restores_through_a_natscli_style_client() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let j = js(&client, None);
    fill(&j, "LATTICEDATA_io", 1, SMALL).await;
    fill(&j, "CONFIGDATA_io", 1, SMALL).await;
    let streams = ["KV_LATTICEDATA_io", "KV_CONFIGDATA_io"];
    let mut records = Vec::new();
    for s in streams {
        records.push(record(&client, None, s).await);
    }

    // natscli's `nats account backup` layout, written by the independent client.
    let theirs = dir.path().join("theirs");
    for s in streams {
        natscli_style::backup(&client, "$JS.API", s, &theirs.join(s)).await;
    }
    for s in streams {
        delete(&client, None, s).await;
    }
    ok(cli(&url, None, &["restore", "--from", path(&theirs)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }

    // Ours, restored stream by stream by the natscli-style client.
    let ours = dir.path().join("ours");
    ok(cli(
        &url,
        None,
        &["backup", "--lattice", "io", "--out", path(&ours)],
    ));
    for s in streams {
        delete(&client, None, s).await;
    }
    for s in streams {
        natscli_style::restore(&client, "$JS.API", &ours.join(s)).await;
    }
    for r in &records {
        assert_same(&client, None, r).await;
    }
}

/// A server whose account has an unrestricted `admin` and a `backup` user holding the
/// `backup` role's template for lattice `perm`.
fn server_with_backup_user(domain: Option<&str>) -> NatsServer {
    use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
    let block = permissions::template(
        Role::Backup,
        &TemplateOptions {
            lattices: vec!["perm".into()],
            js_domain: domain.map(String::from),
        },
    )
    .expect("backup template")
    .to_conf();
    NatsServer::start_with(ServerOptions {
        js_domain: domain.map(String::from),
        extra_config: format!(
            "accounts {{\n  BACKUPS {{\n    jetstream: enabled\n    users: [\n      {{ user: \
             admin, password: admin }}\n      {{\n        user: backup\n        password: \
             backup\n{block}      }}\n    ]\n  }}\n}}\n"
        ),
        ..Default::default()
    })
}

#[tokio::test]
async fn the_backup_user_can_back_up_and_cannot_restore_create_update_delete_or_purge() {
    let server = server_with_backup_user(None);
    let url = server.url();
    let admin = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into()),
    )
    .await;
    let j = js(&admin, None);
    fill(&j, "LATTICEDATA_perm", 1, SMALL).await;
    fill(&j, "CONFIGDATA_perm", 1, SMALL).await;
    let before = record(&admin, None, "KV_CONFIGDATA_perm").await;
    let as_backup = |args: &[&str]| {
        let mut c = common::provisioner_command();
        c.args(["--server", &url, "--user", "backup", "--password", "backup"]);
        c.args(args).output().expect("run the provisioner")
    };

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nightly");
    ok(as_backup(&[
        "backup",
        "--lattice",
        "perm",
        "--out",
        path(&out),
    ]));
    assert!(out.join("backup-manifest.json").exists());
    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:#?}");

    // Restore as the backup user: refused by the server, and nothing appears.
    delete(&admin, None, "KV_LATTICEDATA_perm").await;
    let o = as_backup(&["restore", "--from", path(&out), "--js-timeout", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!stream_exists(&admin, "KV_LATTICEDATA_perm").await);

    // Create, update, delete, purge and restore requests straight to the API: each is
    // a publish violation, and nothing changes.
    let backup = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("backup".into(), "backup".into()),
    )
    .await;
    let config = before.config.to_string();
    let attempts = [
        (
            "STREAM.CREATE.KV_LATTICEDATA_perm",
            config.replace("CONFIGDATA", "LATTICEDATA"),
        ),
        ("STREAM.UPDATE.KV_CONFIGDATA_perm", config.clone()),
        ("STREAM.PURGE.KV_CONFIGDATA_perm", String::new()),
        ("STREAM.DELETE.KV_CONFIGDATA_perm", String::new()),
        (
            "STREAM.RESTORE.KV_LATTICEDATA_perm",
            format!("{{\"config\":{config}}}"),
        ),
    ];
    for (op, body) in &attempts {
        let subject = format!("$JS.API.{op}");
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            backup.request(subject.clone(), body.clone().into()),
        )
        .await;
        if let Ok(Ok(m)) = answer {
            panic!("{subject} was answered: {:?}", m.payload);
        }
        assert!(
            common::wait_for_log(
                || server.log(),
                Duration::from_secs(10),
                |log| { log.contains(&format!("Publish Violation - Subject \"{subject}\"")) }
            ),
            "no violation logged for {subject}"
        );
    }
    assert!(!stream_exists(&admin, "KV_LATTICEDATA_perm").await);
    assert_same(&admin, None, &before).await;

    // The admin restores what the backup user wrote.
    ok(cli(
        &url,
        None,
        &[
            "--user",
            "admin",
            "--password",
            "admin",
            "restore",
            "--from",
            path(&out),
            "--skip-existing",
        ],
    ));
    assert!(stream_exists(&admin, "KV_LATTICEDATA_perm").await);
}

#[tokio::test]
async fn the_backup_user_backs_up_in_a_jetstream_domain() {
    let server = server_with_backup_user(Some("hub"));
    let url = server.url();
    let admin = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into()),
    )
    .await;
    let j = js(&admin, Some("hub"));
    fill(&j, "LATTICEDATA_perm", 1, SMALL).await;
    fill(&j, "CONFIGDATA_perm", 1, SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nightly");
    let o = common::provisioner_command()
        .args([
            "--server",
            &url,
            "--user",
            "backup",
            "--password",
            "backup",
            "--js-domain",
            "hub",
            "backup",
            "--lattice",
            "perm",
            "--out",
            path(&out),
        ])
        .output()
        .unwrap();
    ok(o);
    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn creds_role_backup_mints_a_user_with_exactly_the_backup_template() {
    use base64::Engine;
    use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
    let dir = tempfile::tempdir().unwrap();
    let account = nkeys::KeyPair::new_account();
    let seed_file = dir.path().join("account.nk");
    std::fs::write(&seed_file, account.seed().unwrap()).unwrap();
    let creds = dir.path().join("backup.creds");
    let o = common::provisioner_command()
        .args([
            "creds",
            "--role",
            "backup",
            "--lattice",
            "perm",
            "--account-seed",
            path(&seed_file),
            "--out",
            path(&creds),
        ])
        .output()
        .unwrap();
    let o = ok(o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("user wasmcloud-provisioner-backup"),
        "{}",
        text(&o)
    );
    let file = std::fs::read_to_string(&creds).unwrap();
    let jwt = file
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT in the creds file");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("claims"))
            .unwrap(),
    )
    .unwrap();
    let template = permissions::template(
        Role::Backup,
        &TemplateOptions {
            lattices: vec!["perm".into()],
            js_domain: None,
        },
    )
    .unwrap();
    let p = &template.permissions;
    assert_eq!(
        claims["nats"]["pub"]["allow"],
        serde_json::json!(p.publish.allow)
    );
    assert_eq!(
        claims["nats"]["pub"]["deny"],
        serde_json::json!(p.publish.deny)
    );
    assert_eq!(
        claims["nats"]["sub"]["allow"],
        serde_json::json!(p.subscribe.allow)
    );
    assert!(claims["nats"].get("resp").is_none(), "no allow_responses");
}

/// A folder is only files: whoever can write one chooses the config `restore` creates.
/// A bucket that republishes every value, a bucket the hosts cannot use, and a stream of
/// the folder's own that records the lattice's RPC traffic are all refused before
/// anything is sent; the untouched backup then restores.
#[tokio::test]
async fn restore_refuses_hostile_configs_and_streams_the_catalog_does_not_know() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "vet", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    let refused = |folder: &Path, words: &[&str]| {
        let o = cli(&url, None, &["restore", "--from", path(folder)]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        for w in words {
            assert!(err.contains(w), "{w}: {err}");
        }
    };
    let edit = |folder: &Path, stream: &str, change: &dyn Fn(&mut Value)| {
        let file = folder.join(stream).join("backup.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        change(&mut v["config"]);
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    };

    let leak = dir.path().join("leak");
    copy_folder(&out, &leak);
    edit(&leak, "KV_CONFIGDATA_vet", &|c| {
        c["republish"] = serde_json::json!({"src": ">", "dest": "leak.>"});
    });
    edit(&leak, "KV_LATTICEDATA_vet", &|c| {
        c["max_age"] = 60_000_000_000u64.into();
    });
    refused(
        &leak,
        &[
            "nothing was restored",
            "KV_CONFIGDATA_vet: republish",
            "KV_LATTICEDATA_vet: max_age",
        ],
    );

    // natscli's layout, with a stream of its own next to a real bucket.
    let foreign = dir.path().join("foreign");
    copy_folder(&out, &foreign);
    std::fs::remove_file(foreign.join("backup-manifest.json")).unwrap();
    std::fs::rename(foreign.join("KV_LATTICEDATA_vet"), foreign.join("RECORDER")).unwrap();
    edit(&foreign, "RECORDER", &|c| {
        c["name"] = "RECORDER".into();
        c["subjects"] = serde_json::json!(["wasmbus.rpc.>"]);
    });
    refused(&foreign, &["RECORDER: not one of the catalog's"]);
    for s in ["KV_CONFIGDATA_vet", "KV_LATTICEDATA_vet", "RECORDER"] {
        assert!(!stream_exists(&client, s).await, "{s} was created");
    }

    ok(cli(&url, None, &["restore", "--from", path(&out)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }
}
