//! Integration tests of the foundation against a real nats-server: the service run
//! in-process (`common::provisioner`) and the real binary (`plan`, `apply`, `serve`).
//!
//! What is proven here:
//! - every created resource stores exactly the catalog's config, and the spec's values;
//! - the catalog config is the one host 1.9 (async-nats 0.39 `create_key_value`) and
//!   wadm 0.21 (typed `stream::Config`s) create: the server accepts either create on top
//!   of the other as identical, and both store the same normalized config;
//! - repeating a request changes nothing; drift is reported and left untouched;
//! - dry runs create nothing; bad input is refused with ADR-32 errors and creates nothing;
//! - JetStream off is a 503 that says what to do; concurrent requests create each stream
//!   once; `$SRV` discovery validates against the official schemas; shutdown drains.

#[path = "../common/mod.rs"]
mod common;

mod apps;
mod discovery;
mod lifecycle;
mod repeat;
mod requests;
mod stored;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream};
use futures::future::join_all;
use futures::StreamExt;
use serde_json::{json, Value};

use common::provisioner;
use common::reply::{call, client, Reply, REPLY_TIMEOUT};
use common::schema::{assert_valid, compile_schema};
use common::{stream_names, NatsServer, ServerOptions};
use wasmcloud_provisioner::catalog::{self, Desired};
use wasmcloud_provisioner::endpoints::ENDPOINTS;
use wasmcloud_provisioner::settings::Settings;

const NANOS: u64 = 1_000_000_000;

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// JetStream, read directly (raw API requests, independent of the code under test)
// ---------------------------------------------------------------------------

async fn js_api(client: &async_nats::Client, subject: &str, body: &Value) -> Value {
    let payload = serde_json::to_vec(body).expect("serialize");
    let message = tokio::time::timeout(
        REPLY_TIMEOUT,
        client.request(subject.to_string(), payload.into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: no JetStream reply"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&message.payload).expect("JetStream replies JSON")
}

/// The full `STREAM.INFO` answer (config, created, state), or `None` when not found.
async fn stream_info(client: &async_nats::Client, stream: &str) -> Option<Value> {
    let info = js_api(client, &format!("$JS.API.STREAM.INFO.{stream}"), &json!({})).await;
    if info["error"]["err_code"] == 10059 {
        return None;
    }
    assert!(info.get("error").is_none(), "STREAM.INFO {stream}: {info}");
    Some(info)
}

async fn stored_config(client: &async_nats::Client, stream: &str) -> Value {
    stream_info(client, stream)
        .await
        .unwrap_or_else(|| panic!("stream {stream} does not exist"))["config"]
        .clone()
}

/// The account's stream count from `$JS.API.INFO`.
async fn account_stream_count(client: &async_nats::Client) -> u64 {
    let info = js_api(client, "$JS.API.INFO", &json!({})).await;
    info["streams"]
        .as_u64()
        .unwrap_or_else(|| panic!("account info without streams: {info}"))
}

/// `STREAM.CREATE` with a raw config; returns the answer (success or error).
async fn raw_create(client: &async_nats::Client, config: &Value) -> Value {
    let name = config["name"].as_str().expect("config has a name");
    js_api(client, &format!("$JS.API.STREAM.CREATE.{name}"), config).await
}

/// Publishes with a JetStream ack, so the message is stored when this returns.
async fn publish_stored(client: &async_nats::Client, subject: &str) {
    let js = jetstream::new(client.clone());
    js.publish(subject.to_string(), "payload".into())
        .await
        .unwrap_or_else(|e| panic!("publish {subject}: {e}"))
        .await
        .unwrap_or_else(|e| panic!("ack {subject}: {e}"));
}

/// Polls until `check` holds; panics with `what` after a generous deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what}: still not true after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// The catalog's expectations
// ---------------------------------------------------------------------------

fn lattice_desired(lattice: &str) -> Vec<Desired> {
    catalog::lattice_resources(lattice, &Settings::default())
}

fn wadm_desired(multitenant: bool) -> Vec<Desired> {
    catalog::wadm_resources(multitenant, &Settings::default())
}

/// For every key of the catalog's desired config, the stored value is equal.
fn assert_stored_is_desired(stored: &Value, desired: &Desired) {
    let want = desired
        .config
        .as_object()
        .expect("desired config is an object");
    let mut wrong = Vec::new();
    for (field, value) in want {
        let have = stored.get(field).cloned().unwrap_or(Value::Null);
        if &have != value {
            wrong.push(format!("{field}: want {value}, stored {have}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} stores another config than the catalog's:\n  {}\nstored: {stored}",
        desired.stream,
        wrong.join("\n  ")
    );
}

/// Field-by-field differences of two whole stored configs (every key of either side).
fn config_differences(a: &Value, b: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let a = a.as_object().unwrap_or(&empty);
    let b = b.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: app {} / catalog {}",
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

fn description_is_empty(config: &Value) -> bool {
    config.get("description").is_none_or(|d| d == "")
}

fn subjects_are_empty(config: &Value) -> bool {
    config
        .get("subjects")
        .is_none_or(|s| s.is_null() || s == &json!([]))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn snapshot(nc: &async_nats::Client) -> BTreeMap<String, (Value, Value)> {
    let mut all = BTreeMap::new();
    for name in stream_names(nc).await {
        let info = stream_info(nc, &name).await.expect("listed");
        all.insert(name, (info["config"].clone(), info["created"].clone()));
    }
    all
}

fn desired_config(stream: &str, multitenant: bool) -> Value {
    lattice_desired("drift")
        .into_iter()
        .chain(wadm_desired(multitenant))
        .find(|d| d.stream == stream)
        .unwrap_or_else(|| panic!("{stream} is not in the catalog"))
        .config
}

/// Every reply to a discovery subject, for a short while (several may answer `$SRV.PING`).
async fn discovery(nc: &async_nats::Client, subject: &str) -> Vec<Value> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.expect("subscribe");
    nc.publish_with_reply(subject.to_string(), inbox, "".into())
        .await
        .expect("publish");
    let mut replies = Vec::new();
    let first = tokio::time::timeout(REPLY_TIMEOUT, sub.next())
        .await
        .unwrap_or_else(|_| panic!("{subject}: no reply"))
        .expect("subscription open");
    replies.push(serde_json::from_slice(&first.payload).expect("JSON"));
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        replies.push(serde_json::from_slice(&m.payload).expect("JSON"));
    }
    replies
}
