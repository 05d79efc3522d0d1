//! Observability: STATS data, JSON logs, audit events.

use super::*;

// ---------------------------------------------------------------------------
// Observability: STATS data, JSON logs, audit events
// ---------------------------------------------------------------------------

#[tokio::test]
async fn stats_logs_and_audit_events_describe_each_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xdg = dir.path().join("xdg");
    // The provisioner in its own account; hosts reach it through a service import with
    // `share: true`, so nats-server tells the service who asked, and it creates the
    // buckets in the hosts' account (served as `[accounts.HOSTS]`, see tests/accounts/).
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            r#"accounts {{
  PROV: {{
    jetstream: enabled
    users: [{{user: prov, password: {PASSWORD}}}]
    exports: [{{service: "wasmcloud.provision.>"}}]
  }}
  HOSTS: {{
    jetstream: enabled
    users: [{{user: host1, password: {PASSWORD}}}, {{user: prov_hosts, password: {PASSWORD}}}]
    imports: [{{service: {{account: PROV, subject: "wasmcloud.provision.>"}}, share: true}}]
  }}
}}"#
        ),
        ..Default::default()
    });
    let config = dir.path().join("provisioner.toml");
    std::fs::write(
        &config,
        format!("[accounts.HOSTS]\nuser = \"prov_hosts\"\npassword = \"{PASSWORD}\"\n"),
    )
    .expect("write the config file");
    let mut serve = cli(&xdg);
    serve
        .args([
            "--server",
            &server.url(),
            "--user",
            "prov",
            "--password",
            PASSWORD,
        ])
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "serve"])
        .env("RUST_LOG", "info");
    let mut served = Served::spawn(serve, Some(&dir.path().join("serve.log")));

    let prov = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("prov".into(), PASSWORD.into()),
    )
    .await;
    let host = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("host1".into(), PASSWORD.into())
            .name("host-one"),
    )
    .await;
    wait_discoverable(&prov, 1).await;
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");

    let (code, body) = request_json(&host, "wasmcloud.provision.lattice", "default").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(actions(&body), ["created", "created"]);

    // One audit event per created bucket, valid against the documented schema.
    let info: Value = {
        let reply = prov
            .request("$SRV.INFO.wasmcloud-provisioner", "".into())
            .await
            .expect("$SRV.INFO");
        serde_json::from_slice(&reply.payload).expect("info JSON")
    };
    let instance_id = info["metadata"]["instance_id"].clone();
    assert!(instance_id.is_string(), "{info}");
    let event_schema = project_schema("audit_event.json");
    let mut created = Vec::new();
    for _ in 0..2 {
        let event = next_event(&mut events).await;
        assert_valid(event_schema, &event, "audit event");
        assert_eq!(event["action"], "created");
        assert_eq!(event["before"], Value::Null);
        assert_eq!(event["after"]["replicas"], 1);
        assert_eq!(event["provisioner"]["id"], instance_id);
        let requester = &event["requester"];
        assert_eq!(requester["via"], "request", "{event}");
        assert_eq!(requester["endpoint"], "lattice");
        assert_eq!(requester["subject"], "wasmcloud.provision.lattice");
        assert_eq!(requester["request_info"]["acc"], "HOSTS", "{event}");
        assert_eq!(requester["request_info"]["user"], "host1", "{event}");
        assert_eq!(requester["request_info"]["name"], "host-one", "{event}");
        created.push(
            event["resource"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
    }
    created.sort();
    assert_eq!(created, ["CONFIGDATA_default", "LATTICEDATA_default"]);

    // Asking again changes nothing (a warm answer), so the next event is the next change.
    let (_, body) = request_json(&host, "wasmcloud.provision.lattice", "default").await;
    assert_eq!(actions(&body), ["exists", "exists"]);
    let (_, body) = request_json(&host, "wasmcloud.provision.lattice.second", "").await;
    assert_eq!(actions(&body), ["created", "created"]);
    let event = next_event(&mut events).await;
    assert!(
        event["resource"]["name"]
            .as_str()
            .unwrap_or("")
            .ends_with("_second"),
        "an event for the unchanged lattice: {event}"
    );
    assert_eq!(event["requester"]["endpoint"], "lattice_scoped");
    let _ = next_event(&mut events).await;

    // Drift: wadm_events exists in the hosts' account with other subjects; the wadm
    // request is a 409.
    let prov_hosts = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("prov_hosts".into(), PASSWORD.into()),
    )
    .await;
    let js = jetstream::new(prov_hosts);
    js.create_stream(stream::Config {
        name: "wadm_events".into(),
        subjects: vec!["wadm.evt.>".into()],
        ..Default::default()
    })
    .await
    .expect("create a drifted wadm_events");
    let (code, body) = request_json(&host, "wasmcloud.provision.wadm", "").await;
    assert_eq!(code.as_deref(), Some("409"), "{body}");

    // $SRV.STATS: per endpoint, resources by outcome, warm/cold, errors by code.
    let stats: Value = {
        let reply = prov
            .request("$SRV.STATS.wasmcloud-provisioner", "".into())
            .await
            .expect("$SRV.STATS");
        serde_json::from_slice(&reply.payload).expect("stats JSON")
    };
    let data = |name: &str| -> Value {
        stats["endpoints"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == name))
            .map(|e| e["data"].clone())
            .unwrap_or_else(|| panic!("no endpoint {name} in {stats:#}"))
    };
    let lattice = data("lattice");
    assert_eq!(lattice["resources"]["created"], 2, "{lattice}");
    assert_eq!(lattice["resources"]["exists"], 2, "{lattice}");
    assert_eq!(lattice["resources"]["drift"], 0, "{lattice}");
    assert_eq!(lattice["cold"], 1, "{lattice}");
    assert_eq!(lattice["warm"], 1, "{lattice}");
    assert_eq!(data("lattice_scoped")["resources"]["created"], 2);
    let wadm = data("wadm");
    assert_eq!(wadm["resources"]["drift"], 1, "{wadm}");
    assert_eq!(wadm["errors"]["409"], 1, "{wadm}");
    assert!(
        wadm["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("409:"),
        "{wadm}"
    );

    // JSON logs: the "answered" event carries the request's span.
    let logs = served.stop();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    // The warm request is counted in STATS but logged only at debug (the hot path).
    assert_eq!(answered.len(), 3, "{logs}");
    let first = answered
        .iter()
        .find(|l| l["span"]["endpoint"] == "lattice")
        .unwrap_or_else(|| panic!("no answered line for the lattice endpoint:\n{logs}"));
    let span = &first["span"];
    assert_eq!(span["name"], "request", "{first}");
    assert_eq!(span["subject"], "wasmcloud.provision.lattice", "{first}");
    assert_eq!(span["lattice"], "default", "{first}");
    assert_eq!(span["outcome"], "created=2", "{first}");
    assert!(span["duration_us"].is_u64(), "{first}");
    let drifted = answered
        .iter()
        .find(|l| l["span"]["endpoint"] == "wadm")
        .unwrap_or_else(|| panic!("no answered line for the wadm endpoint:\n{logs}"));
    assert_eq!(drifted["span"]["outcome"], "error 409", "{drifted}");
}
