//! Every created resource stores exactly the catalog's config and the spec's values.

use super::*;

// ---------------------------------------------------------------------------
// 1. Stored configs
// ---------------------------------------------------------------------------

#[tokio::test]
async fn created_resources_store_exactly_the_catalog_config() {
    let server = NatsServer::start();
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let nc = client(&server.url()).await;

    let lattice = call(&nc, "wasmcloud.provision.lattice", "prod-1").await;
    let body = lattice.ok();
    assert_eq!(body["lattice"], "prod-1");
    assert_eq!(body["dry_run"], false);
    assert_eq!(
        lattice.actions(),
        BTreeMap::from([
            ("KV_CONFIGDATA_prod-1".to_string(), "created".to_string()),
            ("KV_LATTICEDATA_prod-1".to_string(), "created".to_string()),
        ])
    );
    let wadm = call(&nc, "wasmcloud.provision.wadm", "").await;
    wadm.ok();
    assert_eq!(wadm.resources().len(), 8);
    assert!(
        wadm.actions().values().all(|a| a == "created"),
        "{:?}",
        wadm.actions()
    );

    // Every catalog key equals the stored value, for every resource.
    let all: Vec<Desired> = lattice_desired("prod-1")
        .into_iter()
        .chain(wadm_desired(false))
        .collect();
    for d in &all {
        assert_stored_is_desired(&stored_config(&nc, &d.stream).await, d);
    }
    let mut expected: Vec<String> = all.iter().map(|d| d.stream.clone()).collect();
    expected.sort();
    assert_eq!(stream_names(&nc).await, expected, "exactly the catalog");

    // Spot checks of resources.md §1, independent of the catalog code.
    for bucket in ["LATTICEDATA_prod-1", "CONFIGDATA_prod-1"]
        .into_iter()
        .chain(["wadm_manifests", "wadm_state"])
    {
        let c = stored_config(&nc, &format!("KV_{bucket}")).await;
        assert_eq!(
            c["subjects"],
            json!([format!("$KV.{bucket}.>")]),
            "{bucket}"
        );
        assert_eq!(c["retention"], "limits", "{bucket}");
        assert_eq!(c["storage"], "file", "{bucket}");
        assert_eq!(c["num_replicas"], 1, "{bucket}");
        assert_eq!(c["max_msgs_per_subject"], 1, "{bucket}: history 1");
        assert_eq!(c["max_msgs"], -1, "{bucket}");
        assert_eq!(c["max_bytes"], -1, "{bucket}");
        assert_eq!(c["max_msg_size"], -1, "{bucket}");
        assert_eq!(c["max_consumers"], -1, "{bucket}");
        assert_eq!(c["max_age"], 0, "{bucket}");
        assert_eq!(c["duplicate_window"], 120 * NANOS, "{bucket}");
        assert_eq!(c["discard"], "new", "{bucket}");
        assert_eq!(c["allow_rollup_hdrs"], true, "{bucket}");
        assert_eq!(c["deny_delete"], true, "{bucket}");
        assert_eq!(c["deny_purge"], false, "{bucket}");
        assert_eq!(c["allow_direct"], true, "{bucket}");
        assert_eq!(c["mirror_direct"], false, "{bucket}");
        assert!(description_is_empty(&c), "{bucket}: {c}");
    }
    let descriptions = [
        (
            "wadm_events",
            "A stream that stores all events coming in on the wadm.evt subject in a cluster",
        ),
        ("wadm_commands", "A stream that stores all commands for wadm"),
        (
            "wadm_status",
            "A stream that stores all status updates for wadm applications",
        ),
        (
            "wasmbus_events",
            "A stream that stores all events coming in on the wasmbus.evt subject in a cluster",
        ),
        (
            "wadm_notify",
            "A stream for capturing all notification events for wadm",
        ),
        (
            "wadm_event_consumer",
            "A stream that sources from wadm_events and wasmbus_events for wadm event consumer's use",
        ),
    ];
    for (stream, description) in descriptions {
        let c = stored_config(&nc, stream).await;
        assert_eq!(c["description"], description, "{stream}");
        assert_eq!(c["storage"], "file", "{stream}");
        assert_eq!(c["num_replicas"], 1, "{stream}");
        assert_eq!(c["max_bytes"], -1, "{stream}");
        assert_eq!(c["max_msgs"], -1, "{stream}");
        assert_eq!(c["discard"], "old", "{stream}");
        assert_eq!(c["allow_rollup_hdrs"], false, "{stream}");
        assert_eq!(c["deny_delete"], false, "{stream}");
        if stream == "wadm_status" {
            assert_eq!(c["max_age"], 0, "{stream}");
            assert_eq!(c["duplicate_window"], 120 * NANOS, "{stream}");
            assert_eq!(c["max_msgs_per_subject"], 10, "{stream}");
            assert_eq!(c["allow_direct"], true, "{stream}");
        } else {
            assert_eq!(c["max_age"], 70 * NANOS, "{stream}: 70 s");
            assert_eq!(
                c["duplicate_window"],
                70 * NANOS,
                "{stream}: capped at max_age"
            );
            assert_eq!(c["allow_direct"], false, "{stream}");
        }
    }
    let subjects_and_retention = [
        ("wadm_events", json!(["wadm.evt.*.>"]), "limits"),
        ("wadm_commands", json!(["wadm.cmd.*"]), "workqueue"),
        ("wadm_status", json!(["wadm.status.*.*"]), "limits"),
        ("wasmbus_events", json!(["wasmbus.evt.*.>"]), "limits"),
        ("wadm_notify", json!(["wadm.notify.*"]), "interest"),
    ];
    for (stream, subjects, retention) in subjects_and_retention {
        let c = stored_config(&nc, stream).await;
        assert_eq!(c["subjects"], subjects, "{stream}");
        assert_eq!(c["retention"], retention, "{stream}");
    }
    let consumer = stored_config(&nc, "wadm_event_consumer").await;
    assert!(subjects_are_empty(&consumer), "{consumer}");
    assert_eq!(consumer["retention"], "workqueue");
    assert_eq!(
        consumer["sources"],
        json!([
            {"name": "wasmbus_events", "subject_transforms": [
                {"src": "wasmbus.evt.*.>", "dest": "wadm_event_consumer.evt.{{wildcard(1)}}.>"}]},
            {"name": "wadm_events", "subject_transforms": [
                {"src": "wadm.evt.*.>", "dest": "wadm_event_consumer.evt.{{wildcard(1)}}.>"}]},
        ])
    );
    for legacy in ["wadm_mirror", "wadm_multitenant_mirror"] {
        assert!(stream_info(&nc, legacy).await.is_none(), "{legacy} created");
    }

    // The transforms work: events of both sources arrive under the consumer's subjects.
    publish_stored(&nc, "wasmbus.evt.prod-1.host_started").await;
    publish_stored(&nc, "wadm.evt.prod-1.manifest_published").await;
    eventually("wadm_event_consumer sources both streams", || async {
        stream_info(&nc, "wadm_event_consumer")
            .await
            .expect("exists")["state"]["messages"]
            == 2
    })
    .await;
    let mut subjects = BTreeSet::new();
    for seq in 1..=2 {
        let m = js_api(
            &nc,
            "$JS.API.STREAM.MSG.GET.wadm_event_consumer",
            &json!({ "seq": seq }),
        )
        .await;
        subjects.insert(
            m["message"]["subject"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        subjects,
        BTreeSet::from([
            "wadm_event_consumer.evt.prod-1.host_started".to_string(),
            "wadm_event_consumer.evt.prod-1.manifest_published".to_string(),
        ])
    );
    service.shutdown().await.expect("serve() returns Ok");
}

#[tokio::test]
async fn multitenant_wadm_streams_use_account_prefixed_subjects() {
    let server = NatsServer::start();
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let nc = client(&server.url()).await;

    let reply = call(&nc, "wasmcloud.provision.wadm", r#"{"multitenant":true}"#).await;
    assert_eq!(reply.ok()["multitenant"], true);
    for d in wadm_desired(true) {
        assert_stored_is_desired(&stored_config(&nc, &d.stream).await, &d);
    }
    let events = stored_config(&nc, "wasmbus_events").await;
    assert_eq!(events["subjects"], json!(["*.wasmbus.evt.*.>"]));
    // Overlaps `$JS.>`: nats-server 2.10.28+/2.11.2+ accept it only as no_ack.
    assert_eq!(events["no_ack"], true);
    let consumer = stored_config(&nc, "wadm_event_consumer").await;
    assert_eq!(
        consumer["sources"],
        json!([
            {"name": "wasmbus_events", "subject_transforms": [
                {"src": "*.wasmbus.evt.*.>", "dest": "wadm_event_consumer.evt.{{wildcard(2)}}.>"}]},
            {"name": "wadm_events", "subject_transforms": [
                {"src": "wadm.evt.*.>", "dest": "wadm_event_consumer.evt.{{wildcard(1)}}.>"}]},
        ])
    );
    // Multitenant events carry the account first; the transform drops it. Hosts publish
    // events without a reply subject, and this stream is `no_ack`: a core publish.
    nc.publish("ACCT1.wasmbus.evt.tenant-a.host_started", "event".into())
        .await
        .expect("publish");
    nc.flush().await.expect("flush");
    eventually("the event is stored", || async {
        stream_info(&nc, "wasmbus_events").await.expect("exists")["state"]["messages"] == 1
    })
    .await;
    eventually("multitenant event is sourced", || async {
        stream_info(&nc, "wadm_event_consumer")
            .await
            .expect("exists")["state"]["messages"]
            == 1
    })
    .await;
    let m = js_api(
        &nc,
        "$JS.API.STREAM.MSG.GET.wadm_event_consumer",
        &json!({ "seq": 1 }),
    )
    .await;
    assert_eq!(
        m["message"]["subject"],
        "wadm_event_consumer.evt.tenant-a.host_started"
    );

    // Asking single-tenant now is drift on the subjects wadm checks, never a silent change.
    let reply = call(&nc, "wasmcloud.provision.wadm", "").await;
    reply.error(409);
    assert_eq!(reply.resource("wasmbus_events")["action"], "drift");
    assert_eq!(events, stored_config(&nc, "wasmbus_events").await);
    service.shutdown().await.expect("serve() returns Ok");
}
