//! Replicas: created at R3 with the catalog's settings, R1 to R3 upgrades, a single server's 409.

use super::*;

// ---------------------------------------------------------------------------
// Replicas
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_created_at_r3_with_the_exact_catalog_settings() {
    let _machine = MACHINE.read().await;
    let cluster = NatsCluster::start(3);
    let instance = start_instance(&cluster.client_url_all(), r3()).await;
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;
    wait_discoverable(&client, 1).await;

    let reply = lattice(&client, json!({ "lattice": "prod" })).await;
    assert_eq!(reply.code, 200, "{reply:?}");
    let wadm = call(&client, "wasmcloud.provision.wadm", "").await;
    assert_eq!(wadm.code, 200, "{wadm:?}");
    for r in reply.by_stream().values().chain(wadm.by_stream().values()) {
        assert_eq!(r["action"], "created", "{r}");
        assert_eq!(r["replicas"], 3, "{r}");
        assert_eq!(r["desired_replicas"], 3, "{r}");
    }
    assert_eq!(reply.by_stream().len(), 2);
    assert_eq!(wadm.by_stream().len(), 6 + 2);

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
    assert!(again.by_stream().values().all(|r| r["action"] == "exists"));

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
    for (stream, r) in lower.by_stream() {
        assert_eq!(r["action"], "exists", "{r}");
        assert_eq!(r["replicas"], 3, "{r}");
        assert_eq!(r["desired_replicas"], 3, "{r}");
        let info = stream_info(&client, &stream).await.expect("still there");
        assert_eq!(info["config"]["num_replicas"], 3);
    }
    let new_low = lattice(&client, json!({ "lattice": "low", "replicas": 1 })).await;
    assert_eq!(new_low.code, 200, "{new_low:?}");
    for (stream, r) in new_low.by_stream() {
        assert_eq!(r["action"], "created", "{r}");
        let info = stream_info(&client, &stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream} at the floor");
    }
    instance.stop().await;

    // A request may raise replicas above the service's setting only where the operator
    // allows it (--max-request-replicas).
    let r1_service = start_instance(
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
    for (stream, r) in asked.by_stream() {
        assert_eq!(r["action"], "created", "{r}");
        let info = stream_info(&client, &stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream}");
        assert_eq!(peers(&info), 3, "{stream}");
    }
    let plain = lattice(&client, json!({ "lattice": "plain" })).await;
    assert!(
        plain.by_stream().values().all(|r| r["replicas"] == 1),
        "{plain:?}"
    );
    r1_service.stop().await;
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

    let instance = start_instance(&cluster.client_url_all(), r3()).await;
    wait_discoverable(&client, 1).await;
    let mut updated_events = client
        .subscribe("wasmcloud.provision.events.updated")
        .await
        .expect("subscribe to the audit events");
    client.flush().await.expect("flush");
    let reply = lattice(&client, json!({ "lattice": "big" })).await;
    assert_eq!(reply.code, 200, "{reply:?}");
    let upgraded = &reply.by_stream()["KV_LATTICEDATA_big"];
    assert_eq!(upgraded["action"], "updated", "{upgraded}");
    assert_eq!(upgraded["previous_replicas"], 1, "{upgraded}");
    assert_eq!(upgraded["replicas"], 3, "{upgraded}");
    assert_eq!(reply.by_stream()["KV_CONFIGDATA_big"]["action"], "created");

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
        again.by_stream().values().all(|r| r["action"] == "exists"),
        "{again:?}"
    );
    instance.stop().await;
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
    let instance = start_instance(&server.url(), settings).await;
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
    for r in plan.by_stream().values() {
        let notes = r["notes"].as_array().cloned().unwrap_or_default();
        assert!(
            notes
                .iter()
                .any(|n| n["why"].as_str().unwrap_or("").contains("not clustered")),
            "{r}"
        );
    }
    instance.stop().await;
}
