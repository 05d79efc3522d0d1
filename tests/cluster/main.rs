//! Production conditions on real nats-server processes: a 3-node JetStream cluster with
//! replicas, placement, node failures, a restart of the provisioner's own server, two
//! instances under a burst, SIGTERM during a burst, and a volley of invalid requests.
//!
//! Every provisioner here runs as `serve` runs it: the library's own connect (which
//! clears the cache on reconnect), the advisory watcher and `service::serve`, in this
//! process; the SIGTERM and config-file tests run the real binary.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod faults;
mod instances;
mod placement;
mod replicas;

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::{stream, FutureExt, StreamExt};
use serde_json::{json, Value};

use common::provisioner::{wait_discoverable, Options, RunningService};
use common::reply::{call, Reply};
use common::{eventually, ClusterOptions, NatsCluster, NatsServer};
use wasmcloud_provisioner::catalog::{self, Desired};
use wasmcloud_provisioner::settings::{Placement, Settings};
use wasmcloud_provisioner::subjects::SERVICE_NAME;

/// `serve`'s default `--js-timeout`: the fault tests use it, since how the service answers
/// a silent JetStream is what they check.
const DEFAULT_JS_TIMEOUT: Duration = Duration::from_secs(5);
/// The `--js-timeout` of the tests that expect a create to succeed. A new R3 stream answers
/// its create once its Raft group has a leader; when the first campaign misfires (seen on
/// a loaded 2-core runner: one stream's leader 5.5 s after its siblings'), nats-server
/// elects only after an election timeout of 4 to 9 s. These tests check outcomes, not
/// speed (`make bench` measures that), so they allow for one such election.
const JS_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a test waits for any one reply before calling it lost. Far above what any
/// reply takes; a request that hits it is a failure, not a slow success.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The machine these tests share. The heaviest ones (thousands of messages or requests)
/// hold it alone (`write`), every other test shares it (`read`): on a 2-core runner a heavy
/// test's load next to another test's cluster is what sends R3 elections down the slow
/// path above, and replies past any timeout.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

// ---------------------------------------------------------------------------
// A provisioner in this process
// ---------------------------------------------------------------------------

/// One provisioner, assembled as `wasmcloud-provisioner serve` is (`common::provisioner`),
/// with the [`JS_TIMEOUT`] of the tests that expect creates to succeed.
async fn start_instance(servers: &str, settings: Settings) -> RunningService {
    start_instance_with_js_timeout(servers, settings, JS_TIMEOUT).await
}

async fn start_instance_with_js_timeout(
    servers: &str,
    settings: Settings,
    js_timeout: Duration,
) -> RunningService {
    Options::new()
        .settings(settings)
        .js_timeout(js_timeout)
        .spawn(servers)
        .await
}

// ---------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------

async fn lattice(client: &async_nats::Client, body: Value) -> Reply {
    call(client, "wasmcloud.provision.lattice", body.to_string()).await
}

// ---------------------------------------------------------------------------
// What JetStream stores
// ---------------------------------------------------------------------------

/// `STREAM.INFO` as the server answers it (config, state, cluster), or `None`.
async fn stream_info(client: &async_nats::Client, stream: &str) -> Option<Value> {
    let m = client
        .request(format!("$JS.API.STREAM.INFO.{stream}"), Bytes::new())
        .await
        .expect("stream info request");
    let v: Value = serde_json::from_slice(&m.payload).expect("stream info JSON");
    if v["error"]["err_code"] == 10059 {
        return None;
    }
    assert!(v.get("error").is_none(), "STREAM.INFO {stream}: {v}");
    Some(v)
}

/// Number of streams in the account.
async fn stream_count(client: &async_nats::Client) -> u64 {
    let m = client
        .request("$JS.API.INFO", Bytes::new())
        .await
        .expect("account info request");
    let v: Value = serde_json::from_slice(&m.payload).expect("account info JSON");
    v["streams"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

/// The stored config holds every field of the catalog's create payload with exactly the
/// catalog's value (sources compared by name and transforms).
fn assert_catalog_config(stored: &Value, desired: &Desired) {
    let want = desired
        .config
        .as_object()
        .expect("catalog config is an object");
    for (field, value) in want {
        let have = &stored["config"][field];
        if field == "sources" {
            let key = |v: &Value| -> Vec<(String, Value)> {
                let mut k: Vec<_> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or("").to_string(),
                            s["subject_transforms"].clone(),
                        )
                    })
                    .collect();
                k.sort_by(|a, b| a.0.cmp(&b.0));
                k
            };
            assert_eq!(key(have), key(value), "{}: sources", desired.stream);
        } else {
            assert_eq!(have, value, "{}: field {field}", desired.stream);
        }
    }
}

/// Peers of a clustered stream: its leader and every other replica.
fn peers(info: &Value) -> usize {
    let replicas = info["cluster"]["replicas"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let leader = usize::from(
        info["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty()),
    );
    replicas + leader
}

/// Waits until the cluster can place an R3 stream. A cluster that just became healthy
/// may not yet know its peers' resources, and then refuses placement with "peer offline"
/// (the provisioner answers that with a 503 saying to retry). Creates and deletes a probe.
async fn wait_placeable(client: &async_nats::Client) {
    let probe = json!({ "name": "PLACEMENT_PROBE", "subjects": ["placement.probe"], "num_replicas": 3, "storage": "memory" });
    eventually(
        "the cluster places R3 streams",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let probe = probe.clone();
            async move {
                let m = client
                    .request(
                        "$JS.API.STREAM.CREATE.PLACEMENT_PROBE",
                        probe.to_string().into(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let v: Value = serde_json::from_slice(&m.payload).map_err(|e| e.to_string())?;
                match v.get("error") {
                    Some(e) => Err(e.to_string()),
                    None => Ok(()),
                }
            }
        },
    )
    .await;
    let m = client
        .request("$JS.API.STREAM.DELETE.PLACEMENT_PROBE", Bytes::new())
        .await
        .expect("delete the probe");
    let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
    assert_eq!(v["success"], true, "{v}");
}

fn r3() -> Settings {
    Settings::default().with_replicas(3)
}
