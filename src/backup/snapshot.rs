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

/// Bytes per chunk the server sends (natscli's choice).
pub const CHUNK_SIZE: usize = 128 * 1024;

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
/// gone or overloaded). `on_bytes` is told the size of each chunk written.
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
    let request = json!({
        "deliver_subject": inbox,
        "no_consumers": true,
        "chunk_size": CHUNK_SIZE,
        "jsck": false,
    });
    let reply = api
        .request(&op, Bytes::from(request.to_string()))
        .await
        .map_err(|e| {
            describe(
                &e,
                &format!("start the snapshot of {stream}"),
                &api.subject(&op),
                api.domain(),
            )
        })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(data_path)
        .map_err(|e| format!("cannot create {}: {e}", data_path.display()))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    loop {
        let message = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => {
                return Err(format!(
                    "the snapshot of {stream} stalled: no data for {idle:?} after {written} \
                     bytes (the server or the connection went away); the backup is incomplete"
                ))
            }
            Ok(None) => {
                return Err(format!(
                    "the connection closed during the snapshot of {stream} after {written} \
                     bytes; the backup is incomplete"
                ))
            }
            Ok(Some(m)) => m,
        };
        if message.payload.is_empty() {
            match message.status.map(|s| s.as_u16()) {
                // 204: complete. No status: the end of a snapshot smaller than one chunk.
                None | Some(204) => break,
                Some(code) => {
                    return Err(format!(
                        "the server ended the snapshot of {stream} with status {code} ({}) \
                         after {written} bytes; the backup is incomplete",
                        message.description.as_deref().unwrap_or("no description")
                    ))
                }
            }
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
        hasher.update(&message.payload);
        file.write_all(&message.payload)
            .map_err(|e| format!("cannot write {}: {e}", data_path.display()))?;
        written += message.payload.len() as u64;
        on_bytes(message.payload.len() as u64);
    }
    let _ = chunks.unsubscribe().await;
    // Durable before the folder gets its final name: a complete-looking backup is complete.
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", data_path.display()))?;
    Ok(Snapshot {
        config: reply.get("config").cloned().unwrap_or(Value::Null),
        state: reply.get("state").cloned().unwrap_or(Value::Null),
        data_bytes: written,
        sha256: hex(&hasher.finalize()),
    })
}
