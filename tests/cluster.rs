//! Production conditions on real nats-server processes: a 3-node JetStream cluster with
//! replicas, placement, node failures, a restart of the provisioner's own server, two
//! instances under a burst, SIGTERM during a burst, and a volley of invalid requests.
//!
//! Every provisioner here runs as `serve` runs it: the library's own connect (which
//! clears the cache on reconnect), the advisory watcher and `service::serve`, in this
//! process; the SIGTERM and config-file tests run the real binary.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::{stream, FutureExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use common::{eventually, ClusterOptions, NatsCluster, NatsServer};
use wasmcloud_provisioner::catalog::{self, Desired};
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::reconcile::KnownStreams;
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::service::SERVICE_NAME;
use wasmcloud_provisioner::settings::{Placement, Settings};

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

/// One provisioner, assembled by `runtime::ServiceSetup` as `wasmcloud-provisioner serve` is.
struct Instance {
    known: Arc<KnownStreams>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Instance {
    async fn start(servers: &str, settings: Settings) -> Instance {
        Instance::start_with_js_timeout(servers, settings, JS_TIMEOUT).await
    }

    async fn start_with_js_timeout(
        servers: &str,
        settings: Settings,
        js_timeout: Duration,
    ) -> Instance {
        // Flags only: no config file, no natscli context from this machine.
        let connect = ConnectArgs {
            server: Some(servers.to_string()),
            ..Default::default()
        };
        let mut resolved = common::resolved(&connect);
        resolved.settings = settings;
        let service = ServiceSetup {
            js_timeout,
            ..ServiceSetup::new(resolved)
        }
        .connect()
        .await
        .expect("the provisioner connects");
        let known = service.known.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service.serve(async {
            let _ = stopped.await;
        }));
        Instance {
            known,
            stop: Some(stop),
            task,
        }
    }

    fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(REPLY_TIMEOUT, &mut self.task)
            .await
            .expect("the service stops");
        result
            .expect("the service task did not panic")
            .expect("the service stopped cleanly");
    }
}

/// The ids of the provisioner instances that answer `$SRV.PING` within `window`.
async fn ping_ids(client: &async_nats::Client, window: Duration) -> HashSet<String> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(format!("$SRV.PING.{SERVICE_NAME}"), inbox, Bytes::new())
        .await
        .expect("publish ping");
    let mut ids = HashSet::new();
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return ids,
            next = replies.next() => match next {
                Some(m) => {
                    let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                    if v["name"] == SERVICE_NAME {
                        if let Some(id) = v["id"].as_str() {
                            ids.insert(id.to_string());
                        }
                    }
                }
                None => return ids,
            }
        }
    }
}

/// Waits until `n` instances are discoverable and each lists every endpoint.
async fn wait_discoverable(client: &async_nats::Client, n: usize) -> HashSet<String> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let ids = ping_ids(client, Duration::from_millis(300)).await;
        if ids.len() >= n {
            let mut complete = 0;
            for id in &ids {
                let info = client
                    .request(format!("$SRV.INFO.{SERVICE_NAME}.{id}"), Bytes::new())
                    .await;
                if let Ok(m) = info {
                    let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                    let endpoints = v["endpoints"].as_array().map(Vec::len).unwrap_or(0);
                    if endpoints == wasmcloud_provisioner::endpoints::ENDPOINTS.len() {
                        complete += 1;
                    }
                }
            }
            if complete >= n {
                return ids;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{n} provisioner instance(s) not discoverable via $SRV.PING in time (saw {ids:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------

/// A service reply: the ADR-32 code (200 when there is no error header) and the body.
#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    body: Value,
    /// The `Nats-Service-Error` header.
    error_header: Option<String>,
    took: Duration,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// The per-resource outcomes, keyed by stream name.
    fn resources(&self) -> BTreeMap<String, Value> {
        self.body["resources"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|r| {
                        (
                            r["stream"].as_str().unwrap_or_default().to_string(),
                            r.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Panics unless this is a well-formed ADR-32 error reply with a JSON body.
    fn assert_well_formed_error(&self, context: &str) {
        assert!(self.code >= 400, "{context}: not an error: {self:?}");
        assert_eq!(
            self.body["error"]["code"].as_u64(),
            Some(u64::from(self.code)),
            "{context}: body code differs from the header: {self:?}"
        );
        assert!(
            !self.message().is_empty(),
            "{context}: empty message: {self:?}"
        );
        let header = self.error_header.as_deref().unwrap_or_default();
        assert!(
            !header.is_empty() && !header.contains('\n') && !header.contains('\r'),
            "{context}: bad Nats-Service-Error header: {self:?}"
        );
    }
}

/// Sends one request. Panics if no reply comes (a lost request is always a failure here).
async fn call(client: &async_nats::Client, subject: &str, body: impl Into<Bytes>) -> Reply {
    try_call(client, subject, body)
        .await
        .unwrap_or_else(|e| panic!("request to {subject}: {e}"))
}

async fn try_call(
    client: &async_nats::Client,
    subject: &str,
    body: impl Into<Bytes>,
) -> Result<Reply, async_nats::RequestError> {
    let started = Instant::now();
    let message = client
        .send_request(
            subject.to_string(),
            async_nats::Request::new()
                .payload(body.into())
                .timeout(Some(REPLY_TIMEOUT)),
        )
        .await?;
    Ok(to_reply(message, started.elapsed()))
}

fn to_reply(message: async_nats::Message, took: Duration) -> Reply {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let code = header(async_nats::service::NATS_SERVICE_ERROR_CODE)
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    Reply {
        code,
        body: serde_json::from_slice(&message.payload)
            .unwrap_or_else(|_| json!({ "unparsable": String::from_utf8_lossy(&message.payload) })),
        error_header: header(async_nats::service::NATS_SERVICE_ERROR),
        took,
    }
}

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

// ---------------------------------------------------------------------------
// Replicas
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_created_at_r3_with_the_exact_catalog_settings() {
    let _machine = MACHINE.read().await;
    let cluster = NatsCluster::start(3);
    let instance = Instance::start(&cluster.client_url_all(), r3()).await;
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;
    wait_discoverable(&client, 1).await;

    let reply = lattice(&client, json!({ "lattice": "prod" })).await;
    assert_eq!(reply.code, 200, "{reply:?}");
    let wadm = call(&client, "wasmcloud.provision.wadm", "").await;
    assert_eq!(wadm.code, 200, "{wadm:?}");
    for r in reply.resources().values().chain(wadm.resources().values()) {
        assert_eq!(r["action"], "created", "{r}");
        assert_eq!(r["replicas"], 3, "{r}");
        assert_eq!(r["desired_replicas"], 3, "{r}");
    }
    assert_eq!(reply.resources().len(), 2);
    assert_eq!(wadm.resources().len(), 6 + 2);

    let settings = r3();
    let mut desired = catalog::lattice_resources("prod", &settings);
    desired.extend(catalog::wadm_resources(false, &settings));
    for d in &desired {
        let info = stream_info(&client, &d.stream)
            .await
            .unwrap_or_else(|| panic!("{} was not created", d.stream));
        assert_eq!(info["config"]["num_replicas"], 3, "{}", d.stream);
        assert_catalog_config(&info, d);
        assert_eq!(peers(&info), 3, "{}: {}", d.stream, info["cluster"]);
    }

    // Asking again changes nothing.
    let again = lattice(&client, json!({ "lattice": "prod" })).await;
    assert_eq!(again.code, 200, "{again:?}");
    assert!(again.resources().values().all(|r| r["action"] == "exists"));

    // A request cannot go below the operator's replicas: it is served at the floor, and
    // the reply says so.
    let lower = lattice(&client, json!({ "lattice": "prod", "replicas": 1 })).await;
    assert_eq!(lower.code, 200, "{lower:?}");
    assert!(
        lower.body["replicas_note"]
            .as_str()
            .is_some_and(|n| n.contains("floor")),
        "{lower:?}"
    );
    for (stream, r) in lower.resources() {
        assert_eq!(r["action"], "exists", "{r}");
        assert_eq!(r["replicas"], 3, "{r}");
        assert_eq!(r["desired_replicas"], 3, "{r}");
        let info = stream_info(&client, &stream).await.expect("still there");
        assert_eq!(info["config"]["num_replicas"], 3);
    }
    let new_low = lattice(&client, json!({ "lattice": "low", "replicas": 1 })).await;
    assert_eq!(new_low.code, 200, "{new_low:?}");
    for (stream, r) in new_low.resources() {
        assert_eq!(r["action"], "created", "{r}");
        let info = stream_info(&client, &stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream} at the floor");
    }
    instance.shutdown().await;

    // A request may raise replicas above the service's setting only where the operator
    // allows it (--max-request-replicas).
    let r1_service = Instance::start(
        &cluster.client_url_all(),
        Settings {
            max_request_replicas: Some(3),
            ..Settings::default()
        },
    )
    .await;
    wait_discoverable(&client, 1).await;
    let asked = lattice(&client, json!({ "lattice": "asked", "replicas": 3 })).await;
    assert_eq!(asked.code, 200, "{asked:?}");
    for (stream, r) in asked.resources() {
        assert_eq!(r["action"], "created", "{r}");
        let info = stream_info(&client, &stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream}");
        assert_eq!(peers(&info), 3, "{stream}");
    }
    let plain = lattice(&client, json!({ "lattice": "plain" })).await;
    assert!(
        plain.resources().values().all(|r| r["replicas"] == 1),
        "{plain:?}"
    );
    r1_service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_to_r3_upgrade_keeps_10000_keys_history_and_every_other_setting() {
    let _machine = MACHINE.write().await;
    const KEYS: usize = 10_000;
    /// Keys written twice, so that history is there to lose.
    const TWICE: usize = 100;
    let cluster = NatsCluster::start(3);
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;
    let js = jetstream::new(client.clone());

    // A bucket at R1 as a host made it, with settings of its own the upgrade must keep.
    let bucket = js
        .create_key_value(kv::Config {
            bucket: "LATTICEDATA_big".into(),
            description: "made by a host, tuned by hand".into(),
            history: 5,
            max_bytes: 512 * 1024 * 1024,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .expect("create the R1 bucket");
    // Right after the create, a server of the cluster may not route the bucket's subjects
    // to it yet: a put then finds no stream (no responders, nothing stored; seen once on a
    // loaded box) and is sent again. Any other error, or one that lasts, fails the test.
    let put = |bucket: kv::Store, key: String, value: String| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match bucket.put(&key, value.clone().into()).await {
                Ok(revision) => return revision,
                Err(e)
                    if e.to_string().contains("no stream found") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("put {key}: {e}"),
            }
        }
    };
    stream::iter(0..KEYS)
        .map(|i| put(bucket.clone(), format!("key{i}"), format!("value-{i}")))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for i in 0..TWICE {
        bucket
            .put(format!("key{i}"), format!("value-{i}-v2").into())
            .await
            .expect("second revision");
    }
    let before = stream_info(&client, "KV_LATTICEDATA_big")
        .await
        .expect("bucket");
    assert_eq!(before["config"]["num_replicas"], 1);
    assert_eq!(before["state"]["messages"], KEYS + TWICE);

    let instance = Instance::start(&cluster.client_url_all(), r3()).await;
    wait_discoverable(&client, 1).await;
    let mut updated_events = client
        .subscribe("wasmcloud.provision.events.updated")
        .await
        .expect("subscribe to the audit events");
    client.flush().await.expect("flush");
    let reply = lattice(&client, json!({ "lattice": "big" })).await;
    assert_eq!(reply.code, 200, "{reply:?}");
    let upgraded = &reply.resources()["KV_LATTICEDATA_big"];
    assert_eq!(upgraded["action"], "updated", "{upgraded}");
    assert_eq!(upgraded["previous_replicas"], 1, "{upgraded}");
    assert_eq!(upgraded["replicas"], 3, "{upgraded}");
    assert_eq!(reply.resources()["KV_CONFIGDATA_big"]["action"], "created");

    // The raise is on the audit trail, with the replicas before and after and the request
    // that caused it.
    let event = tokio::time::timeout(REPLY_TIMEOUT, updated_events.next())
        .await
        .expect("an `updated` audit event arrives")
        .expect("audit subscription open");
    let event: Value = serde_json::from_slice(&event.payload).expect("audit event is JSON");
    assert_eq!(event["action"], "updated", "{event}");
    assert_eq!(event["resource"]["stream"], "KV_LATTICEDATA_big", "{event}");
    assert_eq!(event["before"]["replicas"], 1, "{event}");
    assert_eq!(event["after"]["replicas"], 3, "{event}");
    // Only the replicas changed: the bucket keeps its history and size limit.
    for field in ["max_msgs_per_subject", "max_bytes", "subjects", "storage"] {
        assert_eq!(
            event["after"][field], event["before"][field],
            "{field}: {event}"
        );
    }
    assert_eq!(event["requester"]["endpoint"], "lattice", "{event}");

    // The new replicas catch up in the background; wait until all are current.
    let after = eventually("all 3 replicas current", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let info = stream_info(&client, "KV_LATTICEDATA_big")
                .await
                .ok_or("gone")?;
            let replicas = info["cluster"]["replicas"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if peers(&info) == 3 && replicas.iter().all(|r| r["current"] == true) {
                Ok(info)
            } else {
                Err(format!("{}", info["cluster"]))
            }
        }
    })
    .await;

    // Every setting but num_replicas is what it was.
    let strip = |info: &Value| {
        let mut c = info["config"].clone();
        c.as_object_mut()
            .expect("config object")
            .remove("num_replicas");
        c
    };
    assert_eq!(strip(&after), strip(&before));
    assert_eq!(after["config"]["num_replicas"], 3);
    assert_eq!(after["config"]["max_msgs_per_subject"], 5, "history");
    assert_eq!(after["state"]["messages"], KEYS + TWICE);

    // Every key and value is still there, read through the R3 stream.
    let bucket = js.get_key_value("LATTICEDATA_big").await.expect("bucket");
    let missing: Vec<String> = stream::iter(0..KEYS)
        .map(|i| {
            let bucket = bucket.clone();
            async move {
                let want = if i < TWICE {
                    format!("value-{i}-v2")
                } else {
                    format!("value-{i}")
                };
                match bucket.get(format!("key{i}")).await {
                    Ok(Some(v)) if v == want.as_bytes() => None,
                    other => Some(format!("key{i}: {other:?}")),
                }
            }
        })
        .buffer_unordered(64)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    assert!(
        missing.is_empty(),
        "{} keys wrong, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let keys: HashSet<String> = bucket
        .keys()
        .await
        .expect("list keys")
        .map(|k| k.expect("key"))
        .collect()
        .await;
    assert_eq!(keys.len(), KEYS);
    for i in [0, TWICE / 2, TWICE - 1] {
        let history: Vec<_> = bucket
            .history(format!("key{i}"))
            .await
            .expect("history")
            .map(|e| e.expect("entry").value)
            .collect()
            .await;
        assert_eq!(
            history,
            vec![
                Bytes::from(format!("value-{i}")),
                Bytes::from(format!("value-{i}-v2"))
            ],
            "history of key{i}"
        );
    }

    // And the next request finds nothing to do.
    let again = lattice(&client, json!({ "lattice": "big" })).await;
    assert!(
        again.resources().values().all(|r| r["action"] == "exists"),
        "{again:?}"
    );
    instance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_refuses_more_than_one_replica_with_a_clear_409() {
    let _machine = MACHINE.read().await;
    let server = NatsServer::start();
    // Requests may raise replicas here, so that they reach JetStream's refusal.
    let settings = Settings {
        max_request_replicas: Some(5),
        ..Settings::default()
    };
    let instance = Instance::start(&server.url(), settings).await;
    let client = common::connect(&server.url()).await;
    wait_discoverable(&client, 1).await;

    // New resources: the server refuses (10074); the reply says why and what to do.
    let new = lattice(&client, json!({ "lattice": "solo", "replicas": 3 })).await;
    new.assert_well_formed_error("R3 on a single server");
    assert_eq!(new.code, 409, "{new:?}");
    assert!(new.message().contains("not clustered"), "{new:?}");
    assert!(new.message().contains("replicas 1"), "{new:?}");
    assert_eq!(stream_count(&client).await, 0, "nothing was created");

    // Existing R1 resources: a single server would accept the update and store 3 while
    // keeping one copy, so the provisioner refuses before asking.
    let created = lattice(&client, json!({ "lattice": "solo" })).await;
    assert_eq!(created.code, 200, "{created:?}");
    let raise = lattice(&client, json!({ "lattice": "solo", "replicas": 3 })).await;
    raise.assert_well_formed_error("raise on a single server");
    assert_eq!(raise.code, 409, "{raise:?}");
    assert!(raise.message().contains("not clustered"), "{raise:?}");
    for stream in ["KV_LATTICEDATA_solo", "KV_CONFIGDATA_solo"] {
        let info = stream_info(&client, stream).await.expect("exists");
        assert_eq!(info["config"]["num_replicas"], 1, "{stream} unchanged");
    }

    // A dry run says the same before anything is tried.
    let plan = lattice(
        &client,
        json!({ "lattice": "solo", "replicas": 3, "dry_run": true }),
    )
    .await;
    assert_eq!(plan.code, 200, "{plan:?}");
    for r in plan.resources().values() {
        let notes = r["notes"].as_array().cloned().unwrap_or_default();
        assert!(
            notes
                .iter()
                .any(|n| n["why"].as_str().unwrap_or("").contains("not clustered")),
            "{r}"
        );
    }
    instance.shutdown().await;
}

// ---------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_tags_and_cluster_choose_the_servers() {
    let _machine = MACHINE.read().await;
    let cluster = NatsCluster::start_with(
        3,
        ClusterOptions {
            server_tags: vec![
                vec!["az:a".into(), "disk:ssd".into()],
                vec!["az:b".into(), "disk:ssd".into()],
                vec!["az:c".into(), "disk:hdd".into()],
            ],
            ..Default::default()
        },
    );
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;

    // From the config file, through the real binary: every resource on the hdd server at
    // R1, except CONFIGDATA at R3 anywhere in cluster c1.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("provisioner.toml");
    std::fs::write(
        &path,
        r#"
[all]
replicas = 1
placement = { tags = ["disk:hdd"] }

[resources.configdata]
replicas = 3
placement = { cluster = "c1" }
"#,
    )
    .expect("write the config file");
    let js_timeout = JS_TIMEOUT.as_secs().to_string();
    let out = common::provisioner_command()
        .args(["--server", &cluster.client_url_all(), "--config"])
        .arg(&path)
        .args([
            "apply",
            "--lattice",
            "placed",
            "--json",
            "--js-timeout",
            &js_timeout,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run wasmcloud-provisioner apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apply failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("apply --json prints JSON");
    assert_eq!(report["resources"][0]["action"], "created", "{report}");

    let data = stream_info(&client, "KV_LATTICEDATA_placed")
        .await
        .expect("created");
    assert_eq!(data["config"]["num_replicas"], 1);
    assert_eq!(data["config"]["placement"]["tags"], json!(["disk:hdd"]));
    assert_eq!(
        data["cluster"]["leader"],
        cluster.server_name(2),
        "on the hdd server"
    );
    let config = stream_info(&client, "KV_CONFIGDATA_placed")
        .await
        .expect("created");
    assert_eq!(config["config"]["num_replicas"], 3);
    assert_eq!(config["config"]["placement"]["cluster"], "c1");
    assert_eq!(peers(&config), 3);

    // The flag sets every resource's replicas; an even count is refused up front.
    let run = |args: &[&str]| {
        common::provisioner_command()
            .args(["--server", &cluster.client_url_all()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run wasmcloud-provisioner")
    };
    let out = run(&[
        "--replicas",
        "3",
        "apply",
        "--lattice",
        "flagged",
        "--json",
        "--js-timeout",
        &js_timeout,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in ["KV_LATTICEDATA_flagged", "KV_CONFIGDATA_flagged"] {
        let info = stream_info(&client, stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream}");
        assert_eq!(peers(&info), 3, "{stream}");
    }
    let out = run(&["--replicas", "4", "apply", "--lattice", "even"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1, 3 or 5"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stream_info(&client, "KV_LATTICEDATA_even").await.is_none());

    // A placement the cluster cannot satisfy is a 409 that names the placement, and
    // creates nothing.
    let mut ssd = r3();
    ssd.all.placement = Some(Placement {
        cluster: None,
        tags: vec!["disk:ssd".into()],
    });
    let instance = Instance::start(&cluster.client_url_all(), ssd).await;
    wait_discoverable(&client, 1).await;
    let before = stream_count(&client).await;
    let reply = lattice(&client, json!({ "lattice": "nowhere" })).await;
    reply.assert_well_formed_error("R3 on two ssd servers");
    assert_eq!(reply.code, 409, "{reply:?}");
    assert!(reply.message().contains("placement"), "{reply:?}");
    assert_eq!(stream_count(&client).await, before, "nothing was created");
    instance.shutdown().await;
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_down_a_new_lattice_is_still_created_at_r3() {
    let _machine = MACHINE.read().await;
    let mut cluster = NatsCluster::start(3);
    let instance = Instance::start(&cluster.client_url_all(), r3()).await;
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;
    wait_discoverable(&client, 1).await;
    let before = lattice(&client, json!({ "lattice": "before" })).await;
    assert_eq!(before.code, 200, "{before:?}");

    // Stop the meta leader: the hardest node to lose.
    let leader = cluster.meta_leader();
    let down = (0..3)
        .find(|&i| cluster.server_name(i) == leader)
        .expect("a meta leader");
    cluster.stop_node(down);
    let client = common::connect(&cluster.client_url_all()).await;

    let after = lattice(&client, json!({ "lattice": "after" })).await;
    assert_eq!(after.code, 200, "quorum 2/3 still creates: {after:?}");
    for (stream, r) in after.resources() {
        assert_eq!(r["action"], "created", "{r}");
        assert_eq!(r["replicas"], 3, "{r}");
        let info = stream_info(&client, &stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3);
        assert_eq!(
            peers(&info),
            3,
            "3 peers, one of them offline: {}",
            info["cluster"]
        );
    }
    // Existing resources, observed afresh (status) and through the service's cache.
    let status = call(&client, "wasmcloud.provision.status", "before").await;
    assert_eq!(status.code, 200, "{status:?}");
    assert!(
        status.resources().values().all(|r| r["action"] == "exists"),
        "{status:?}"
    );
    let again = lattice(&client, json!({ "lattice": "before" })).await;
    assert!(
        again.resources().values().all(|r| r["action"] == "exists"),
        "{again:?}"
    );

    cluster.start_node(down);
    let back = lattice(&client, json!({ "lattice": "after" })).await;
    assert!(
        back.resources().values().all(|r| r["action"] == "exists"),
        "{back:?}"
    );
    instance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_down_fail_fast_with_503_no_quorum_then_recover() {
    let _machine = MACHINE.read().await;
    let mut cluster = NatsCluster::start(3);
    // Provisioner and requester both on n1, which stays up.
    let instance = Instance::start_with_js_timeout(&cluster.url(0), r3(), DEFAULT_JS_TIMEOUT).await;
    let client = common::connect(&cluster.url(0)).await;
    wait_placeable(&client).await;
    wait_discoverable(&client, 1).await;
    let before = lattice(&client, json!({ "lattice": "before" })).await;
    assert_eq!(before.code, 200, "{before:?}");

    cluster.stop_node(1);
    cluster.stop_node(2);
    let stopped = Instant::now();

    // The surviving server first still believes in its meta leadership (placement then
    // fails with "peer offline"); after its lost-quorum interval it answers 10008. Both
    // must come back as a 503 that says there is no quorum. Keep asking until the second
    // form was seen.
    let mut seen: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
    let mut i = 0;
    loop {
        i += 1;
        let reply = lattice(&client, json!({ "lattice": format!("noquorum{i}") })).await;
        reply.assert_well_formed_error("no quorum");
        assert_eq!(reply.code, 503, "{reply:?}");
        assert!(reply.message().contains("no quorum"), "{reply:?}");
        let form = if reply.message().contains("10008") {
            "server: 10008 JetStream system temporarily unavailable"
        } else if reply.message().contains("10005") {
            "server: 10005 no suitable peers, peer offline"
        } else if reply.message().contains("did not answer in time") {
            "silence: --js-timeout"
        } else {
            panic!("unexpected 503: {reply:?}")
        };
        let entry = seen.entry(form.to_string()).or_insert((0, Duration::ZERO));
        entry.0 += 1;
        entry.1 = entry.1.max(reply.took);
        if form.starts_with("server: 10008") {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(90),
            "the server never reported the lost quorum: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // An existing lattice, looked at afresh, is not reported as fine either.
    let status = call(&client, "wasmcloud.provision.status", "before").await;
    status.assert_well_formed_error("status without quorum");
    assert_eq!(status.code, 503, "{status:?}");
    assert!(status.message().contains("quorum"), "{status:?}");
    eprintln!(
        "no quorum: replies by form (count, slowest): {seen:?}; status of an existing \
         lattice after {:?}: {}; {:?} after the stop",
        status.took,
        status.message(),
        stopped.elapsed()
    );
    assert!(instance.is_running(), "the service stays up");

    // Back to quorum: the very same requests succeed, without restarting the service.
    cluster.start_node(1);
    cluster.start_node(2);
    let recovered = eventually("provisioning works again", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let reply = lattice(&client, json!({ "lattice": "recovered" })).await;
            match reply.code {
                200 => Ok(reply),
                503 => Err(reply.message().to_string()),
                _ => panic!("unexpected reply while recovering: {reply:?}"),
            }
        }
    })
    .await;
    assert!(recovered
        .resources()
        .values()
        .all(|r| r["action"] == "created" && r["replicas"] == 3));
    let status = call(&client, "wasmcloud.provision.status", "before").await;
    assert_eq!(status.code, 200, "{status:?}");
    // Nothing asked for during the outage was half-made.
    for n in 1..=i {
        for s in ["LATTICEDATA", "CONFIGDATA"] {
            let stream = format!("KV_{s}_noquorum{n}");
            assert!(stream_info(&client, &stream).await.is_none(), "{stream}");
        }
    }
    instance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_comes_back_after_its_server_restarts() {
    let _machine = MACHINE.read().await;
    let mut server = NatsServer::start();
    let instance = Instance::start(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    let first = wait_discoverable(&client, 1).await;
    let before = lattice(&client, json!({ "lattice": "before" })).await;
    assert_eq!(before.code, 200, "{before:?}");
    assert!(!instance.known.is_empty(), "the cache holds what was seen");

    server.restart();

    // Nothing restarted the provisioner: it reconnects, resubscribes and is found again.
    let client = common::connect(&server.url()).await;
    let again = wait_discoverable(&client, 1).await;
    assert_eq!(first, again, "the same instance");
    assert!(
        instance.known.is_empty(),
        "the cache is cleared on reconnect (advisories may have been missed)"
    );
    let exists = lattice(&client, json!({ "lattice": "before" })).await;
    assert_eq!(exists.code, 200, "{exists:?}");
    assert!(exists.resources().values().all(|r| r["action"] == "exists"));
    let created = lattice(&client, json!({ "lattice": "after" })).await;
    assert!(
        created
            .resources()
            .values()
            .all(|r| r["action"] == "created"),
        "{created:?}"
    );
    assert!(instance.is_running());
    instance.shutdown().await;
}

// ---------------------------------------------------------------------------
// Many instances
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_and_500_concurrent_requests_create_each_stream_once() {
    let _machine = MACHINE.write().await;
    const REQUESTS: usize = 500;
    let cluster = NatsCluster::start(3);
    // One instance on n1, one on n2; requesters on n1 and n2 in equal numbers, so the
    // queue group (which prefers a local member) splits the burst across both.
    let a = Instance::start(&cluster.url(0), r3()).await;
    let b = Instance::start(&cluster.url(1), r3()).await;
    let observer = common::connect(&cluster.url(2)).await;
    wait_placeable(&observer).await;
    let ids = wait_discoverable(&observer, 2).await;
    assert_eq!(ids.len(), 2);

    // The server's own records: creation advisories, the API audit trail, and every
    // STREAM.CREATE request as routed.
    let mut created_adv = observer
        .subscribe("$JS.EVENT.ADVISORY.STREAM.CREATED.*")
        .await
        .expect("subscribe");
    let mut audit = observer
        .subscribe("$JS.EVENT.ADVISORY.API")
        .await
        .expect("subscribe");
    let mut creates = observer
        .subscribe("$JS.API.STREAM.CREATE.*")
        .await
        .expect("subscribe");
    observer.flush().await.expect("flush");

    let requesters = [
        common::connect(&cluster.url(0)).await,
        common::connect(&cluster.url(1)).await,
    ];
    let started = Instant::now();
    let replies: Vec<Reply> = stream::iter(0..REQUESTS)
        .map(|i| {
            let client = requesters[i % 2].clone();
            async move { lattice(&client, json!({ "lattice": "burst" })).await }
        })
        .buffer_unordered(REQUESTS)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut actions: BTreeMap<(String, String), usize> = BTreeMap::new();
    for reply in &replies {
        assert_eq!(reply.code, 200, "{reply:?}");
        for (stream, r) in reply.resources() {
            assert_eq!(r["replicas"], 3, "{r}");
            *actions
                .entry((stream, r["action"].as_str().unwrap_or("").to_string()))
                .or_default() += 1;
        }
    }
    // Requests that joined an instance's create in flight share its outcome, so several
    // replies may say `created`; the server's records below show the stream was created
    // once.
    let streams = ["KV_CONFIGDATA_burst", "KV_LATTICEDATA_burst"];
    for s in streams {
        let created = actions
            .get(&(s.to_string(), "created".to_string()))
            .copied()
            .unwrap_or(0);
        let exists = actions
            .get(&(s.to_string(), "exists".to_string()))
            .copied()
            .unwrap_or(0);
        assert!(created >= 1, "{actions:?}");
        assert_eq!(
            created + exists,
            REQUESTS,
            "only created or exists: {actions:?}"
        );
    }

    // Drain what the server recorded.
    let drain = |sub: &mut async_nats::Subscriber| {
        let mut out = Vec::new();
        while let Some(Some(m)) = sub.next().now_or_never() {
            out.push(m);
        }
        out
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let created: Vec<String> = drain(&mut created_adv)
        .iter()
        .map(|m| m.subject.rsplit('.').next().unwrap_or("").to_string())
        .collect();
    let mut created_count: BTreeMap<String, usize> = BTreeMap::new();
    for s in &created {
        *created_count.entry(s.clone()).or_default() += 1;
    }
    for s in streams {
        assert_eq!(
            created_count.get(s),
            Some(&1),
            "one STREAM.CREATED advisory per stream: {created_count:?}"
        );
    }
    let create_calls: Vec<String> = drain(&mut creates)
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    let audited: Vec<Value> = drain(&mut audit)
        .iter()
        .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
        .filter(|v| {
            v["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("$JS.API.STREAM.CREATE."))
        })
        .collect();
    for s in streams {
        let calls = create_calls.iter().filter(|c| c.ends_with(s)).count();
        // Each instance single-flights its own creates: at most one call each.
        assert!((1..=2).contains(&calls), "{s}: {calls} STREAM.CREATE calls");
    }
    eprintln!(
        "{REQUESTS} requests in {elapsed:?}; actions {actions:?}; STREAM.CREATED advisories \
         {created_count:?}; STREAM.CREATE calls {}; audit advisories for them {} (one per \
         server that answered or forwarded)",
        create_calls.len(),
        audited.len()
    );

    // Both instances took part.
    for id in &ids {
        let m = observer
            .request(format!("$SRV.STATS.{SERVICE_NAME}.{id}"), Bytes::new())
            .await
            .expect("stats");
        let v: Value = serde_json::from_slice(&m.payload).expect("stats JSON");
        let handled: u64 = v["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == "lattice")
            .filter_map(|e| e["num_requests"].as_u64())
            .sum();
        assert!(handled > 0, "instance {id} handled no request: {v}");
    }

    // And the resources ended exactly as the catalog says.
    for d in catalog::lattice_resources("burst", &r3()) {
        let info = stream_info(&observer, &d.stream).await.expect("created");
        assert_catalog_config(&info, &d);
        assert_eq!(peers(&info), 3);
    }
    a.shutdown().await;
    b.shutdown().await;
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_answers_every_accepted_request_and_exits_0() {
    let _machine = MACHINE.write().await;
    const BURST: usize = 500;
    let server = NatsServer::start();
    let logs = tempfile::tempdir().expect("temp dir");
    let log_path = logs.path().join("provisioner.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = common::provisioner_command()
        .args(["--server", &server.url(), "--log-format", "json", "serve"])
        // `received` (debug) and `answered` (info) for every request the service takes.
        .env("RUST_LOG", "info,wasmcloud_provisioner::service=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start wasmcloud-provisioner serve");
    let client = common::connect(&server.url()).await;
    wait_discoverable(&client, 1).await;

    // Each request on the scoped subject of a lattice of its own: the subject names the
    // request in the service's log, and each one needs JetStream work.
    let send = |client: async_nats::Client, lattice: String| async move {
        let subject = format!("wasmcloud.provision.lattice.{lattice}");
        let started = Instant::now();
        let outcome = client
            .send_request(
                subject,
                async_nats::Request::new().timeout(Some(REPLY_TIMEOUT)),
            )
            .await
            .map(|m| to_reply(m, started.elapsed()));
        (lattice, outcome, Instant::now())
    };
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut requests = Vec::new();
    for i in 0..BURST {
        let request = send(client.clone(), format!("burst{i}"));
        let first_tx = first_tx.clone();
        requests.push(tokio::spawn(async move {
            let done = request.await;
            let _ = first_tx.send(());
            done
        }));
    }
    // And a trickle, one request per millisecond without waiting for replies, until
    // requests are refused (or 3000 were sent): some arrive while the service
    // unsubscribes.
    let refused_seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let client = client.clone();
        let refused_seen = refused_seen.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for n in 0..3000 {
                tick.tick().await;
                if refused_seen.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let request = send(client.clone(), format!("trickle{n}"));
                let refused_seen = refused_seen.clone();
                sent.push(tokio::spawn(async move {
                    let done = request.await;
                    if matches!(&done.1, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders)
                    {
                        refused_seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    done
                }));
            }
            sent
        })
    };
    // SIGTERM once the burst is under way: some replies in, most requests still open.
    for _ in 0..10 {
        first_rx.recv().await.expect("replies arrive");
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success(), "kill -TERM failed");
    let signalled = Instant::now();
    requests.extend(trickle.await.expect("trickle"));

    let mut replied = HashSet::new();
    let mut replied_after_signal = 0;
    let mut refused = 0;
    let mut timed_out = Vec::new();
    let total = requests.len();
    for request in requests {
        let (lattice, outcome, at) = request.await.expect("request task");
        match outcome {
            Ok(reply) => {
                // Under this load a JetStream call may time out: a 503 is still a reply.
                assert!(
                    reply.code == 200 || reply.code == 503,
                    "{lattice}: {reply:?}"
                );
                if reply.code != 200 {
                    reply.assert_well_formed_error(&lattice);
                }
                replied_after_signal += usize::from(at > signalled);
                replied.insert(lattice);
            }
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => refused += 1,
            Err(_) => timed_out.push(lattice),
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait for the provisioner");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit status {status}\n{log}");
    assert!(
        replied_after_signal > 0,
        "no request was still in flight at SIGTERM, so the drain was not exercised"
    );

    // The service's own account of what it took and answered.
    let mut received = HashSet::new();
    let mut answered = HashSet::new();
    let mut from_witness = 0;
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        from_witness += v["missed"].as_u64().unwrap_or(0);
        let lattice = v["span"]["subject"]
            .as_str()
            .and_then(|s| s.strip_prefix("wasmcloud.provision.lattice."))
            .map(str::to_string);
        match (
            v["fields"]["message"].as_str().or(v["message"].as_str()),
            lattice,
        ) {
            (Some("received"), Some(l)) => {
                received.insert(l);
            }
            (Some("answered"), Some(l)) => {
                answered.insert(l);
            }
            (Some(m), _) => assert!(!m.contains("without their replies"), "{line}"),
            _ => {}
        }
    }
    assert!(
        !received.is_empty(),
        "no `received` lines in the log:\n{log}"
    );
    assert_eq!(
        received, answered,
        "every request the service took was answered"
    );
    assert_eq!(answered, replied, "and each answer reached its requester");
    // Nothing is lost on the wire: what the server routed to the endpoints is answered,
    // also what async-nats dropped when they unsubscribed (the shutdown witness has a copy,
    // and it ends only after the server's last message to it); later requests find no
    // responders.
    assert!(timed_out.is_empty(), "lost on the wire: {timed_out:?}");
    assert_eq!(replied.len() + refused + timed_out.len(), total);
    eprintln!(
        "SIGTERM after 10 replies: {total} requests, {} answered ({replied_after_signal} after \
         the signal; {from_witness} of them from the shutdown witness: on the wire when the \
         endpoints stopped, or sent after), {refused} refused (no responders), {} lost on \
         the wire; exit 0",
        replied.len(),
        timed_out.len()
    );
}

// ---------------------------------------------------------------------------
// Bad input at volume, against the real service
// ---------------------------------------------------------------------------

/// xorshift64*: a tiny deterministic generator, seeded per run (printed to reproduce).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// 1..=max characters a lattice name may hold.
    fn name(&mut self, max: usize) -> String {
        const OK: &[u8] = b"ABCXYZabcxyz0189_-";
        (0..1 + self.below(max))
            .map(|_| *self.pick(OK) as char)
            .collect()
    }

    /// Valid characters, but more of them than a lattice name may hold.
    fn long_name(&mut self) -> String {
        let unit = self.name(10);
        unit.repeat(129 / unit.len() + 1 + self.below(20))
    }

    /// A name with at least one character a lattice name may not hold.
    fn bad_name(&mut self) -> String {
        const BAD: &[&str] = &[
            ".", "*", ">", " ", "\t", "/", "$", "é", "\u{0}", "\u{7f}", "{", "\"", "\\", "日本",
            "\r",
        ];
        let mut name = self.name(20);
        let at = self.below(name.len() + 1);
        let bad: &str = BAD[self.below(BAD.len())];
        name.insert_str(at, bad);
        name
    }

    /// Any JSON value other than the one a field wants.
    fn wrong_value(&mut self) -> Value {
        match self.below(7) {
            0 => Value::Null,
            1 => json!(self.next() % 1000),
            2 => json!(-1.5),
            3 => json!([self.name(5)]),
            4 => json!({ "x": 1 }),
            5 => json!(self.bad_name()),
            _ => json!(true),
        }
    }
}

/// A request that must be refused, and the subject it goes to.
fn invalid_request(rng: &mut Rng) -> (String, Vec<u8>) {
    const ENDPOINTS: &[&str] = &["lattice", "wadm", "status", "lattice.scoped"];
    let endpoint = *rng.pick(ENDPOINTS);
    let subject = format!("wasmcloud.provision.{endpoint}");
    let object = |rng: &mut Rng, key: &str, value: Value| {
        let mut body = serde_json::Map::new();
        body.insert(key.to_string(), value);
        if key != "dry_run" && rng.below(2) == 0 {
            body.insert("dry_run".into(), json!(true));
        }
        Value::Object(body).to_string().into_bytes()
    };
    let body: Vec<u8> = match rng.below(11) {
        // A plain-text name with a forbidden character (wadm takes no text at all).
        0 => rng.bad_name().into_bytes(),
        // Not UTF-8.
        1 => {
            let mut b = rng.name(10).into_bytes();
            let at = rng.below(b.len() + 1);
            b.insert(at, *rng.pick(&[0xff, 0xfe, 0xc3, 0x80]));
            b
        }
        // An unknown field.
        2 => {
            let key = format!("x{}", rng.name(8));
            object(rng, &key, json!(1))
        }
        // A known field with the wrong type or value.
        3 => {
            let key = *rng.pick(&["lattice", "dry_run", "multitenant", "wadm"]);
            let value = if key == "lattice" {
                match rng.below(3) {
                    0 => json!(rng.bad_name()),
                    1 => json!(rng.long_name()),
                    _ => rng.wrong_value(),
                }
            } else {
                let v = rng.wrong_value();
                if v.is_boolean() {
                    json!("true")
                } else {
                    v
                }
            };
            object(rng, key, value)
        }
        // Replicas JetStream cannot have.
        4 => {
            let replicas = [
                json!(0),
                json!(2),
                json!(4),
                json!(6),
                json!(-3),
                json!(3.5),
                json!("3"),
                Value::Null,
            ];
            let value = rng.pick(&replicas).clone();
            object(rng, "replicas", value)
        }
        // Broken JSON.
        5 => {
            let valid = json!({ "lattice": rng.name(10) }).to_string();
            valid.as_bytes()[..rng.below(valid.len() - 1) + 1].to_vec()
        }
        // JSON that is not an object (a string is a name: a bad one). Bare `42` or `null`
        // are plain-text lattice names, so they are not here.
        6 => match rng.below(3) {
            0 => b"[1,2,3]".to_vec(),
            1 => json!([{ "lattice": rng.name(5) }]).to_string().into_bytes(),
            _ => json!(rng.bad_name()).to_string().into_bytes(),
        },
        // Too long a name.
        7 => rng.long_name().into_bytes(),
        // Too large a body.
        8 => vec![b'a'; 16 * 1024 + 1 + rng.below(4096)],
        // Nested deeper than any parser should follow.
        9 => {
            let depth = 200 + rng.below(5000);
            let mut b = vec![b'['; depth];
            b.extend(vec![b']'; depth]);
            b
        }
        // Control characters and whitespace only.
        _ => rng
            .pick(&[&b" "[..], b"\t", b"\r\r\n", b"\n\n", b"\0", b" default"])
            .to_vec(),
    };
    // The scoped endpoint with a valid subject lattice refuses a body naming another one.
    let (subject, body) = if endpoint == "lattice.scoped" {
        if rng.below(3) == 0 {
            (
                format!("wasmcloud.provision.lattice.{}", rng.name(10)),
                format!("other{}", rng.name(5)).into_bytes(),
            )
        } else {
            (
                format!("wasmcloud.provision.lattice.{}", rng.name(10)),
                body,
            )
        }
    } else {
        (subject, body)
    };
    (subject, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_invalid_requests_get_well_formed_errors_and_create_nothing() {
    let _machine = MACHINE.read().await;
    const REQUESTS: usize = 400;
    let seed = std::env::var("INVALID_REQUESTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("INVALID_REQUESTS_SEED={seed}");
    let mut rng = Rng(seed);
    let server = NatsServer::start();
    let instance = Instance::start(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    wait_discoverable(&client, 1).await;

    let requests: Vec<(String, Vec<u8>)> =
        (0..REQUESTS).map(|_| invalid_request(&mut rng)).collect();
    let replies: Vec<(String, Vec<u8>, Reply)> = stream::iter(requests)
        .map(|(subject, body)| {
            let client = client.clone();
            async move {
                let reply = call(&client, &subject, body.clone()).await;
                (subject, body, reply)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for (subject, body, reply) in &replies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        reply.assert_well_formed_error(&format!("{subject} {shown:?} (seed {seed})"));
        assert!(
            reply.code == 400 || reply.code == 403,
            "{subject} {shown:?} (seed {seed}): {reply:?}"
        );
        *codes.entry(reply.code).or_default() += 1;
    }
    assert_eq!(
        stream_count(&client).await,
        0,
        "an invalid request created a stream"
    );
    assert!(instance.is_running());
    eprintln!("{REQUESTS} invalid requests: replies by code {codes:?}; no stream created");
    instance.shutdown().await;
}
