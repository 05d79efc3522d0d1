//! JetStream's restore protocol for one stream, streamed from a file.
//!
//! (`shared/spec/backup.md`) Request `STREAM.RESTORE.<stream>` with `backup.json`; the
//! reply names a `deliver_subject`. Every chunk of the data file goes there as a request
//! the server acks with an empty message; an empty request then ends the upload, and its
//! reply is the stream-create answer. The server refuses to restore over an existing
//! stream (10130) and discards an upload that stalls or that it cannot read, so a restore
//! that stops half-way leaves nothing.
//!
//! The chunks are pipelined: up to [`WINDOW`] are sent before their acks arrive. The
//! server handles a connection's messages in order and writes each chunk into the
//! archive it unpacks before it acks it (nats-server `processStreamRestore`), so the
//! acks come back in order and the upload never waits a round trip per chunk, as a
//! sequential client (natscli) does. Memory stays at the window plus a chunk or two read
//! ahead.
//!
//! The data file is read and hashed again on a blocking thread while it is sent: if it
//! changed since `restore` checked it, its last chunk is withheld, so the server never
//! has the whole archive.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::api::{describe, parse_answer, Api};
use super::manifest::hex;

/// Bytes per restore chunk. natscli sends 64 KiB; the server takes any size up to its
/// `max_payload` (the chunk is cut to that), and each chunk costs a message and an ack.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Chunks sent before their acks arrive (see the module doc).
pub const WINDOW: usize = 4;

/// Chunks read (and hashed) ahead of the sender.
const READ_AHEAD: usize = 2;

/// JetStream error: a stream of that name exists, the server will not restore over it.
pub const STREAM_EXISTS_ON_RESTORE: u64 = 10130;

/// Restores `stream` from `metadata` (`backup.json`, possibly with replicas changed) and
/// `data_path`. `expected_sha256`, when known, must match the bytes sent. Returns the
/// stream-create answer (the restored stream's info).
pub async fn restore_from_file(
    api: &Api,
    stream: &str,
    metadata: &Value,
    data_path: &Path,
    expected_sha256: Option<&str>,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Value, String> {
    let client = api.client();
    // Opened before the server is asked, so a missing file starts nothing.
    let file = std::fs::File::open(data_path)
        .map_err(|e| format!("cannot read {}: {e}", data_path.display()))?;
    let op = format!("STREAM.RESTORE.{stream}");
    let reply = api
        .request(&op, Bytes::from(metadata.to_string()))
        .await
        .map_err(|e| {
            let mut m = describe(
                &e,
                &format!("start the restore of {stream}"),
                &api.subject(&op),
                api.domain(),
            );
            if e.err_code() == Some(STREAM_EXISTS_ON_RESTORE) {
                m.push_str(
                    ": the stream was created after restore checked (a host or wadm starting?); \
                     stop them and run restore again",
                );
            }
            m
        })?;
    let deliver = reply["deliver_subject"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("the restore answer for {stream} names no deliver_subject"))?
        .to_string();
    let max_payload = client.server_info().max_payload;
    let chunk_size = if max_payload > 0 {
        CHUNK_SIZE.min(max_payload)
    } else {
        CHUNK_SIZE
    };
    let (chunks, mut to_send) = mpsc::channel(READ_AHEAD);
    let reader = tokio::task::spawn_blocking({
        let path = data_path.to_path_buf();
        let expected = expected_sha256.map(str::to_string);
        move || read_chunks(file, &path, chunk_size, expected.as_deref(), &chunks)
    });
    let upload = Upload {
        client,
        stream,
        deliver: &deliver,
        domain: api.domain(),
        timeout: api.timeout(),
    };
    let sent = upload.send_chunks(&mut to_send, on_bytes).await;
    drop(to_send);
    // The reader ends once the channel is closed; it has nothing more to say.
    let _ = reader.await;
    let sent = sent?;
    // The server applies the whole archive before it answers: allow for its size.
    let chunk_timeout = api.timeout();
    let finish_timeout =
        chunk_timeout.max(Duration::from_secs(60)) + Duration::from_secs(sent / (10 * 1024 * 1024));
    let done = tokio::time::timeout(finish_timeout, client.request(deliver, Bytes::new()))
        .await
        .map_err(|_| {
            format!(
                "the server did not confirm the restore of {stream} within {finish_timeout:?}; \
                 check with `plan` or `nats stream info {stream}` whether it exists"
            )
        })?
        .map_err(|e| format!("could not finish the restore of {stream}: {e}"))?;
    parse_answer(&done.payload).map_err(|e| {
        let mut m = describe(
            &e,
            &format!("restore {stream}"),
            &api.subject(&op),
            api.domain(),
        );
        if e.err_code() == Some(crate::jsapi::codes::REPLICAS_NOT_SUPPORTED) {
            m.push_str(": the server is not clustered; run restore with --replicas 1");
        }
        m
    })
}

/// One stream's upload: where the chunks go and how long an ack may take.
struct Upload<'a> {
    client: &'a async_nats::Client,
    stream: &'a str,
    deliver: &'a str,
    domain: Option<&'a str>,
    timeout: Duration,
}

impl Upload<'_> {
    /// Sends every chunk the reader gives, at most [`WINDOW`] unacked, each with its own
    /// reply subject (`<inbox>.<index>`) so that an ack is matched to its chunk. Returns
    /// the bytes sent once all are acked; stops at the first refusal, missing ack or
    /// reader error (the server then discards the upload: the end is never sent).
    async fn send_chunks(
        &self,
        chunks: &mut mpsc::Receiver<Result<Bytes, String>>,
        on_bytes: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, String> {
        let stream = self.stream;
        let inbox = self.client.new_inbox();
        let mut acks = self
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| format!("could not subscribe for the acks of {stream}'s upload: {e}"))?;
        // (index, size) of each chunk sent and not yet acked, oldest first.
        let mut unacked: VecDeque<(u64, u64)> = VecDeque::with_capacity(WINDOW);
        let mut next_index: u64 = 0;
        let mut sent: u64 = 0;
        let mut read_all = false;
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        let result = loop {
            if read_all && unacked.is_empty() {
                break Ok(sent);
            }
            let room = !read_all && unacked.len() < WINDOW;
            tokio::select! {
                biased;
                ack = acks.next(), if !unacked.is_empty() => {
                    let Some(ack) = ack else {
                        break Err(format!(
                            "the connection closed during the restore of {stream} after {sent} \
                             bytes; check with `nats stream info {stream}` whether it exists"
                        ));
                    };
                    let expected = unacked.front().map(|(i, _)| *i);
                    if let Err(e) = self.check_ack(&ack, &inbox, expected, sent) {
                        break Err(e);
                    }
                    if let Some((_, n)) = unacked.pop_front() {
                        sent += n;
                        on_bytes(n);
                    }
                    deadline = tokio::time::Instant::now() + self.timeout;
                }
                chunk = chunks.recv(), if room => match chunk {
                    None => read_all = true,
                    Some(Err(e)) => break Err(e),
                    Some(Ok(chunk)) => {
                        let n = chunk.len() as u64;
                        let reply = format!("{inbox}.{next_index}");
                        if let Err(e) = self
                            .client
                            .publish_with_reply(self.deliver.to_string(), reply, chunk)
                            .await
                        {
                            break Err(format!("could not send a chunk of {stream}: {e}"));
                        }
                        if unacked.is_empty() {
                            deadline = tokio::time::Instant::now() + self.timeout;
                        }
                        unacked.push_back((next_index, n));
                        next_index += 1;
                    }
                },
                _ = tokio::time::sleep_until(deadline), if !unacked.is_empty() => {
                    break Err(format!(
                        "the server did not ack a chunk of {stream} within {:?} after {sent} \
                         bytes; check with `nats stream info {stream}` whether it exists",
                        self.timeout
                    ));
                }
            }
        };
        let _ = acks.unsubscribe().await;
        result
    }

    /// An ack is an empty message on the reply subject of the oldest chunk in flight;
    /// anything else (an error answer, a status such as 503 when the server dropped the
    /// upload, an ack out of order) stops the upload.
    fn check_ack(
        &self,
        ack: &async_nats::Message,
        inbox: &str,
        expected: Option<u64>,
        sent: u64,
    ) -> Result<(), String> {
        let stream = self.stream;
        if let Some(status) = ack.status {
            return Err(format!(
                "the server stopped taking the restore of {stream} after {sent} bytes (status \
                 {}: {}); nothing was restored",
                status.as_u16(),
                ack.description.as_deref().unwrap_or("no description")
            ));
        }
        if !ack.payload.is_empty() {
            parse_answer(&ack.payload).map_err(|e| {
                describe(&e, &format!("restore {stream}"), self.deliver, self.domain)
            })?;
        }
        let index = ack
            .subject
            .as_str()
            .strip_prefix(inbox)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|i| i.parse::<u64>().ok());
        if index.is_none() || index != expected {
            return Err(format!(
                "the server acked chunk {index:?} of {stream} while chunk {expected:?} was the \
                 oldest unacked; the upload is out of order, so it was stopped"
            ));
        }
        Ok(())
    }
}

/// The reader (a blocking thread): reads `file` in `chunk_size` pieces, hashes them and
/// hands them to the sender. One chunk is read ahead, so that the last one is still in
/// hand when the checksum of the whole file is known: a file that changed since it was
/// checked is never sent whole. (The server does not need the final empty message to
/// apply a complete archive, so withholding that would not be enough.)
fn read_chunks(
    mut file: std::fs::File,
    path: &Path,
    chunk_size: usize,
    expected_sha256: Option<&str>,
    chunks: &mpsc::Sender<Result<Bytes, String>>,
) {
    if let Err(e) = read_and_check(&mut file, path, chunk_size, expected_sha256, chunks) {
        let _ = chunks.blocking_send(Err(e));
    }
}

fn read_and_check(
    file: &mut std::fs::File,
    path: &Path,
    chunk_size: usize,
    expected_sha256: Option<&str>,
    chunks: &mpsc::Sender<Result<Bytes, String>>,
) -> Result<(), String> {
    // Every chunk but the last is full size; read into fresh capacity, not zeroed first.
    let mut read_chunk = || -> Result<Bytes, String> {
        let mut buf = Vec::with_capacity(chunk_size);
        file.by_ref()
            .take(chunk_size as u64)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Bytes::from(buf))
    };
    let mut hasher = Sha256::new();
    let mut next = read_chunk()?;
    while !next.is_empty() {
        let chunk = next;
        hasher.update(&chunk);
        next = read_chunk()?;
        if next.is_empty() {
            let sum = hex(&hasher.clone().finalize());
            if let Some(want) = expected_sha256 {
                if !sum.eq_ignore_ascii_case(want) {
                    return Err(format!(
                        "{} changed after it was checked (SHA-256 {sum}, expected {want}); \
                         its last chunk was not sent, so the server cannot complete the \
                         restore",
                        path.display()
                    ));
                }
            }
        }
        if chunks.blocking_send(Ok(chunk)).is_err() {
            // The sender stopped (a refusal or a missing ack): nothing more to do.
            return Ok(());
        }
    }
    Ok(())
}
