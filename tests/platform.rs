//! The wasmCloud production platform (the `wasmcloud-platform` Helm chart), proven against
//! real servers with users that carry exactly the generated templates:
//!
//! - the Kubernetes operator (wasmcloud-operator 0.4.x, wadm-operator 0.5.1) binds the
//!   stream the provisioner created and its own consumer, exactly as it does it
//!   (`get_or_create_stream` / `get_or_create_consumer`), receives wadm's events, and can
//!   change no stream;
//! - a host behind a leaf node (the operator's sidecar: JetStream domain `leaf`, no
//!   credentials for the host, the remote authenticated on the hub in domain `default`)
//!   does all its work through the leaf with the `--via-leaf` template — bootstrap, KV
//!   bind, watches through a burst of several MB, put/get/purge, events, control requests
//!   answered on the leaf — and cannot create, change, delete or purge a stream. Refusals
//!   through a leaf are silent (the leaf drops what its user may not send), so the test
//!   checks that the work succeeds and, for refusals, what an admin sees. The template
//!   without `--via-leaf` is shown to lose control replies and stall a watch;
//! - the chart's one secret for the leaf links and the operator: both workloads with the
//!   union of the two templates (`--role host --role operator`);
//! - the operator's stream on the command line (`apply`/`plan --operator`, drift) and as
//!   `serve`'s default (`WASMCLOUD_PROVISIONER_OPERATOR`).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, Context};
use futures::StreamExt;
use serde_json::Value;

use common::leaf::{self, LeafOptions, LeafServer};
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::catalog::{self, Operator};
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::endpoints::host;
use wasmcloud_provisioner::permissions::{self, PlatformOptions, Role, TemplateOptions};
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::service::SERVICE_NAME;

const PASSWORD: &str = "platform";
const ACCOUNT: &str = "WASMCLOUD";
/// How long a refused JetStream call may wait for the answer that never comes.
const REFUSED_TIMEOUT: Duration = Duration::from_secs(2);
/// How long JetStream work that must succeed may take (generous: a loaded CI runner).
const WORK_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The test bed
// ---------------------------------------------------------------------------

fn options(lattices: &[&str], js_domain: Option<&str>) -> TemplateOptions {
    TemplateOptions {
        lattices: lattices.iter().map(|l| l.to_string()).collect(),
        js_domain: js_domain.map(str::to_string),
    }
}

/// A role's `conf` block, as `wasmcloud-provisioner permissions` prints it.
fn conf(role: Role, options: &TemplateOptions, platform: PlatformOptions) -> String {
    permissions::template_for(role, options, platform)
        .expect("template")
        .to_conf()
}

/// One account with these users (an empty block: no restrictions).
fn accounts(users: &[(&str, String)]) -> String {
    let mut c = format!("accounts {{\n  {ACCOUNT} {{\n    jetstream: enabled\n    users: [\n");
    for (name, block) in users {
        c.push_str(&format!(
            "      {{\n        user: {name:?}\n        password: {PASSWORD:?}\n{block}      }}\n"
        ));
    }
    c.push_str("    ]\n  }\n}\n");
    c
}

async fn connect_as(url: &str, user: &str) -> async_nats::Client {
    common::connect_with(
        url,
        async_nats::ConnectOptions::with_user_and_password(user.into(), PASSWORD.into())
            .name(user)
            .request_timeout(Some(Duration::from_secs(3))),
    )
    .await
}

fn js_of(client: &async_nats::Client, domain: Option<&str>) -> Context {
    let mut js = match domain {
        Some(d) => jetstream::with_domain(client.clone(), d),
        None => jetstream::new(client.clone()),
    };
    js.set_timeout(WORK_TIMEOUT);
    js
}

/// The same context for calls that must be refused: they time out sooner.
fn refusing(js: &Context) -> Context {
    let mut js = js.clone();
    js.set_timeout(REFUSED_TIMEOUT);
    js
}

/// The service in-process, as `serve` wires it, connected as the `provisioner` user.
struct Service(common::provisioner::RunningService);

impl Service {
    async fn start(
        url: &str,
        admin: &async_nats::Client,
        js_domain: Option<&str>,
        operator: Option<Operator>,
    ) -> Service {
        let connect = ConnectArgs {
            server: Some(url.to_string()),
            user: Some("provisioner".into()),
            password: Some(PASSWORD.into()),
            js_domain: js_domain.map(str::to_string),
            ..Default::default()
        };
        let setup = ServiceSetup {
            operator,
            ..ServiceSetup::new(common::resolved(&connect))
        };
        Service(common::provisioner::start(setup, admin).await)
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

/// A service reply: the error code (`None` for success) and the JSON body.
async fn call(client: &async_nats::Client, subject: &str, body: &str) -> (Option<u16>, Value) {
    let reply = client
        .request(subject.to_string(), body.to_string().into())
        .await
        .unwrap_or_else(|e| panic!("request to {subject}: {e}"));
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR_CODE))
        .and_then(|v| v.as_str().parse().ok());
    let body = serde_json::from_slice(&reply.payload).expect("a JSON reply");
    (code, body)
}

/// A provisioning reply matches `schemas/provision_response.json`.
fn assert_reply_schema(body: &Value) {
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/provision_response.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    assert!(
        validator.is_valid(body),
        "not as schemas/provision_response.json: {body}"
    );
}

/// `name → action` of a provisioning reply.
fn actions_by_name(body: &Value) -> Vec<(String, String)> {
    body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r["action"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The operator
// ---------------------------------------------------------------------------

/// What the operator of each version names its stream, consumers and descriptions
/// (`shared/spec/resources.md` §6, read from wasmcloud-operator v0.4.2 / v0.5.1).
struct OperatorNames {
    version: Operator,
    stream: &'static str,
    consumer_prefix: &'static str,
    description: &'static str,
    consumer_description: &'static str,
}

const OPERATORS: [OperatorNames; 2] = [
    OperatorNames {
        version: Operator::V0_4,
        stream: "wasmcloud_operator_events",
        consumer_prefix: "wasmcloud_operator_service",
        description: "Stream for wadm events consumed by the wasmCloud K8s Operator",
        consumer_description: "Consumer created by the wasmCloud K8s Operator to watch for new service endpoints in wadm manifests",
    },
    OperatorNames {
        version: Operator::V0_5,
        stream: "wadm_operator_events",
        consumer_prefix: "wadm_operator_service",
        description: "Stream for wadm events consumed by the wadm K8s Operator",
        consumer_description: "Consumer created by the wadm K8s Operator to watch for new service endpoints in wadm manifests",
    },
];

impl OperatorNames {
    /// The stream config the operator passes to `get_or_create_stream`.
    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.to_string(),
            description: Some(self.description.to_string()),
            max_age: Duration::from_secs(70),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            allow_rollup: false,
            num_replicas: 1,
            mirror: Some(stream::Source {
                name: "wadm_events".to_string(),
                subject_transforms: vec![stream::SubjectTransform {
                    source: "wadm.evt.*.>".to_string(),
                    destination: format!("{}.{{{{wildcard(1)}}}}.>", self.stream),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn consumer_name(&self, lattice: &str) -> String {
        format!("{}-{lattice}", self.consumer_prefix)
    }

    /// The consumer config the operator passes to `get_or_create_consumer`.
    fn consumer_config(&self, lattice: &str) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.consumer_name(lattice)),
            description: Some(self.consumer_description.to_string()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            max_deliver: 3,
            deliver_policy: consumer::DeliverPolicy::All,
            filter_subject: format!("{}.{lattice}.>", self.stream),
            ..Default::default()
        }
    }

    fn user(&self) -> String {
        format!("operator-{}", self.version.as_str().replace('.', ""))
    }
}

/// What the operator does with its stream for one lattice, as its user: bind the stream,
/// bind (create) its consumer, receive a wadm event and ack it; then every way to create,
/// change or delete a stream is refused.
async fn operator_workload(
    server: &NatsServer,
    admin: &async_nats::Client,
    wadm: &async_nats::Client,
    op: &OperatorNames,
    user: &str,
) {
    let l = "default";
    let client = connect_as(&server.url(), user).await;
    let js = js_of(&client, None);
    let mut stream = js
        .get_or_create_stream(op.stream_config())
        .await
        .unwrap_or_else(|e| panic!("{} binds {}: {e}", user, op.stream));
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&op.consumer_name(l), op.consumer_config(l))
        .await
        .unwrap_or_else(|e| panic!("{} creates its consumer: {e}", user));
    // A restart binds the existing consumer (CONSUMER.INFO).
    let again: consumer::PullConsumer = stream
        .get_or_create_consumer(&op.consumer_name(l), op.consumer_config(l))
        .await
        .expect("the operator binds its existing consumer");
    assert_eq!(again.cached_info().name, op.consumer_name(l));
    stream
        .info()
        .await
        .expect("the operator reads its stream's info");

    // wadm publishes an event; the mirror puts it under `<stream>.<l>.>`. (Each operator
    // stream mirrors every event, so the other version's event is there too.)
    let event = format!("manifest_published_{}", user.replace('-', "_"));
    let wadm_js = js_of(wadm, None);
    wadm_js
        .publish(format!("wadm.evt.{l}.{event}"), "{}".into())
        .await
        .expect("wadm publishes")
        .await
        .expect("wadm_events stores the event");
    let mut messages = consumer.messages().await.expect("the operator pulls");
    let want = format!("{}.{l}.{event}", op.stream);
    let mut received = Vec::new();
    let mut acked = Vec::new();
    while !received.contains(&want) {
        let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .unwrap_or_else(|_| panic!("{want} never reached the operator; got {received:?}"))
            .expect("message stream open")
            .expect("a message");
        let sequence = message.info().expect("a JetStream message").stream_sequence;
        message.ack().await.expect("ack");
        received.push(message.subject.to_string());
        acked.push(sequence);
    }
    drop(messages);
    // The acks were accepted: the work queue drops the events.
    let admin_js = js_of(admin, None);
    common::eventually(
        "the acked events leave the work queue",
        Duration::from_secs(15),
        || {
            let admin_js = admin_js.clone();
            let acked = acked.clone();
            async move {
                let s = admin_js
                    .get_stream(op.stream)
                    .await
                    .map_err(|e| e.to_string())?;
                for seq in acked {
                    if s.get_raw_message(seq).await.is_ok() {
                        return Err(format!("{} still holds {seq}", op.stream));
                    }
                }
                Ok(())
            }
        },
    )
    .await;

    // Everything else is refused, and nothing changed as an admin sees it.
    let js = refusing(&js);
    let intruder = format!("intruder_{}", user.replace('-', "_"));
    let mut changed = op.stream_config();
    changed.max_age = Duration::from_secs(1);
    let (created, updated, deleted, purged, info) = tokio::join!(
        js.create_stream(stream::Config {
            name: intruder.clone(),
            subjects: vec![format!("{intruder}.>")],
            ..Default::default()
        }),
        js.update_stream(changed),
        js.delete_stream(op.stream),
        async {
            js.get_stream_no_info(op.stream)
                .await
                .expect("bind")
                .purge()
                .await
        },
        js.query_account(),
    );
    assert!(created.is_err(), "{} created a stream", user);
    assert!(updated.is_err(), "{} updated its stream", user);
    assert!(deleted.is_err(), "{} deleted its stream", user);
    assert!(purged.is_err(), "{} purged its stream", user);
    assert!(info.is_err(), "{} read $JS.API.INFO", user);
    assert!(admin_js.get_stream(&intruder).await.is_err());
    let mut kept = admin_js.get_stream(op.stream).await.expect("still there");
    let kept = kept.info().await.expect("info");
    assert_eq!(kept.config.max_age, Duration::from_secs(70));
    assert_eq!(
        kept.config.mirror.as_ref().map(|m| m.name.as_str()),
        Some("wadm_events")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binds_its_stream_and_consumer_and_receives_wadm_events() {
    let none = PlatformOptions::default();
    let mut users = vec![
        ("admin", String::new()),
        (
            "provisioner",
            conf(Role::Provisioner, &options(&[], None), none),
        ),
        ("wadm", conf(Role::Wadm, &options(&[], None), none)),
    ];
    let operator_users: Vec<(String, String)> = OPERATORS
        .iter()
        .map(|op| {
            let platform = PlatformOptions {
                via_leaf: false,
                operator: Some(op.version),
            };
            (
                op.user(),
                conf(Role::Operator, &options(&["default"], None), platform),
            )
        })
        .collect();
    for (name, block) in &operator_users {
        users.push((name.as_str(), block.clone()));
    }
    let server = NatsServer::start_with(ServerOptions {
        extra_config: accounts(&users),
        ..ServerOptions::default()
    });
    let admin = connect_as(&server.url(), "admin").await;
    let wadm = connect_as(&server.url(), "wadm").await;
    // `serve --operator 0.4`: wadm's requests also cover the 0.4 stream.
    let service = Service::start(&server.url(), &admin, None, Some(Operator::V0_4)).await;

    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", "").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(body["operator"], "0.4");
    assert_reply_schema(&body);
    let done = actions_by_name(&body);
    assert!(
        done.contains(&("wasmcloud_operator_events".into(), "created".into())),
        "{done:?}"
    );
    assert!(!done.iter().any(|(n, _)| n == "wadm_operator_events"));
    // A request names the other version.
    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", r#"{"operator":"0.5"}"#).await;
    assert_eq!(code, None, "{body}");
    assert_eq!(body["operator"], "0.5");
    let done = actions_by_name(&body);
    assert!(
        done.contains(&("wadm_operator_events".into(), "created".into())),
        "{done:?}"
    );
    assert!(done
        .iter()
        .all(|(n, a)| n == "wadm_operator_events" || a == "exists"));
    // An unknown version: a clear 400, and nothing is created.
    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", r#"{"operator":"0.6"}"#).await;
    assert_eq!(code, Some(400), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/operator") && message.contains("\"0.4\""),
        "{message}"
    );
    // Status shows the stream; the serve default applies there too.
    let (code, body) = call(&admin, "wasmcloud.provision.status", r#"{"wadm":true}"#).await;
    assert_eq!(code, None, "{body}");
    assert!(actions_by_name(&body).contains(&("wasmcloud_operator_events".into(), "exists".into())));

    let admin_js = js_of(&admin, None);
    for op in &OPERATORS {
        let mut s = admin_js.get_stream(op.stream).await.expect("created");
        let info = s.info().await.expect("info").clone();
        let mut source = admin_js
            .get_stream("wadm_events")
            .await
            .expect("wadm_events");
        let source = source.info().await.expect("info").clone();
        // Created after the stream it mirrors.
        assert!(
            info.created >= source.created,
            "{} before wadm_events",
            op.stream
        );
        assert!(info.config.subjects.is_empty());
        // The operator's own create of it, racing the provisioner, would be accepted as
        // identical: the catalog holds the config exactly as the server normalizes it.
        admin_js
            .create_stream(op.stream_config())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the operator's create of {} is not identical to the catalog's: {e}",
                    op.stream
                )
            });
        let row = catalog::operator_row(op.version);
        assert_eq!(row.name, op.stream);
    }

    // A wadm API stand-in: the operator's calls reach it, others are refused.
    let mut api = admin
        .subscribe("wadm.api.default.model.>")
        .await
        .expect("subscribe");
    let responder = admin.clone();
    tokio::spawn(async move {
        while let Some(m) = api.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "{\"result\":\"ok\"}".into()).await;
            }
        }
    });
    admin.flush().await.expect("flush");
    let operator = connect_as(&server.url(), &OPERATORS[0].user()).await;
    for subject in [
        "wadm.api.default.model.list",
        "wadm.api.default.model.get.app",
        "wadm.api.default.model.status.app",
        "wadm.api.default.model.put",
        "wadm.api.default.model.deploy.app",
        "wadm.api.default.model.del.app",
    ] {
        operator
            .request(subject, "{}".into())
            .await
            .unwrap_or_else(|e| panic!("the operator calls {subject}: {e}"));
    }
    let refused = [
        "wadm.api.default.model.undeploy.app",
        "wadm.api.other.model.list",
    ];
    let results =
        futures::future::join_all(refused.iter().map(|s| operator.request(*s, "{}".into()))).await;
    for (subject, result) in refused.iter().zip(results) {
        assert!(result.is_err(), "the operator called {subject}");
    }

    let operator_users: Vec<String> = OPERATORS.iter().map(OperatorNames::user).collect();
    futures::future::join_all(
        OPERATORS
            .iter()
            .zip(&operator_users)
            .map(|(op, user)| operator_workload(&server, &admin, &wadm, op, user)),
    )
    .await;
    service.stop().await;
}

// ---------------------------------------------------------------------------
// Hosts behind a leaf node
// ---------------------------------------------------------------------------

/// The hub's JetStream domain, as in the wasmcloud-platform chart.
const HUB_DOMAIN: &str = "default";

/// `prefix.0` … `prefix.<n-1>`.
fn names(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix}.{i}")).collect()
}

/// Keys written into LATTICEDATA during the burst, and their size: 600 × 10 KiB ≈ 6 MB.
const BURST_KEYS: usize = 600;
const BURST_VALUE: usize = 10 * 1024;
/// Into CONFIGDATA: ≈ 1 MB, so that both watches see flow control.
const CONFIG_BURST_KEYS: usize = 100;

/// Collects the keys a watch delivers until it saw every one of `want` (or the deadline).
async fn watch_until(
    mut watch: async_nats::jetstream::kv::Watch,
    want: BTreeSet<String>,
    deadline: Duration,
) -> Result<usize, String> {
    let mut seen = BTreeSet::new();
    let until = Instant::now() + deadline;
    while !want.is_subset(&seen) {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, watch.next()).await {
            Ok(Some(Ok(entry))) => {
                seen.insert(entry.key);
            }
            Ok(Some(Err(e))) => return Err(format!("watch error: {e}")),
            Ok(None) => return Err("the watch ended".into()),
            Err(_) => {
                return Err(format!(
                    "the watch stalled: {} of {} keys",
                    want.intersection(&seen).count(),
                    want.len()
                ))
            }
        }
    }
    Ok(seen.len())
}

/// Writes `n` keys of [`BURST_VALUE`] bytes as fast as the hub takes them.
async fn burst(kv: &async_nats::jetstream::kv::Store, prefix: &str, n: usize) {
    let value = bytes::Bytes::from(vec![b'x'; BURST_VALUE]);
    futures::stream::iter(0..n)
        .map(|i| {
            let kv = kv.clone();
            let value = value.clone();
            async move {
                kv.put(format!("{prefix}.{i}"), value)
                    .await
                    .unwrap_or_else(|e| panic!("admin put {prefix}.{i}: {e}"))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
}

/// Everything a v1.9 host does, through a leaf node whose remote authenticates on the hub
/// as `leaf_user`: the host connects to the leaf without credentials and uses JetStream in
/// the hub's domain. Returns the leaf, still running.
async fn host_workload_through_leaf(
    admin: &async_nats::Client,
    leaf_port: u16,
    leaf_user: &str,
) -> LeafServer {
    let hub_domain = HUB_DOMAIN;
    let leaf = LeafServer::start(LeafOptions::new(leaf_port, leaf_user, PASSWORD));
    // The host: on the leaf, no credentials, JetStream in the hub's domain.
    let host = common::connect_with(
        &leaf.url(),
        async_nats::ConnectOptions::new()
            .name("host")
            .request_timeout(Some(Duration::from_secs(5))),
    )
    .await;

    // 1. Bootstrap through the leaf: the provisioner on the hub creates the buckets. The
    //    leaf learns the hub's interest asynchronously: retried until it answers.
    let host_key = nkeys::KeyPair::new_server();
    let reply = common::eventually(
        "the bootstrap through the leaf",
        Duration::from_secs(20),
        || host::request_bootstrap(&host, &host_key, "default", Some("1.9.2")),
    )
    .await;
    assert_eq!(reply.lattice, "default");
    assert_eq!(reply.js_domain.as_deref(), Some(hub_domain));

    // 2. KV bind (STREAM.INFO) and watches of both buckets, as the host does at start.
    let js = js_of(&host, Some(hub_domain));
    let lattice_kv = js
        .get_key_value("LATTICEDATA_default")
        .await
        .expect("the host binds LATTICEDATA through the leaf");
    let config_kv = js
        .get_key_value("CONFIGDATA_default")
        .await
        .expect("the host binds CONFIGDATA through the leaf");
    let lattice_watch = lattice_kv.watch_all().await.expect("watch LATTICEDATA");
    let config_watch = config_kv.watch_all().await.expect("watch CONFIGDATA");

    // 3. A burst from the hub side: every key reaches the watchers on the leaf, which
    //    needs their flow-control replies to cross the leaf.
    let admin_js = js_of(admin, None);
    let hub_lattice = admin_js
        .get_key_value("LATTICEDATA_default")
        .await
        .expect("admin binds");
    let hub_config = admin_js
        .get_key_value("CONFIGDATA_default")
        .await
        .expect("admin binds");
    let started = Instant::now();
    let watching = tokio::spawn(watch_until(
        lattice_watch,
        names("burst", BURST_KEYS),
        Duration::from_secs(60),
    ));
    let watching_config = tokio::spawn(watch_until(
        config_watch,
        names("burst", CONFIG_BURST_KEYS),
        Duration::from_secs(60),
    ));
    tokio::join!(
        burst(&hub_lattice, "burst", BURST_KEYS),
        burst(&hub_config, "burst", CONFIG_BURST_KEYS)
    );
    let written = started.elapsed();
    let seen = watching
        .await
        .expect("watch task")
        .expect("LATTICEDATA watch");
    let seen_config = watching_config
        .await
        .expect("watch task")
        .expect("CONFIGDATA watch");
    eprintln!(
        "burst: {BURST_KEYS} + {CONFIG_BURST_KEYS} keys of {BURST_VALUE} B written in {written:?}, \
         all seen on the leaf after {:?} ({seen} + {seen_config} keys)",
        started.elapsed()
    );

    // 4. Put, get, purge (a key delete) by the host through the leaf.
    for kv in [&lattice_kv, &config_kv] {
        kv.put("host.key", "v1".into()).await.expect("put");
        assert_eq!(
            kv.get("host.key").await.expect("get").as_deref(),
            Some(&b"v1"[..])
        );
        kv.purge("host.key").await.expect("purge");
        assert_eq!(kv.get("host.key").await.expect("get after purge"), None);
    }

    // 5. Events from the host reach the hub.
    let mut events = admin
        .subscribe("wasmbus.evt.default.>")
        .await
        .expect("subscribe");
    admin.flush().await.expect("flush");
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        host.publish("wasmbus.evt.default.host_heartbeat", "{}".into())
            .await
            .expect("publish");
        host.flush().await.expect("flush");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
            break m;
        }
        assert!(Instant::now() < deadline, "no host event reached the hub");
    };
    assert_eq!(event.subject.as_str(), "wasmbus.evt.default.host_heartbeat");

    // 6. Control requests from the hub, answered by the host on the leaf.
    answer_control_requests(&host, "default").await;
    let pong = common::eventually(
        "a control request answered on the leaf",
        Duration::from_secs(20),
        || admin.request("wasmbus.ctl.v1.default.host.ping", "ping".into()),
    )
    .await;
    assert_eq!(pong.payload.as_ref(), b"pong");

    // 7. Creates, updates, deletes and purges through the leaf are refused (silently:
    //    they time out), and an admin sees nothing changed.
    let before = admin_js
        .get_stream("KV_LATTICEDATA_default")
        .await
        .expect("info")
        .cached_info()
        .clone();
    let mut changed = before.config.clone();
    changed.max_bytes = 1024 * 1024;
    let js = refusing(&js);
    let (created, recreated, updated, deleted, purged, info) = tokio::join!(
        js.create_stream(stream::Config {
            name: "intruder_leaf".into(),
            subjects: vec!["intruder.>".into()],
            ..Default::default()
        }),
        js.create_stream(stream::Config {
            name: "KV_CONFIGDATA_default".into(),
            subjects: vec!["intruder.>".into()],
            ..Default::default()
        }),
        js.update_stream(changed),
        js.delete_stream("KV_CONFIGDATA_default"),
        async {
            js.get_stream_no_info("KV_LATTICEDATA_default")
                .await
                .expect("bind")
                .purge()
                .await
        },
        js.query_account(),
    );
    assert!(
        created.is_err(),
        "the host created a stream through the leaf"
    );
    assert!(recreated.is_err(), "the host re-created a bucket");
    assert!(updated.is_err(), "the host updated a bucket");
    assert!(deleted.is_err(), "the host deleted a bucket");
    assert!(purged.is_err(), "the host purged a bucket");
    assert!(info.is_err(), "the host read $JS.default.API.INFO");
    assert!(admin_js.get_stream("intruder_leaf").await.is_err());
    let after = admin_js
        .get_stream("KV_LATTICEDATA_default")
        .await
        .expect("still there")
        .cached_info()
        .clone();
    assert_eq!(after.config.max_bytes, before.config.max_bytes);
    assert_eq!(after.state.messages, before.state.messages);
    assert!(after.state.messages >= BURST_KEYS as u64);
    let config = admin_js
        .get_stream("KV_CONFIGDATA_default")
        .await
        .expect("CONFIGDATA still there")
        .cached_info()
        .clone();
    assert_eq!(config.config.subjects, vec!["$KV.CONFIGDATA_default.>"]);

    leaf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_behind_a_leaf_works_with_the_via_leaf_template() {
    let hub_domain = HUB_DOMAIN;
    let none = PlatformOptions::default();
    let via_leaf = PlatformOptions {
        via_leaf: true,
        operator: None,
    };
    let users = [
        ("admin", String::new()),
        (
            "provisioner",
            conf(Role::Provisioner, &options(&[], Some(hub_domain)), none),
        ),
        // `permissions --role host --lattice default --js-domain default --via-leaf`
        (
            "leaf-host",
            conf(
                Role::Host,
                &options(&["default"], Some(hub_domain)),
                via_leaf,
            ),
        ),
        // Today's template without --via-leaf, for lattice `old`: to see it fail.
        (
            "leaf-old",
            conf(Role::Host, &options(&["old"], Some(hub_domain)), none),
        ),
    ];
    let leaf_port = common::free_port();
    let hub = NatsServer::start_with(ServerOptions {
        js_domain: Some(hub_domain.into()),
        extra_config: format!("{}\n{}", leaf::hub_listener(leaf_port), accounts(&users)),
        ..ServerOptions::default()
    });
    let admin = connect_as(&hub.url(), "admin").await;
    let service = Service::start(&hub.url(), &admin, Some(hub_domain), None).await;
    let leaf = host_workload_through_leaf(&admin, leaf_port, "leaf-host").await;
    let admin_js = js_of(&admin, None);

    // 8. Today's template without --via-leaf, through its own leaf: the control reply
    //    never reaches the hub (no violation is logged: the leaf drops it).
    let old_leaf = LeafServer::start(LeafOptions::new(leaf_port, "leaf-old", PASSWORD));
    let old_host = common::connect(&old_leaf.url()).await;
    let received = answer_control_requests(&old_host, "old").await;
    let mut timeouts = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while timeouts < 2 {
        let result = tokio::time::timeout(
            Duration::from_secs(1),
            admin.request("wasmbus.ctl.v1.old.host.ping", "ping".into()),
        )
        .await;
        match result {
            // Interest not yet known on the hub: no responders, try again.
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            Ok(Ok(m)) => panic!(
                "a reply crossed the leaf without --via-leaf: {:?}",
                m.payload
            ),
            // Delivered to the host, its reply dropped at the leaf.
            Ok(Err(_)) | Err(_) => timeouts += 1,
        }
        assert!(
            Instant::now() < deadline,
            "the control request never reached the host behind the old leaf"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::eventually(
        "the host behind the old leaf receives the requests it cannot answer",
        Duration::from_secs(10),
        || {
            let n = received.load(Ordering::SeqCst);
            async move {
                if n >= 2 {
                    Ok(())
                } else {
                    Err(n)
                }
            }
        },
    )
    .await;
    // Its KV watch stalls partway through the burst: the flow-control replies are dropped
    // at the leaf too. (Bootstrap and bind work: those replies travel hub → leaf.)
    let old_key = nkeys::KeyPair::new_server();
    common::eventually(
        "the bootstrap through the old leaf",
        Duration::from_secs(20),
        || host::request_bootstrap(&old_host, &old_key, "old", Some("1.9.2")),
    )
    .await;
    let old_kv = js_of(&old_host, Some(hub_domain))
        .get_key_value("LATTICEDATA_old")
        .await
        .expect("the bind works without --via-leaf");
    let old_watch = old_kv.watch_all().await.expect("watch");
    let stalled = tokio::spawn(watch_until(
        old_watch,
        names("burst", BURST_KEYS),
        Duration::from_secs(5),
    ));
    let hub_old = admin_js
        .get_key_value("LATTICEDATA_old")
        .await
        .expect("admin binds");
    burst(&hub_old, "burst", BURST_KEYS).await;
    let outcome = stalled.await.expect("watch task");
    eprintln!("without --via-leaf: {outcome:?}");
    assert!(
        outcome.as_ref().is_err_and(|e| e.contains("stalled")),
        "the watch behind the old leaf kept up without flow-control replies: {outcome:?}"
    );
    // Silently: neither server logs a violation for what the leaf dropped.
    for (who, log) in [("hub", hub.log()), ("leaf", old_leaf.log())] {
        let violations = common::permission_violations(&log);
        assert!(violations.is_empty(), "the {who} logged {violations:?}");
    }

    service.stop().await;
    drop(leaf);
}

/// The wasmcloud-platform chart's one secret: the hosts' leaf links and the operator are one
/// user, `permissions --role host --role operator --operator 0.4 --js-domain default
/// --via-leaf`. The host's whole workload through a leaf and the operator's on the hub both
/// work with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_shared_user_serves_the_leaf_links_and_the_operator() {
    let op = &OPERATORS[0];
    let shared = PlatformOptions {
        via_leaf: true,
        operator: Some(op.version),
    };
    let users = [
        ("admin", String::new()),
        (
            "provisioner",
            conf(
                Role::Provisioner,
                &options(&[], Some(HUB_DOMAIN)),
                PlatformOptions::default(),
            ),
        ),
        (
            "platform",
            permissions::template_union(
                &[Role::Host, Role::Operator],
                &options(&["default"], Some(HUB_DOMAIN)),
                shared,
            )
            .expect("union")
            .to_conf(),
        ),
    ];
    let leaf_port = common::free_port();
    let hub = NatsServer::start_with(ServerOptions {
        js_domain: Some(HUB_DOMAIN.into()),
        extra_config: format!("{}\n{}", leaf::hub_listener(leaf_port), accounts(&users)),
        ..ServerOptions::default()
    });
    let admin = connect_as(&hub.url(), "admin").await;
    let service = Service::start(&hub.url(), &admin, Some(HUB_DOMAIN), Some(op.version)).await;
    let (code, body) = call(&admin, "wasmcloud.provision.wadm", "").await;
    assert_eq!(code, None, "{body}");
    assert!(actions_by_name(&body).contains(&(op.stream.into(), "created".into())));
    let leaf = host_workload_through_leaf(&admin, leaf_port, "platform").await;
    // The operator connects to the hub directly, without a domain, with the same user.
    operator_workload(&hub, &admin, &admin, op, "platform").await;
    service.stop().await;
    drop(leaf);
}

/// Answers every control request of the lattice with `pong`, as a host does; counts them.
async fn answer_control_requests(host: &async_nats::Client, lattice: &str) -> Arc<AtomicUsize> {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let mut control = host
        .subscribe(format!("wasmbus.ctl.v1.{lattice}.>"))
        .await
        .expect("subscribe to the control interface");
    host.flush().await.expect("flush");
    let responder = host.clone();
    tokio::spawn(async move {
        while let Some(m) = control.next().await {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "pong".into()).await;
                let _ = responder.flush().await;
            }
        }
    });
    received
}

#[test]
fn the_templates_the_tests_load_are_the_cli_output() {
    // What `permissions --role host --role operator --via-leaf` prints is the union the
    // README documents for the chart's shared secret: it holds both tested templates.
    let o = options(&["default"], Some("default"));
    let platform = PlatformOptions {
        via_leaf: true,
        operator: Some(Operator::V0_4),
    };
    let both =
        permissions::template_union(&[Role::Host, Role::Operator], &o, platform).expect("union");
    for role in [Role::Host, Role::Operator] {
        let one = permissions::template_for(role, &o, platform).expect("template");
        for s in &one.permissions.publish.allow {
            assert!(both.permissions.publish.allow.contains(s), "{s}");
        }
        for s in &one.permissions.subscribe.allow {
            assert!(both.permissions.subscribe.allow.contains(s), "{s}");
        }
    }
    let out = common::provisioner_command()
        .args([
            "permissions",
            "--role",
            "host",
            "--role",
            "operator",
            "--lattice",
            "default",
            "--js-domain",
            "default",
            "--via-leaf",
            "--operator",
            "0.4",
            "--format",
            "json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: permissions::Permissions =
        serde_json::from_slice(&out.stdout).expect("JSON permissions");
    assert_eq!(printed, both.permissions);

    // `--format nsc` for the operator alone: every rule once per command, no response
    // permission.
    let out = common::provisioner_command()
        .args([
            "permissions",
            "--role",
            "operator",
            "--operator",
            "0.5",
            "--format",
            "nsc",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nsc = String::from_utf8_lossy(&out.stdout);
    let operator = permissions::template_for(
        Role::Operator,
        &options(&[], None),
        PlatformOptions {
            via_leaf: false,
            operator: Some(Operator::V0_5),
        },
    )
    .expect("template");
    assert!(
        nsc.contains("nsc add user --name wasmcloud-operator"),
        "{nsc}"
    );
    for s in &operator.permissions.publish.allow {
        assert_eq!(nsc.matches(&format!("--allow-pub '{s}'")).count(), 2, "{s}");
    }
    for s in &operator.permissions.publish.deny {
        assert_eq!(nsc.matches(&format!("--deny-pub '{s}'")).count(), 2, "{s}");
    }
    assert!(!nsc.contains("--allow-pub-response"), "{nsc}");
}

/// Runs the provisioner binary against `url`; returns the exit code and the JSON report.
fn cli(url: &str, args: &[&str]) -> (i32, Value) {
    let out = common::provisioner_command()
        .args(["--server", url])
        .args(args)
        .arg("--json")
        .output()
        .expect("run the provisioner");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// `apply`/`plan --wadm --operator <v>`: the stream after wadm's, idempotent, and a copy
/// that would break the operator reported as drift and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_plan_with_operator_and_its_drift() {
    let server = NatsServer::start();
    let url = server.url();
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 2, "{report}");
    let names: Vec<String> = actions_by_name(&report)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("wadm_operator_events")
    );
    let (code, report) = cli(&url, &["apply", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 0, "{report}");
    assert!(actions_by_name(&report).iter().all(|(_, a)| a == "created"));
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 0, "{report}");
    assert!(actions_by_name(&report).iter().all(|(_, a)| a == "exists"));

    // The 0.4 stream made by hand as a limits stream without the transform: the operator
    // would bind it and receive nothing.
    let admin = common::connect(&url).await;
    let js = js_of(&admin, None);
    js.create_stream(stream::Config {
        name: "wasmcloud_operator_events".into(),
        mirror: Some(stream::Source {
            name: "wadm_events".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("create by hand");
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.4"]);
    assert_eq!(code, 3, "{report}");
    let resource = report["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "wasmcloud_operator_events")
        .expect("reported")
        .clone();
    assert_eq!(resource["action"], "drift");
    let fields: Vec<&str> = resource["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .map(|f| {
            assert_eq!(f["breaks"], "operator");
            f["field"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(fields, vec!["retention", "mirror"]);
    let (code, _) = cli(&url, &["apply", "--wadm", "--operator", "0.4"]);
    assert_eq!(code, 3);
    // The status endpoint reports the same drift, in its schema.
    let service = common::provisioner::spawn(&url, Default::default()).await;
    let (code, body) = call(
        &admin,
        "wasmcloud.provision.status",
        r#"{"wadm":true,"operator":"0.4"}"#,
    )
    .await;
    assert_eq!(code, None, "{body}");
    assert!(actions_by_name(&body).contains(&("wasmcloud_operator_events".into(), "drift".into())));
    assert_reply_schema(&body);
    // Applying through the service: 409, the stream left as it is.
    let (code, body) = call(&admin, "wasmcloud.provision.wadm", r#"{"operator":"0.4"}"#).await;
    assert_eq!(code, Some(409), "{body}");
    service.shutdown().await.expect("serve() returns Ok");
    let mut kept = js
        .get_stream("wasmcloud_operator_events")
        .await
        .expect("kept");
    let kept = kept.info().await.expect("info");
    assert_eq!(kept.config.retention, stream::RetentionPolicy::Limits);
    // --operator without --wadm is a usage error.
    let out = common::provisioner_command()
        .args(["--server", &url, "apply", "--operator", "0.4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

/// `creds --role host --role operator --via-leaf …`: the `.creds` file for the chart's one
/// secret carries exactly the union of both templates.
#[test]
fn creds_for_the_shared_leaf_and_operator_user_carry_the_union() {
    let dir = tempfile::tempdir().expect("temp dir");
    let account = nkeys::KeyPair::new_account();
    let seed_file = dir.path().join("account.nk");
    std::fs::write(&seed_file, account.seed().expect("seed")).expect("write seed");
    let out_file = dir.path().join("leaf.creds");
    let out = common::provisioner_command()
        .args([
            "creds",
            "--role",
            "host",
            "--role",
            "operator",
            "--operator",
            "0.4",
            "--lattice",
            "default",
            "--js-domain",
            "default",
            "--via-leaf",
            "--account-seed",
        ])
        .arg(&seed_file)
        .arg("--out")
        .arg(&out_file)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("user wasmcloud-host-operator"), "{stdout}");
    let text = std::fs::read_to_string(&out_file).expect("creds written");
    let jwt = text
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT");
    let claims = wasmcloud_provisioner::creds::decode_jwt(jwt).expect("decode");
    let want = permissions::template_union(
        &[Role::Host, Role::Operator],
        &options(&["default"], Some("default")),
        PlatformOptions {
            via_leaf: true,
            operator: Some(Operator::V0_4),
        },
    )
    .expect("union")
    .permissions;
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let nats = &claims["nats"];
    assert_eq!(list(&nats["pub"]["allow"]), want.publish.allow);
    assert_eq!(list(&nats["pub"]["deny"]), want.publish.deny);
    assert_eq!(list(&nats["sub"]["allow"]), want.subscribe.allow);
    assert!(
        nats.get("resp").is_none() || nats["resp"].is_null(),
        "{nats}"
    );
}

/// `serve` with `WASMCLOUD_PROVISIONER_OPERATOR=0.5` (the `--operator` flag's variable, as
/// a Kubernetes ConfigMap sets it): wadm requests cover the 0.5 stream, and discovery says
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_an_operator_default_from_the_environment() {
    let server = NatsServer::start();
    let _serve = KillOnDrop(
        common::provisioner_command()
            .args(["--server", &server.url(), "serve"])
            .env("WASMCLOUD_PROVISIONER_OPERATOR", "0.5")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start serve"),
    );
    let client = common::connect(&server.url()).await;
    let info = common::eventually(
        "the service is discoverable",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            async move {
                let m = client
                    .request(format!("$SRV.INFO.{SERVICE_NAME}"), "".into())
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::from_slice::<Value>(&m.payload).map_err(|e| e.to_string())
            }
        },
    )
    .await;
    assert_eq!(info["metadata"]["operator"], "0.5", "{info}");
    let (code, body) = call(&client, "wasmcloud.provision.wadm", "").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(body["operator"], "0.5");
    assert!(actions_by_name(&body).contains(&("wadm_operator_events".into(), "created".into())));
    // A request may name the other version instead.
    let (code, body) = call(&client, "wasmcloud.provision.wadm", r#"{"operator":"0.4"}"#).await;
    assert_eq!(code, None, "{body}");
    let names: Vec<String> = actions_by_name(&body).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"wasmcloud_operator_events".to_string()));
    assert!(!names.contains(&"wadm_operator_events".to_string()));
}

/// The `serve` process this test started, stopped however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `config check` lists the operator's streams with their settings like every resource:
/// a config file may set them per catalog key.
#[test]
fn config_check_lists_the_operator_streams() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("provisioner.toml");
    std::fs::write(
        &file,
        "[all]\nreplicas = 3\n\n[resources.wadm_operator_events]\nreplicas = 5\n",
    )
    .expect("write config");
    let out = common::provisioner_command()
        .args(["config", "check"])
        .arg(&file)
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let replicas = |key: &str| {
        report["resources"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["key"] == key))
            .map(|r| r["replicas"].clone())
            .unwrap_or_else(|| panic!("no {key} in {report:#}"))
    };
    assert_eq!(replicas("wasmcloud_operator_events"), 3);
    assert_eq!(replicas("wadm_operator_events"), 5);
}

/// `bootstrap operator`, run as the real binary with the least-privilege operator user
/// (an init container of the operator's Deployment): it asks for its lattice's buckets and
/// for wadm's resources with the operator's stream, and exits 0 once they exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_operator_with_the_operator_user_ensures_its_stream() {
    let none = PlatformOptions::default();
    let op = &OPERATORS[0];
    let platform = PlatformOptions {
        via_leaf: false,
        operator: Some(op.version),
    };
    let users = vec![
        ("admin", String::new()),
        (
            "provisioner",
            conf(Role::Provisioner, &options(&[], None), none),
        ),
        (
            "operator-04",
            conf(Role::Operator, &options(&["ops"], None), platform),
        ),
    ];
    let server = NatsServer::start_with(ServerOptions {
        extra_config: accounts(&users),
        ..ServerOptions::default()
    });
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let service = Service::start(&url, &admin, None, None).await;
    let out = common::provisioner_command()
        .args(["-s", &url, "--user", "operator-04", "--password", PASSWORD])
        .args(["bootstrap", "operator", "--lattice", "ops", "--operator"])
        .arg(op.version.as_str())
        .args(["--timeout", "60", "--json"])
        .output()
        .expect("run bootstrap operator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Two steps, so `--json` prints both replies by step.
    let reply: Value = serde_json::from_slice(&out.stdout).expect("--json prints the replies");
    assert_eq!(reply["lattice"]["lattice"], "ops", "{reply}");
    assert!(
        actions_by_name(&reply["wadm"])
            .iter()
            .any(|(name, action)| name == op.stream && action == "created"),
        "{reply}"
    );
    let js = js_of(&admin, None);
    for stream in [
        op.stream,
        "wadm_events",
        "KV_LATTICEDATA_ops",
        "KV_CONFIGDATA_ops",
    ] {
        assert!(js.get_stream(stream).await.is_ok(), "{stream} exists");
    }
    service.stop().await;
}
