//! JetStream's snapshot protocol for one stream, streamed to a file.
//!
//! No Rust client implements it, so it is spoken here with core messages
//! (`shared/spec/backup.md`):
//! 1. subscribe to a fresh inbox *before* asking (the server waits only ~2 s for interest);
//! 2. request `STREAM.SNAPSHOT.<stream>` naming that inbox; the reply carries the
//!    stream's `config` and `state`;
//! 3. chunks arrive on the inbox; those with a reply subject (`$JS.SNAPSHOT.ACK.…`) are
//!    acked at once with an empty message: the server stops after a few seconds without
//!    acks, and it keeps only a window of chunks in flight, which is what bounds our
//!    memory (each chunk is written to the file and dropped);
//! 4. an empty message ends it: status 204 (or, for a snapshot smaller than one chunk on
//!    nats-server 2.12, no status at all) is complete; any other status is a failure.
//!
//! The bytes are the server's own archive format; they are stored exactly as received and
//! checksummed on the way, never parsed.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::{describe, Api};
use super::manifest::hex;
use crate::jsapi::JsError;

/// Bytes per chunk the server sends (natscli's choice).
pub const CHUNK_SIZE: usize = 128 * 1024;

/// Bytes the server may have in flight unacked (`window_size`, nats-server 2.12.5+;
/// its default is 8 MiB). What is in flight sits in our connection's buffers, so this is
/// most of a backup's memory: 2 MiB keeps a 100 MiB backup near 23 MiB resident instead
/// of 35-40 MiB, at no cost in throughput on a local network (measured, see Benchmark).
pub const WINDOW_SIZE: usize = 2 * 1024 * 1024;

/// Whether a server of this version takes `window_size` (2.12.5 and later). Older
/// servers running with `jetstream { strict: true }` refuse fields they do not know.
pub fn knows_window_size(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= (2, 12, 5)
}

/// What one stream's snapshot produced.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The snapshot reply's `config` and `state`.
    pub config: Value,
    pub state: Value,
    /// Bytes written to the data file, and their SHA-256.
    pub data_bytes: u64,
    pub sha256: String,
}

/// Snapshots `stream` into `data_path` (created; it must not exist). `idle` is how long
/// the flow may pause before the snapshot is given up (the server stalls only when it is
/// gone or overloaded). `on_bytes` is told the size of each chunk received. The file is
/// written and mostly flushed on return, not yet durable: the caller flushes it with the
/// backup's other files, all at once.
///
/// Consumers are left out (`no_consumers`): the hosts' KV watchers are ephemeral and
/// wadm creates its durable consumers at start, so restoring old consumer positions
/// would only bring back stale ones.
pub async fn snapshot_to_file(
    api: &Api,
    stream: &str,
    data_path: &Path,
    idle: Duration,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Snapshot, String> {
    let client = api.client();
    let inbox = client.new_inbox();
    let mut chunks = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| format!("could not subscribe to the snapshot inbox: {e}"))?;
    let op = format!("STREAM.SNAPSHOT.{stream}");
    let mut request = json!({
        "deliver_subject": inbox,
        "no_consumers": true,
        "chunk_size": CHUNK_SIZE,
        "jsck": false,
    });
    if knows_window_size(&client.server_info().version) {
        request["window_size"] = json!(WINDOW_SIZE);
    }
    let mut reply = api.request(&op, Bytes::from(request.to_string())).await;
    // In a cluster being upgraded, the leader may be older than the server we talk to,
    // and refuse the field when it runs with `strict`: ask again without it.
    if let Err(JsError::Api { description, .. }) = &reply {
        if request.get("window_size").is_some() && description.contains("window_size") {
            request.as_object_mut().map(|r| r.remove("window_size"));
            reply = api.request(&op, Bytes::from(request.to_string())).await;
        }
    }
    let reply = reply.map_err(|e| {
        describe(
            &e,
            &format!("start the snapshot of {stream}"),
            &api.subject(&op),
            api.domain(),
        )
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(data_path)
        .map_err(|e| format!("cannot create {}: {e}", data_path.display()))?;
    // Hashing and writing run on blocking threads of their own behind short queues, so
    // that the receiving loop only acks: the server keeps sending while the disk and the
    // hash work, and the hash and the disk do not wait for each other.
    let depth = WRITE_QUEUE_BYTES / CHUNK_SIZE;
    let (to_write, chunks_to_write) = tokio::sync::mpsc::channel::<Bytes>(depth);
    let writer = tokio::task::spawn_blocking({
        let path = data_path.to_path_buf();
        move || write_chunks(file, &path, chunks_to_write)
    });
    let (to_hash, chunks_to_hash) = tokio::sync::mpsc::channel::<Bytes>(depth);
    let hasher = tokio::task::spawn_blocking(move || hash_chunks(chunks_to_hash));
    let queues = Queues { to_write, to_hash };
    let received = receive(client, &mut chunks, stream, idle, &queues, on_bytes).await;
    drop(queues);
    let _ = chunks.unsubscribe().await;
    let written = writer
        .await
        .map_err(|e| format!("the writer of {} failed: {e}", data_path.display()))?;
    let sha256 = hasher
        .await
        .map_err(|e| format!("the hasher of {} failed: {e}", data_path.display()))?;
    received?;
    let data_bytes = written?;
    Ok(Snapshot {
        config: reply.get("config").cloned().unwrap_or(Value::Null),
        state: reply.get("state").cloned().unwrap_or(Value::Null),
        data_bytes,
        sha256,
    })
}

/// Bytes queued for the writer (and as many for the hasher) before the receiving loop
/// waits.
const WRITE_QUEUE_BYTES: usize = 2 * 1024 * 1024;
/// The writer flushes to disk every so many bytes, so that the flush at the end (before
/// the folder is renamed) has little left to do.
const SYNC_EVERY: u64 = 16 * 1024 * 1024;

/// Where each received chunk goes.
struct Queues {
    to_write: tokio::sync::mpsc::Sender<Bytes>,
    to_hash: tokio::sync::mpsc::Sender<Bytes>,
}

/// Receives the chunks until the end message, acking each and queueing it for the
/// writer and the hasher.
async fn receive(
    client: &async_nats::Client,
    chunks: &mut async_nats::Subscriber,
    stream: &str,
    idle: Duration,
    queues: &Queues,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<(), String> {
    let mut received: u64 = 0;
    loop {
        let message = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => {
                return Err(format!(
                    "the snapshot of {stream} stalled: no data for {idle:?} after {received} \
                     bytes (the server or the connection went away); the backup is incomplete"
                ))
            }
            Ok(None) => {
                return Err(format!(
                    "the connection closed during the snapshot of {stream} after {received} \
                     bytes; the backup is incomplete"
                ))
            }
            Ok(Some(m)) => m,
        };
        if message.payload.is_empty() {
            return match message.status.map(|s| s.as_u16()) {
                // 204: complete. No status: the end of a snapshot smaller than one chunk.
                None | Some(204) => Ok(()),
                Some(code) => Err(format!(
                    "the server ended the snapshot of {stream} with status {code} ({}) after \
                     {received} bytes; the backup is incomplete",
                    message.description.as_deref().unwrap_or("no description")
                )),
            };
        }
        if let Some(code) = message.status.map(|s| s.as_u16()) {
            return Err(format!(
                "unexpected status {code} with data in the snapshot of {stream}; the backup is \
                 incomplete"
            ));
        }
        // Ack first: the server waits for acks before it sends more.
        if let Some(ack) = message.reply {
            client
                .publish(ack, Bytes::new())
                .await
                .map_err(|e| format!("could not ack a chunk of {stream}: {e}"))?;
        }
        let len = message.payload.len() as u64;
        let stopped = || format!("the writer of {stream}'s data file stopped");
        // The same bytes for both (a reference count, not a copy).
        queues
            .to_hash
            .send(message.payload.clone())
            .await
            .map_err(|_| stopped())?;
        queues
            .to_write
            .send(message.payload)
            .await
            .map_err(|_| stopped())?;
        received += len;
        on_bytes(len);
    }
}

/// The hasher: SHA-256 of every chunk, in order.
fn hash_chunks(mut chunks: tokio::sync::mpsc::Receiver<Bytes>) -> String {
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.blocking_recv() {
        hasher.update(&chunk);
    }
    hex(&hasher.finalize())
}

/// The writer: appends every chunk and returns the size once the file is written (it is
/// made durable with the backup's other files, see `write_streams`). Every
/// [`SYNC_EVERY`] bytes a flush of what is written so far starts on another thread,
/// through a second handle of the file, so the disk works while the chunks keep coming
/// and the last flush has little left to do. (A flush on the writer itself would stop
/// it, then the receiver, then the server's window.)
fn write_chunks(
    mut file: std::fs::File,
    path: &Path,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<u64, String> {
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut written: u64 = 0;
    let mut unsynced: u64 = 0;
    let mut flushing: Option<std::thread::JoinHandle<std::io::Result<()>>> = None;
    while let Some(chunk) = chunks.blocking_recv() {
        file.write_all(&chunk).map_err(failed)?;
        written += chunk.len() as u64;
        unsynced += chunk.len() as u64;
        let idle = flushing.as_ref().is_none_or(|f| f.is_finished());
        if unsynced >= SYNC_EVERY && idle {
            if let Some(done) = flushing.take() {
                done.join()
                    .map_err(|_| format!("flushing {} failed", path.display()))?
                    .map_err(failed)?;
            }
            let handle = file.try_clone().map_err(failed)?;
            flushing = Some(std::thread::spawn(move || handle.sync_data()));
            unsynced = 0;
        }
    }
    if let Some(done) = flushing.take() {
        done.join()
            .map_err(|_| format!("flushing {} failed", path.display()))?
            .map_err(failed)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_size_only_for_servers_that_know_it() {
        for (v, knows) in [
            ("2.12.8", true),
            ("2.12.5", true),
            ("2.14.0-beta.1", true),
            ("3.0.0", true),
            ("2.12.4", false),
            ("2.11.9", false),
            ("2.10.29", false),
            ("garbage", false),
        ] {
            assert_eq!(knows_window_size(v), knows, "{v}");
        }
    }
}
