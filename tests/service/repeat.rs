//! Asking again changes nothing; drift is reported and left untouched.

use super::*;

// ---------------------------------------------------------------------------
// 3. Idempotency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn asking_again_changes_nothing() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    call(&nc, "wasmcloud.provision.lattice", "idem").await.ok();
    call(&nc, "wasmcloud.provision.wadm", "").await.ok();
    let first = snapshot(&nc).await;
    assert_eq!(first.len(), 10);

    // Warm: answered by the same instance.
    for (subject, body, count) in [
        ("wasmcloud.provision.lattice", "idem", 2),
        ("wasmcloud.provision.lattice.idem", "", 2),
        ("wasmcloud.provision.wadm", "", 8),
    ] {
        let reply = call(&nc, subject, body).await;
        reply.ok();
        let actions = reply.actions();
        assert_eq!(actions.len(), count, "{subject}");
        assert!(
            actions.values().all(|a| a == "exists"),
            "{subject}: {actions:?}"
        );
    }
    service.shutdown().await.expect("serve() returns Ok");

    // Cold: a new instance observes everything from JetStream.
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    for (subject, body) in [
        ("wasmcloud.provision.lattice", "idem"),
        ("wasmcloud.provision.wadm", ""),
    ] {
        let reply = call(&nc, subject, body).await;
        reply.ok();
        assert!(reply.actions().values().all(|a| a == "exists"));
        for r in reply.resources() {
            assert!(r.get("notes").is_none() && r.get("drift").is_none(), "{r}");
        }
    }
    assert_eq!(
        snapshot(&nc).await,
        first,
        "configs or created timestamps changed"
    );
    service.shutdown().await.expect("serve() returns Ok");
}

// ---------------------------------------------------------------------------
// 4. Drift
// ---------------------------------------------------------------------------

/// A drift case: what to break, which request, and the finding expected.
struct DriftCase {
    /// Streams created before the drifted one, with the catalog's config.
    prerequisites: Vec<Value>,
    /// The drifted stream's config.
    broken: Value,
    /// Subject to publish one stored message on (to prove no data is touched).
    publish: Option<&'static str>,
    endpoint: &'static str,
    dry_run_body: &'static str,
    apply_body: &'static str,
    field: &'static str,
    want: Value,
    /// `None`: whatever the server stored for the field.
    have: Option<Value>,
    breaks: &'static str,
}

async fn assert_drift_left_untouched(case: DriftCase) {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    for config in &case.prerequisites {
        let answer = raw_create(&nc, config).await;
        assert!(answer.get("error").is_none(), "{answer}");
    }
    let answer = raw_create(&nc, &case.broken).await;
    assert!(answer.get("error").is_none(), "set-up create: {answer}");
    let stream = case.broken["name"].as_str().expect("name").to_string();
    if let Some(subject) = case.publish {
        publish_stored(&nc, subject).await;
        // A sourcing stream receives it a moment later.
        eventually("the message is stored in the drifted stream", || async {
            stream_info(&nc, &stream).await.expect("exists")["state"]["messages"] == 1
        })
        .await;
    }
    let before = stream_info(&nc, &stream).await.expect("created");
    let stored_have = before["config"]
        .get(case.field)
        .cloned()
        .unwrap_or(Value::Null);
    let have = case.have.clone().unwrap_or(stored_have.clone());
    assert_eq!(stored_have, have, "the set-up stored another value");
    let messages = before["state"]["messages"].clone();

    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let check_finding = |reply: &Reply| {
        let r = reply.resource(&stream);
        assert_eq!(r["action"], "drift", "{r}");
        let drift = r["drift"].as_array().expect("drift list");
        let finding = drift
            .iter()
            .find(|f| f["field"] == case.field)
            .unwrap_or_else(|| panic!("no finding for {}: {r}", case.field));
        assert_eq!(finding["want"], case.want, "{finding}");
        assert_eq!(finding["have"], have, "{finding}");
        assert_eq!(finding["breaks"], case.breaks, "{finding}");
        assert!(
            finding["why"].as_str().is_some_and(|w| !w.is_empty()),
            "{finding}"
        );
    };

    // Dry run: 200 with the drift.
    let dry = call(&nc, case.endpoint, case.dry_run_body).await;
    assert_eq!(dry.ok()["dry_run"], true);
    check_finding(&dry);

    // Apply: 409 with ADR-32 headers; the body still lists every resource.
    let applied = call(&nc, case.endpoint, case.apply_body).await;
    let message = applied.error(409);
    assert!(
        message.contains(stream.trim_start_matches("KV_")),
        "{message}"
    );
    assert!(message.contains("by hand"), "{message}");
    check_finding(&applied);
    assert!(applied.resources().len() > 1, "{}", applied.body);
    for r in applied.resources() {
        if r["stream"] != stream.as_str() {
            assert!(
                r["action"] == "created" || r["action"] == "exists",
                "the others are still provisioned: {r}"
            );
        }
    }
    // Asking again does not "fix" it either.
    call(&nc, case.endpoint, case.apply_body).await.error(409);

    let after = stream_info(&nc, &stream).await.expect("not deleted");
    assert_eq!(
        after["config"], before["config"],
        "the drifted config changed"
    );
    assert_eq!(
        after["created"], before["created"],
        "the stream was recreated"
    );
    assert_eq!(after["state"]["messages"], messages, "messages changed");
    service.shutdown().await.expect("serve() returns Ok");
}

fn kv_case(field: &'static str, value: Value, want: Value) -> DriftCase {
    let mut broken = desired_config("KV_LATTICEDATA_drift", false);
    broken[field] = value;
    DriftCase {
        prerequisites: vec![],
        broken,
        publish: Some("$KV.LATTICEDATA_drift.key"),
        endpoint: "wasmcloud.provision.lattice",
        dry_run_body: r#"{"lattice":"drift","dry_run":true}"#,
        apply_body: "drift",
        field,
        want,
        have: None,
        breaks: "host",
    }
}

#[tokio::test]
async fn drift_kv_history_unlimited() {
    // 0 is what a client sends for "unlimited"; the server stores its own spelling (-1).
    let mut case = kv_case("max_msgs_per_subject", json!(0), json!(">= 1"));
    case.have = None;
    assert_drift_left_untouched(case).await;
}

#[tokio::test]
async fn drift_kv_without_rollup() {
    let mut case = kv_case("allow_rollup_hdrs", json!(false), json!(true));
    case.have = Some(json!(false));
    assert_drift_left_untouched(case).await;
}

#[tokio::test]
async fn drift_kv_without_direct_get() {
    let mut case = kv_case("allow_direct", json!(false), json!(true));
    case.have = Some(json!(false));
    assert_drift_left_untouched(case).await;
}

fn wadm_case(
    broken: Value,
    prerequisites: Vec<Value>,
    field: &'static str,
    want: Value,
) -> DriftCase {
    DriftCase {
        prerequisites,
        broken,
        publish: None,
        endpoint: "wasmcloud.provision.wadm",
        dry_run_body: r#"{"dry_run":true}"#,
        apply_body: "",
        field,
        want,
        have: None,
        breaks: "wadm",
    }
}

#[tokio::test]
async fn drift_wadm_events_with_other_subjects() {
    let mut broken = desired_config("wadm_events", false);
    broken["subjects"] = json!(["wadm.evt.>"]);
    let mut case = wadm_case(broken, vec![], "subjects", json!(["wadm.evt.*.>"]));
    case.have = Some(json!(["wadm.evt.>"]));
    case.publish = Some("wadm.evt.default.something");
    assert_drift_left_untouched(case).await;
}

fn event_consumer_sources() -> Vec<Value> {
    vec![
        desired_config("wasmbus_events", false),
        desired_config("wadm_events", false),
    ]
}

#[tokio::test]
async fn drift_wadm_event_consumer_with_limits_retention() {
    let mut broken = desired_config("wadm_event_consumer", false);
    broken["retention"] = json!("limits");
    let mut case = wadm_case(
        broken,
        event_consumer_sources(),
        "retention",
        json!("workqueue"),
    );
    case.have = Some(json!("limits"));
    case.publish = Some("wadm.evt.default.sourced");
    assert_drift_left_untouched(case).await;
}

#[tokio::test]
async fn drift_wadm_event_consumer_without_sources() {
    let mut broken = desired_config("wadm_event_consumer", false);
    let want = broken["sources"].clone();
    broken.as_object_mut().expect("object").remove("sources");
    let mut case = wadm_case(broken, event_consumer_sources(), "sources", want);
    case.have = Some(Value::Null);
    assert_drift_left_untouched(case).await;
}
