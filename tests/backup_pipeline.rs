//! The pipelined restore upload and the progress output of `backup`/`restore`, against
//! real nats-servers.
//!
//! The upload tests put a scripted JetStream peer on a real server (JetStream off): it
//! answers `STREAM.RESTORE`, receives the chunks and acks them as the test decides, so
//! the order, the window and the refusals can be checked chunk by chunk. One test runs
//! the same failure against a real JetStream.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::backup::{api::Api, manifest, restore};

const STREAM: &str = "KV_CONFIGDATA_pipe";
const DELIVER: &str = "fake.restore.KV_CONFIGDATA_pipe";

fn plain_server() -> NatsServer {
    NatsServer::start_with(ServerOptions {
        jetstream: false,
        ..Default::default()
    })
}

/// A data file of `chunks` full chunks and a short last one, every byte distinct by
/// position; returns its path and contents.
fn data_file(dir: &Path, chunks: usize) -> (std::path::PathBuf, Vec<u8>) {
    let len = chunks * restore::CHUNK_SIZE + restore::CHUNK_SIZE / 3;
    let bytes: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let path = dir.join("stream.tar.s2");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// The scripted peer's side: answers the restore request with [`DELIVER`] and returns
/// the subscription the chunks arrive on.
async fn fake_restore_api(client: &async_nats::Client) -> async_nats::Subscriber {
    let mut requests = client
        .subscribe(format!("$JS.API.STREAM.RESTORE.{STREAM}"))
        .await
        .unwrap();
    let chunks = client.subscribe(DELIVER).await.unwrap();
    let answer = client.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            let reply = json!({
                "type": "io.nats.jetstream.api.v1.stream_restore_response",
                "deliver_subject": DELIVER,
            });
            if let Some(to) = m.reply {
                answer.publish(to, reply.to_string().into()).await.unwrap();
            }
        }
    });
    client.flush().await.unwrap();
    chunks
}

fn metadata() -> Value {
    json!({"config": {"name": STREAM}, "state": {"messages": 3}})
}

async fn next_chunk(chunks: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(10), chunks.next())
        .await
        .expect("a chunk in time")
        .expect("subscription open")
}

/// Starts `restore_from_file` on its own task.
fn start_restore(
    client: &async_nats::Client,
    path: &Path,
    sha256: Option<String>,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<Value, String>> {
    let api = Api::new(client.clone(), None, timeout);
    let path = path.to_path_buf();
    tokio::spawn(async move {
        restore::restore_from_file(
            &api,
            STREAM,
            &metadata(),
            &path,
            sha256.as_deref(),
            &mut |_| {},
        )
        .await
    })
}

#[tokio::test]
async fn the_upload_keeps_a_window_of_chunks_in_flight_in_order_and_ends_after_the_last_ack() {
    let server = plain_server();
    let peer = common::connect(&server.url()).await;
    let client = common::connect(&server.url()).await;
    let mut chunks = fake_restore_api(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = data_file(dir.path(), 2 * restore::WINDOW + 1);
    let sha = manifest::sha256_file(&path).unwrap();
    let restoring = start_restore(&client, &path, Some(sha), Duration::from_secs(10));

    // Acks held back: a whole window arrives without one (a sequential client would
    // send one chunk and wait), and not one chunk more.
    let mut held = Vec::new();
    for _ in 0..restore::WINDOW {
        held.push(next_chunk(&mut chunks).await);
    }
    let more = tokio::time::timeout(Duration::from_millis(500), chunks.next()).await;
    assert!(
        more.is_err(),
        "more than a window of chunks was sent unacked"
    );

    // Then acked one at a time, in order, each ack freeing room for one more chunk.
    let mut received: Vec<u8> = Vec::new();
    let mut end = None;
    let mut acked = 0usize;
    while end.is_none() {
        let oldest = held.remove(0);
        assert!(oldest.payload.len() <= restore::CHUNK_SIZE);
        received.extend_from_slice(&oldest.payload);
        peer.publish(oldest.reply.expect("a chunk is a request"), Bytes::new())
            .await
            .unwrap();
        acked += 1;
        loop {
            let m = if held.len() < restore::WINDOW {
                match tokio::time::timeout(Duration::from_millis(300), chunks.next()).await {
                    Ok(m) => m.expect("subscription open"),
                    Err(_) => break,
                }
            } else {
                break;
            };
            if m.payload.is_empty() {
                // The end comes only once every chunk was acked.
                assert!(held.is_empty(), "the end was sent with chunks unacked");
                end = Some(m);
                break;
            }
            held.push(m);
        }
        assert!(held.len() <= restore::WINDOW, "window exceeded");
    }
    assert_eq!(
        received, bytes,
        "the chunks arrived out of order or changed"
    );
    assert_eq!(acked, bytes.len().div_ceil(restore::CHUNK_SIZE));
    let answer = json!({"type": "io.nats.jetstream.api.v1.stream_create_response",
        "config": {"name": STREAM}, "state": {"messages": 3}});
    peer.publish(end.unwrap().reply.unwrap(), answer.to_string().into())
        .await
        .unwrap();
    let restored = restoring.await.unwrap().expect("restore");
    assert_eq!(restored["state"]["messages"], 3);
}

#[tokio::test]
async fn a_refused_chunk_stops_the_upload_and_the_end_is_never_sent() {
    let server = plain_server();
    let peer = common::connect(&server.url()).await;
    let client = common::connect(&server.url()).await;
    let mut chunks = fake_restore_api(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = data_file(dir.path(), 3 * restore::WINDOW);
    let restoring = start_restore(&client, &path, None, Duration::from_secs(10));
    let first = next_chunk(&mut chunks).await;
    peer.publish(first.reply.unwrap(), Bytes::new())
        .await
        .unwrap();
    let second = next_chunk(&mut chunks).await;
    let refusal = json!({"type": "io.nats.jetstream.api.v1.stream_create_response",
        "error": {"code": 500, "err_code": 10062, "description": "restore failed: s2: corrupt input"}});
    peer.publish(second.reply.unwrap(), refusal.to_string().into())
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), restoring)
        .await
        .expect("the restore stops at the refusal")
        .unwrap()
        .expect_err("a refused chunk fails the restore");
    assert!(
        err.contains("s2: corrupt input") && err.contains(STREAM),
        "{err}"
    );
    // What was already in flight may still arrive; the end never does.
    let mut after = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(700), chunks.next()).await {
        assert!(!m.payload.is_empty(), "the end was sent after a refusal");
        after += 1;
    }
    assert!(
        after < restore::WINDOW,
        "{after} chunks sent after the refusal"
    );
}

#[tokio::test]
async fn a_missing_ack_fails_the_restore_within_the_timeout() {
    let server = plain_server();
    let peer = common::connect(&server.url()).await;
    let client = common::connect(&server.url()).await;
    let mut chunks = fake_restore_api(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = data_file(dir.path(), 2);
    let restoring = start_restore(&client, &path, None, Duration::from_secs(1));
    let _first = next_chunk(&mut chunks).await;
    let err = tokio::time::timeout(Duration::from_secs(10), restoring)
        .await
        .expect("the restore gives up")
        .unwrap()
        .expect_err("no ack, no restore");
    assert!(err.contains("did not ack a chunk"), "{err}");
}

#[tokio::test]
async fn a_file_that_changed_since_the_check_never_has_its_last_chunk_sent() {
    let server = plain_server();
    let peer = common::connect(&server.url()).await;
    let client = common::connect(&server.url()).await;
    let mut chunks = fake_restore_api(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = data_file(dir.path(), restore::WINDOW + 2);
    let wrong = "0".repeat(64);
    let mut restoring = start_restore(&client, &path, Some(wrong), Duration::from_secs(10));
    // Every chunk that comes is acked at once; count the bytes.
    let mut received = 0usize;
    let mut ended = false;
    let give_up = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(give_up);
    let result = loop {
        tokio::select! {
            done = &mut restoring => break done.unwrap(),
            m = chunks.next() => {
                let m = m.expect("subscription open");
                ended |= m.payload.is_empty();
                received += m.payload.len();
                if let Some(r) = m.reply {
                    peer.publish(r, Bytes::new()).await.unwrap();
                }
            }
            () = &mut give_up => panic!("the restore neither finished nor failed"),
        }
    };
    let err = result.expect_err("a changed file is not completed");
    assert!(err.contains("changed after it was checked"), "{err}");
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), chunks.next()).await {
        ended |= m.payload.is_empty();
        received += m.payload.len();
    }
    assert!(!ended, "the end was sent");
    assert_eq!(
        received,
        bytes.len() - bytes.len() % restore::CHUNK_SIZE,
        "all but the short last chunk are sent, never the last"
    );
}

#[tokio::test]
async fn a_real_server_that_cannot_read_the_archive_mid_upload_keeps_nothing() {
    let server = NatsServer::start();
    let client = common::connect(&server.url()).await;
    common::fill_kv_bucket(&client, "CONFIGDATA_pipe", 4).await;
    let api = Api::new(client.clone(), None, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("stream.tar.s2");
    let snap = wasmcloud_provisioner::backup::snapshot::snapshot_to_file(
        &api,
        STREAM,
        &data,
        Duration::from_secs(30),
        &mut |_| {},
    )
    .await
    .expect("snapshot");
    assert!(snap.data_bytes > (2 * restore::WINDOW * restore::CHUNK_SIZE) as u64);
    let metadata = json!({"config": snap.config, "state": snap.state});
    // Garbage from a third of the way in: the server fails while chunks are in flight.
    let mut bytes = std::fs::read(&data).unwrap();
    let from = bytes.len() / 3;
    for (i, b) in bytes[from..from + 64 * 1024].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    std::fs::write(&data, &bytes).unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.delete_stream(STREAM).await.expect("delete");

    let err = restore::restore_from_file(&api, STREAM, &metadata, &data, None, &mut |_| {})
        .await
        .expect_err("a corrupt archive is not restored");
    // The server either answers the bad chunk with an error, or drops the upload and the
    // next chunk meets no responder (a 503 status): which one depends on timing, and both
    // stop the upload. Either way the error names the restore.
    assert!(
        err.contains(&format!("restore {STREAM}"))
            || err.contains(&format!("the restore of {STREAM}")),
        "{err}"
    );
    // Nothing half-restored, now or after the server's stall timeout (~5 s).
    for wait in [0, 6] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let info = client
            .request(format!("$JS.API.STREAM.INFO.{STREAM}"), "".into())
            .await
            .expect("stream info");
        let v: Value = serde_json::from_slice(&info.payload).unwrap();
        assert_eq!(v["error"]["err_code"], 10059, "{STREAM} exists: {v}");
    }
}

// ---------------------------------------------------------------------------
// Progress output
// ---------------------------------------------------------------------------

/// Two buckets of lattice `l`, the larger several chunks so that bytes move on the bar.
async fn two_buckets(client: &async_nats::Client, lattice: &str) {
    common::fill_kv_bucket(client, &format!("CONFIGDATA_{lattice}"), 3).await;
    common::fill_kv_bucket(client, &format!("LATTICEDATA_{lattice}"), 1).await;
}

/// The provisioner run through `script` (util-linux), so that its stdout and stderr
/// are a pseudo-terminal; returns what the terminal showed.
fn on_a_terminal(url: &str, args: &[&str]) -> String {
    let binary = env!("CARGO_BIN_EXE_wasmcloud-provisioner");
    let quoted: Vec<String> = [binary, "--server", url]
        .iter()
        .chain(args)
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let o = std::process::Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NATS_URL")
        .env_remove("RUST_LOG")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("wasmcloud-provisioner-tests-no-config-home"),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`script` (util-linux) runs the provisioner on a pseudo-terminal; install it");
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{:?}: {shown}", o.status);
    shown
}

#[tokio::test]
async fn a_terminal_gets_a_progress_bar_with_bytes_and_streams() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    two_buckets(&client, "tty").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let shown = on_a_terminal(
        &url,
        &["backup", "--lattice", "tty", "--out", out.to_str().unwrap()],
    );
    // The bar: the verb, which stream of how many, bytes, drawn with escape codes.
    assert!(
        shown.contains("backup [1/2] KV_LATTICEDATA_tty"),
        "{shown:?}"
    );
    assert!(
        shown.contains("backup [2/2] KV_CONFIGDATA_tty"),
        "{shown:?}"
    );
    assert!(shown.contains("MiB"), "{shown:?}");
    assert!(
        shown.contains('\u{1b}'),
        "no terminal control codes: {shown:?}"
    );
    // The per-stream summaries are printed above the bar.
    for s in ["KV_LATTICEDATA_tty", "KV_CONFIGDATA_tty"] {
        assert!(shown.contains(&format!("backed up {s}: ")), "{shown:?}");
    }

    let js = async_nats::jetstream::new(client.clone());
    for s in ["KV_LATTICEDATA_tty", "KV_CONFIGDATA_tty"] {
        js.delete_stream(s).await.expect("delete");
    }
    let shown = on_a_terminal(&url, &["restore", "--from", out.to_str().unwrap()]);
    assert!(
        shown.contains("restore [1/2] KV_LATTICEDATA_tty"),
        "{shown:?}"
    );
    assert!(
        shown.contains("restore [2/2] KV_CONFIGDATA_tty"),
        "{shown:?}"
    );
    assert!(shown.contains("restored KV_CONFIGDATA_tty: "), "{shown:?}");
}

#[tokio::test]
async fn elsewhere_each_stream_gets_one_plain_summary_line() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    two_buckets(&client, "log").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let o = common::provisioner_command()
        .args(["--server", &url, "backup", "--lattice", "log"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("backed up KV_LATTICEDATA_log: "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("backed up KV_CONFIGDATA_log: "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("backup complete: 2 stream(s)"),
        "{stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains('\u{1b}'), "control codes in a log: {text:?}");
        assert!(!text.contains("[1/2]"), "a bar in a log: {text:?}");
    }
}
