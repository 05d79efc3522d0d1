//! The catalog config is the one host 1.9 and wadm 0.21 create themselves.

use super::*;

// ---------------------------------------------------------------------------
// 2. Compatibility with what host and wadm create themselves
// ---------------------------------------------------------------------------

/// What wasmCloud host 1.9.2 does (`crates/host/src/nats/mod.rs::create_bucket`):
/// `create_key_value(kv::Config { bucket, ..Default::default() })`. With the default
/// config async-nats 0.39 (and 0.51) sends history 1, 1 replica, discard new, rollup,
/// deny delete and direct get.
async fn create_bucket_like_the_host(js: &jetstream::Context, bucket: &str) {
    js.create_key_value(kv::Config {
        bucket: bucket.to_string(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("host-style create of {bucket}: {e}"));
}

/// wadm 0.21.1 `crates/wadm/src/nats.rs`, with the defaults of `WadmConfig` (max_bytes -1,
/// file storage): the typed configs it sends, in the order `lib.rs::start_wadm` sends
/// them.
///
/// One exception, returned as `(stream, field)`: nats-server 2.10.28+/2.11.2+ refuse
/// multitenant wadm's `wasmbus_events` (`*.wasmbus.evt.*.>` overlaps `$JS.>`, error 10052)
/// unless it is `no_ack`, so wadm itself cannot start there. This creates it with wadm's
/// config plus `no_ack: true` then, as the catalog does; on an older server that accepts
/// wadm's exact config, `no_ack` is the one expected difference.
async fn create_like_wadm(js: &jetstream::Context, multitenant: bool) -> Vec<(String, String)> {
    let mut expected_differences = Vec::new();
    for bucket in ["wadm_state", "wadm_manifests"] {
        // ensure_kv_bucket(context, name, 1, -1, File)
        js.create_key_value(kv::Config {
            bucket: bucket.to_string(),
            history: 1,
            num_replicas: 1,
            storage: stream::StorageType::File,
            max_bytes: -1,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("wadm-style create of {bucket}: {e}"));
    }
    let expiry = Duration::from_secs(70); // wadm's DEFAULT_EXPIRY_TIME
    let base = |name: &str, description: &str, subjects: Vec<String>| stream::Config {
        name: name.to_string(),
        description: Some(description.to_string()),
        num_replicas: 1,
        subjects,
        max_age: expiry,
        allow_rollup: false,
        max_bytes: -1,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let create = |config: stream::Config| async move {
        let name = config.name.clone();
        js.get_or_create_stream(config)
            .await
            .unwrap_or_else(|e| panic!("wadm-style create of {name}: {e}"))
    };
    // ensure_limits_stream
    let event_stream = create(stream::Config {
        retention: stream::RetentionPolicy::Limits,
        ..base(
            "wadm_events",
            "A stream that stores all events coming in on the wadm.evt subject in a cluster",
            vec!["wadm.evt.*.>".into()],
        )
    })
    .await;
    // ensure_stream (work queue)
    create(stream::Config {
        retention: stream::RetentionPolicy::WorkQueue,
        ..base(
            "wadm_commands",
            "A stream that stores all commands for wadm",
            vec!["wadm.cmd.*".into()],
        )
    })
    .await;
    // ensure_status_stream
    create(stream::Config {
        name: "wadm_status".into(),
        description: Some("A stream that stores all status updates for wadm applications".into()),
        num_replicas: 1,
        allow_direct: true,
        retention: stream::RetentionPolicy::Limits,
        max_messages_per_subject: 10,
        subjects: vec!["wadm.status.*.*".into()],
        max_age: Duration::from_nanos(0),
        max_bytes: -1,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await;
    // ensure_limits_stream for wasmbus events
    let wasmbus_subject = if multitenant {
        "*.wasmbus.evt.*.>"
    } else {
        "wasmbus.evt.*.>"
    };
    let wasmbus_config = stream::Config {
        retention: stream::RetentionPolicy::Limits,
        ..base(
            "wasmbus_events",
            "A stream that stores all events coming in on the wasmbus.evt subject in a cluster",
            vec![wasmbus_subject.into()],
        )
    };
    let wasmbus_stream = match js.get_or_create_stream(wasmbus_config.clone()).await {
        Ok(stream) => {
            if multitenant {
                expected_differences.push(("wasmbus_events".to_string(), "no_ack".to_string()));
            }
            stream
        }
        Err(e) if multitenant && e.to_string().contains("10052") => {
            create(stream::Config {
                no_ack: true,
                ..wasmbus_config
            })
            .await
        }
        Err(e) => panic!("wadm-style create of wasmbus_events: {e}"),
    };
    // ensure_notify_stream
    create(stream::Config {
        name: "wadm_notify".into(),
        description: Some("A stream for capturing all notification events for wadm".into()),
        num_replicas: 1,
        retention: stream::RetentionPolicy::Interest,
        subjects: vec!["wadm.notify.*".into()],
        max_age: expiry,
        max_bytes: -1,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await;
    // ensure_event_consumer_stream: sources built from the cached infos of
    // [wasmbus_events, wadm_events], in that order.
    let consumer_subject = "wadm_event_consumer.evt.*.>";
    let sources = [
        wasmbus_stream.cached_info().config.clone(),
        event_stream.cached_info().config.clone(),
    ]
    .into_iter()
    .map(|config| stream::Source {
        name: config.name,
        subject_transforms: config
            .subjects
            .iter()
            .map(|s| stream::SubjectTransform {
                source: s.clone(),
                destination: if s.starts_with('*') {
                    consumer_subject.replacen('*', "{{wildcard(2)}}", 1)
                } else {
                    consumer_subject.replacen('*', "{{wildcard(1)}}", 1)
                },
            })
            .collect(),
        ..Default::default()
    })
    .collect();
    create(stream::Config {
        name: "wadm_event_consumer".into(),
        description: Some(
            "A stream that sources from wadm_events and wasmbus_events for wadm event consumer's use"
                .into(),
        ),
        num_replicas: 1,
        retention: stream::RetentionPolicy::WorkQueue,
        subjects: vec![],
        max_age: expiry,
        sources: Some(sources),
        allow_rollup: false,
        max_bytes: -1,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await;
    expected_differences
}

/// The app-created resources on `app_server` and the catalog-created ones on
/// `catalog_server` store the same normalized config; the provisioner reports the
/// app-created ones as `exists` with neither drift nor notes; and a raw create with the
/// catalog's exact config is accepted by the server as identical (no 10058).
async fn assert_app_and_catalog_agree(
    app_server: &NatsServer,
    catalog_server: &NatsServer,
    subject: &str,
    body: &str,
    desired: Vec<Desired>,
    expected_differences: &[(String, String)],
) {
    let expected = |stream: &str| -> Vec<&str> {
        expected_differences
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, f)| f.as_str())
            .collect()
    };
    let app = client(&app_server.url()).await;
    let app_service = provisioner::spawn(&app_server.url(), Settings::default()).await;
    let before: BTreeMap<String, Value> = {
        let mut m = BTreeMap::new();
        for d in &desired {
            m.insert(
                d.stream.clone(),
                stream_info(&app, &d.stream).await.expect("app created it"),
            );
        }
        m
    };
    let reply = call(&app, subject, body.to_string()).await;
    reply.ok();
    for d in &desired {
        let r = reply.resource(&d.stream);
        assert_eq!(r["action"], "exists", "{}: {r}", d.stream);
        assert!(r.get("drift").is_none(), "{}: drift {r}", d.stream);
        let noted: Vec<&str> = r["notes"]
            .as_array()
            .map(|n| n.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            noted,
            expected(&d.stream),
            "{}: the app's config differs from the catalog: {r}",
            d.stream
        );
    }
    for d in desired.iter().filter(|d| expected(&d.stream).is_empty()) {
        let answer = raw_create(&app, &d.config).await;
        assert!(
            answer.get("error").is_none(),
            "the server refused the catalog's create of {} on top of the app's: {answer}",
            d.stream
        );
        let after = stream_info(&app, &d.stream).await.expect("still there");
        assert_eq!(
            after["created"], before[&d.stream]["created"],
            "{} was recreated",
            d.stream
        );
        assert_eq!(after["config"], before[&d.stream]["config"], "{}", d.stream);
    }
    app_service.shutdown().await.expect("serve() returns Ok");

    let catalog_service = provisioner::spawn(&catalog_server.url(), Settings::default()).await;
    let cat = client(&catalog_server.url()).await;
    let reply = call(&cat, subject, body.to_string()).await;
    reply.ok();
    let mut differences = Vec::new();
    for d in &desired {
        assert_eq!(reply.resource(&d.stream)["action"], "created");
        let catalog_config = stored_config(&cat, &d.stream).await;
        let app_config = &before[&d.stream]["config"];
        let allowed = expected(&d.stream);
        for diff in config_differences(app_config, &catalog_config) {
            if !allowed.iter().any(|f| diff.starts_with(&format!("{f}:"))) {
                differences.push(format!("{}: {diff}", d.stream));
            }
        }
        if !allowed.is_empty() {
            continue;
        }
        // And the other way round: the app's create on top of the catalog's is accepted.
        let answer = raw_create(&cat, app_config).await;
        assert!(
            answer.get("error").is_none(),
            "the server refused the app's config on top of the catalog's {}: {answer}",
            d.stream
        );
    }
    assert!(
        differences.is_empty(),
        "app-created and catalog-created configs differ:\n  {}",
        differences.join("\n  ")
    );
    catalog_service
        .shutdown()
        .await
        .expect("serve() returns Ok");
}

#[tokio::test]
async fn host_created_buckets_equal_the_catalog_config() {
    let app_server = NatsServer::start();
    let catalog_server = NatsServer::start();
    let js = jetstream::new(client(&app_server.url()).await);
    create_bucket_like_the_host(&js, "LATTICEDATA_x").await;
    create_bucket_like_the_host(&js, "CONFIGDATA_x").await;
    assert_app_and_catalog_agree(
        &app_server,
        &catalog_server,
        "wasmcloud.provision.lattice",
        "x",
        lattice_desired("x"),
        &[],
    )
    .await;
}

#[tokio::test]
async fn wadm_created_streams_equal_the_catalog_config() {
    for multitenant in [false, true] {
        let app_server = NatsServer::start();
        let catalog_server = NatsServer::start();
        let js = jetstream::new(client(&app_server.url()).await);
        let expected = create_like_wadm(&js, multitenant).await;
        assert_app_and_catalog_agree(
            &app_server,
            &catalog_server,
            "wasmcloud.provision.wadm",
            &json!({ "multitenant": multitenant }).to_string(),
            wadm_desired(multitenant),
            &expected,
        )
        .await;
    }
}
