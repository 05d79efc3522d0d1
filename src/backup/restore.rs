//! JetStream's restore protocol for one stream, streamed from a file.
//!
//! (`shared/spec/backup.md`) Request `STREAM.RESTORE.<stream>` with `backup.json`; the
//! reply names a `deliver_subject`. Every chunk of the data file goes there as a request
//! the server acks with an empty message, so at most one chunk is in flight and memory
//! stays at one chunk. An empty request then ends the upload, and its reply is the
//! stream-create answer. The server refuses to restore over an existing stream (10130)
//! and discards an upload that stalls, so a restore that stops half-way leaves nothing.
//!
//! The data file is hashed again while it is sent: if it changed since `restore`
//! checked it, its last chunk is withheld, so the server never has the whole archive.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::api::{describe, parse_answer, Api};
use super::manifest::hex;

/// Bytes per restore chunk (natscli's choice).
pub const CHUNK_SIZE: usize = 64 * 1024;

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
    let mut file = std::fs::File::open(data_path)
        .map_err(|e| format!("cannot read {}: {e}", data_path.display()))?;
    let mut hasher = Sha256::new();
    let mut sent: u64 = 0;
    let chunk_timeout = api.timeout();
    // One chunk is read ahead, so that the last one is still in hand when the checksum
    // of the whole file is known: a file that changed since it was checked is never sent
    // whole. (The server does not need the final empty message to apply a complete
    // archive, so withholding that would not be enough.)
    let read_chunk = |file: &mut std::fs::File| -> Result<Bytes, String> {
        let mut buf = vec![0u8; CHUNK_SIZE];
        let n = read_full(file, &mut buf)
            .map_err(|e| format!("cannot read {}: {e}", data_path.display()))?;
        buf.truncate(n);
        Ok(Bytes::from(buf))
    };
    let mut next = read_chunk(&mut file)?;
    while !next.is_empty() {
        let chunk = next;
        hasher.update(&chunk);
        next = read_chunk(&mut file)?;
        if next.is_empty() {
            let sum = hex(&hasher.clone().finalize());
            if let Some(want) = expected_sha256 {
                if !sum.eq_ignore_ascii_case(want) {
                    return Err(format!(
                        "{} changed after it was checked (SHA-256 {sum}, expected {want}); \
                         its last chunk was not sent, so the server cannot complete the \
                         restore",
                        data_path.display()
                    ));
                }
            }
        }
        let n = chunk.len() as u64;
        let ack = tokio::time::timeout(chunk_timeout, client.request(deliver.clone(), chunk))
            .await
            .map_err(|_| {
                format!(
                    "the server did not ack a chunk of {stream} within {chunk_timeout:?} after \
                     {sent} bytes; check with `nats stream info {stream}` whether it exists"
                )
            })?
            .map_err(|e| format!("could not send a chunk of {stream}: {e}"))?;
        if !ack.payload.is_empty() {
            parse_answer(&ack.payload)
                .map_err(|e| describe(&e, &format!("restore {stream}"), &deliver, api.domain()))?;
        }
        sent += n;
        on_bytes(n);
    }
    // The server applies the whole archive before it answers: allow for its size.
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

/// Reads until `buf` is full or the file ends, so every chunk but the last is full size.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
