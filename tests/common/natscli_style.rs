//! A small, independent client for JetStream's snapshot and restore protocol, written the
//! way natscli speaks it (`nats stream backup` / `nats stream restore`): a 128 KiB chunk
//! size, every chunk with a reply subject acked, the end an empty message; restore in
//! 64 KiB requests, then an empty one. It writes and reads natscli's folder layout
//! (`<dir>/backup.json`, `<dir>/stream.tar.s2`). The tests use it to check that the
//! provisioner interoperates with natscli's format, and the bench uses it as the floor:
//! nothing in it comes from the provisioner's code.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// `nats stream backup <stream> <dir>`.
pub async fn backup(client: &async_nats::Client, api: &str, stream: &str, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create backup dir");
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.expect("subscribe");
    let req = json!({"deliver_subject": inbox, "no_consumers": true, "chunk_size": 128 * 1024, "jsck": false});
    let reply = client
        .request(
            format!("{api}.STREAM.SNAPSHOT.{stream}"),
            req.to_string().into(),
        )
        .await
        .expect("snapshot request");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("snapshot reply JSON");
    assert!(reply.get("error").is_none(), "snapshot refused: {reply}");
    let mut data = std::io::BufWriter::new(
        std::fs::File::create(dir.join("stream.tar.s2")).expect("create data file"),
    );
    loop {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("snapshot chunk in time")
            .expect("subscription open");
        if m.payload.is_empty() {
            let status = m.status.map(|s| s.as_u16());
            assert!(
                status.is_none() || status == Some(204),
                "snapshot failed: {status:?} {:?}",
                m.description
            );
            break;
        }
        if let Some(reply) = m.reply.clone() {
            client.publish(reply, Bytes::new()).await.expect("ack");
        }
        std::io::Write::write_all(&mut data, &m.payload).expect("write chunk");
    }
    std::io::Write::flush(&mut data).expect("flush");
    let meta = json!({"config": reply["config"], "state": reply["state"]});
    std::fs::write(dir.join("backup.json"), meta.to_string()).expect("write backup.json");
}

/// `nats stream restore <dir>`; returns the create answer.
pub async fn restore(client: &async_nats::Client, api: &str, dir: &Path) -> Value {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).expect("read backup.json"))
            .expect("backup.json");
    let stream = meta["config"]["name"]
        .as_str()
        .expect("stream name")
        .to_string();
    let reply = client
        .request(
            format!("{api}.STREAM.RESTORE.{stream}"),
            meta.to_string().into(),
        )
        .await
        .expect("restore request");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("restore reply JSON");
    let deliver = reply["deliver_subject"]
        .as_str()
        .unwrap_or_else(|| panic!("restore refused: {reply}"))
        .to_string();
    let data = std::fs::read(dir.join("stream.tar.s2")).expect("read data");
    for chunk in data.chunks(64 * 1024) {
        let ack = tokio::time::timeout(
            WAIT,
            client.request(deliver.clone(), Bytes::copy_from_slice(chunk)),
        )
        .await
        .expect("chunk ack in time")
        .expect("chunk ack");
        assert!(ack.payload.is_empty(), "chunk refused: {:?}", ack.payload);
    }
    let done = tokio::time::timeout(WAIT, client.request(deliver, Bytes::new()))
        .await
        .expect("restore answer in time")
        .expect("restore answer");
    let done: Value = serde_json::from_slice(&done.payload).expect("restore answer JSON");
    assert!(done.get("error").is_none(), "restore failed: {done}");
    done
}
