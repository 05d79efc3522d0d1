//! Hosts behind a leaf node, and the chart's shared user.

use super::*;
use crate::operator::operator_workload;

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
        || request_bootstrap(&host, &host_key, "default", Some("1.9.2")),
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
    let service = Options::new()
        .user("provisioner", PASSWORD)
        .js_domain(Some(hub_domain))
        .start(&hub.url(), &admin)
        .await;
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
        || request_bootstrap(&old_host, &old_key, "old", Some("1.9.2")),
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
    let service = Options::new()
        .user("provisioner", PASSWORD)
        .js_domain(Some(HUB_DOMAIN))
        .operator(Some(op.version))
        .start(&hub.url(), &admin)
        .await;
    let (code, body) = call(&admin, "wasmcloud.provision.wadm", "").await.parts();
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
