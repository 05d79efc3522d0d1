//! Node failures and a restart of the provisioner's own server.

use super::*;

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_down_a_new_lattice_is_still_created_at_r3() {
    let _machine = MACHINE.read().await;
    let mut cluster = NatsCluster::start(3);
    let instance = start_instance(&cluster.client_url_all(), r3()).await;
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
    for (stream, r) in after.by_stream() {
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
        status.by_stream().values().all(|r| r["action"] == "exists"),
        "{status:?}"
    );
    let again = lattice(&client, json!({ "lattice": "before" })).await;
    assert!(
        again.by_stream().values().all(|r| r["action"] == "exists"),
        "{again:?}"
    );

    cluster.start_node(down);
    let back = lattice(&client, json!({ "lattice": "after" })).await;
    assert!(
        back.by_stream().values().all(|r| r["action"] == "exists"),
        "{back:?}"
    );
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_down_fail_fast_with_503_no_quorum_then_recover() {
    let _machine = MACHINE.read().await;
    let mut cluster = NatsCluster::start(3);
    // Provisioner and requester both on n1, which stays up.
    let instance = start_instance_with_js_timeout(&cluster.url(0), r3(), DEFAULT_JS_TIMEOUT).await;
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
        .by_stream()
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
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_comes_back_after_its_server_restarts() {
    let _machine = MACHINE.read().await;
    let mut server = NatsServer::start();
    let instance = start_instance(&server.url(), Settings::default()).await;
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
    assert!(exists.by_stream().values().all(|r| r["action"] == "exists"));
    let created = lattice(&client, json!({ "lattice": "after" })).await;
    assert!(
        created
            .by_stream()
            .values()
            .all(|r| r["action"] == "created"),
        "{created:?}"
    );
    assert!(instance.is_running());
    instance.stop().await;
}
