//! Dry runs, bad input, JetStream off, concurrent requests.

use super::*;

// ---------------------------------------------------------------------------
// 5. Dry runs
// ---------------------------------------------------------------------------

#[tokio::test]
async fn dry_runs_create_nothing() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let requests = [
        (
            "wasmcloud.provision.lattice",
            r#"{"lattice":"dry","dry_run":true}"#,
            2,
        ),
        ("wasmcloud.provision.lattice.dry2", r#"{"dry_run":true}"#, 2),
        ("wasmcloud.provision.wadm", r#"{"dry_run":true}"#, 8),
        (
            "wasmcloud.provision.wadm",
            r#"{"dry_run":true,"multitenant":true}"#,
            8,
        ),
        ("wasmcloud.provision.status", "", 10),
        ("wasmcloud.provision.status", "dry3", 2),
        (
            "wasmcloud.provision.status",
            r#"{"lattice":"dry4","wadm":true,"multitenant":true}"#,
            10,
        ),
        ("wasmcloud.provision.status", r#"{"wadm":true}"#, 8),
    ];
    for (subject, body, count) in requests {
        let reply = call(&nc, subject, body).await;
        assert_eq!(reply.ok()["dry_run"], true, "{subject} {body}");
        let resources = reply.resources();
        assert_eq!(resources.len(), count, "{subject} {body}: {}", reply.body);
        for r in resources {
            assert_eq!(r["action"], "would_create", "{subject} {body}: {r}");
            assert_eq!(r["replicas"], 0, "{r}");
            assert_eq!(r["desired_replicas"], 1, "{r}");
        }
        assert_eq!(
            stream_names(&nc).await,
            Vec::<String>::new(),
            "{subject} {body}"
        );
        assert_eq!(account_stream_count(&nc).await, 0, "{subject} {body}");
    }
    // Once created, the same dry runs say `exists` and still change nothing.
    call(&nc, "wasmcloud.provision.lattice", "dry").await.ok();
    let snap = snapshot(&nc).await;
    let reply = call(
        &nc,
        "wasmcloud.provision.status",
        r#"{"lattice":"dry","wadm":true}"#,
    )
    .await;
    reply.ok();
    let actions = reply.actions();
    assert_eq!(actions["KV_LATTICEDATA_dry"], "exists");
    assert_eq!(actions["KV_CONFIGDATA_dry"], "exists");
    assert_eq!(actions["wadm_events"], "would_create");
    assert_eq!(snapshot(&nc).await, snap);
    service.shutdown().await.expect("serve() returns Ok");
}

// ---------------------------------------------------------------------------
// 6. Bad input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_is_refused_with_a_400_and_creates_nothing() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;

    let long_name = "x".repeat(300);
    let big = vec![b'a'; 1_000_000];
    let lattice = "wasmcloud.provision.lattice";
    let scoped = "wasmcloud.provision.lattice.tenant-a";
    let wadm = "wasmcloud.provision.wadm";
    let status = "wasmcloud.provision.status";
    // (subject, body, what the message must name)
    let mut cases: Vec<(String, Vec<u8>, String)> = Vec::new();
    let mut add = |subject: &str, body: &[u8], needle: &str| {
        cases.push((subject.to_string(), body.to_vec(), needle.to_string()));
    };
    for subject in [lattice, scoped, wadm, status] {
        add(subject, b"\xff\xfe\xfd", "not UTF-8");
        add(subject, b"{\"lattice\": ", "not valid JSON");
        add(subject, b"[1, 2]", "array");
        add(subject, &big, "1000000 bytes");
    }
    // Wrong types and unknown fields.
    add(lattice, br#"{"lattice": 5}"#, "lattice");
    add(lattice, br#"{"dry_run": "yes"}"#, "dry_run");
    add(lattice, br#"{"replicas": "3"}"#, "replicas");
    add(lattice, br#"{"lattice": "x", "extra": 1}"#, "extra");
    add(scoped, br#"{"dry_run": 1}"#, "dry_run");
    add(scoped, br#"{"extra": true}"#, "extra");
    add(wadm, br#"{"multitenant": "yes"}"#, "multitenant");
    add(wadm, br#"{"dry_run": null}"#, "dry_run");
    add(wadm, br#"{"lattice": "x"}"#, "lattice");
    add(wadm, b"default", "JSON object");
    add(status, br#"{"wadm": "true"}"#, "wadm");
    add(status, br#"{"lattice": "x", "foo": 1}"#, "foo");
    add(status, br#"{"wadm": false}"#, "nothing to report");
    // Names that cannot be part of a stream name.
    for (name, needle) in [
        ("a.b", "'.'"),
        ("*", "'*'"),
        (">", "'>'"),
        (" ", "' '"),
        ("", "empty"),
        (long_name.as_str(), "300 characters"),
    ] {
        let json_string = serde_json::to_vec(&json!(name)).expect("json");
        let json_object = serde_json::to_vec(&json!({ "lattice": name })).expect("json");
        for subject in [lattice, status] {
            // An empty text body means "default"; the empty name is sent as JSON.
            if !name.is_empty() {
                add(subject, name.as_bytes(), needle);
            }
            add(subject, &json_string, needle);
            // Inside an object the schema's pattern refuses it first.
            add(subject, &json_object, "lattice");
        }
        add(scoped, &json_string, needle);
    }
    add(
        &format!("wasmcloud.provision.lattice.{long_name}"),
        b"",
        "300 characters",
    );

    for (subject, body, needle) in &cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let reply = call(&nc, subject, body.clone()).await;
        let message = reply.error(400);
        assert!(
            message.contains(needle.as_str()),
            "{subject} {shown:?}: the message should name {needle:?}: {message}"
        );
    }
    assert_eq!(stream_names(&nc).await, Vec::<String>::new());
    assert_eq!(account_stream_count(&nc).await, 0);

    // A scoped subject with a body naming another lattice: forbidden.
    for body in [
        &b"tenant-b"[..],
        br#"{"lattice":"tenant-b"}"#,
        br#""tenant-b""#,
    ] {
        let reply = call(&nc, scoped, body.to_vec()).await;
        let message = reply.error(403);
        assert!(
            message.contains("tenant-a") && message.contains("tenant-b"),
            "{message}"
        );
    }
    assert_eq!(account_stream_count(&nc).await, 0);
    // Naming the subject's own lattice in the body is fine.
    call(&nc, scoped, r#"{"lattice":"tenant-a","dry_run":true}"#)
        .await
        .ok();
    service.shutdown().await.expect("serve() returns Ok");
}

// ---------------------------------------------------------------------------
// 7. JetStream off
// ---------------------------------------------------------------------------

#[tokio::test]
async fn jetstream_disabled_is_a_503_that_says_what_to_do() {
    let server = NatsServer::start_with(ServerOptions {
        jetstream: false,
        ..ServerOptions::default()
    });
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    for (subject, body) in [
        ("wasmcloud.provision.lattice", ""),
        ("wasmcloud.provision.lattice.x", r#"{"dry_run":true}"#),
        ("wasmcloud.provision.wadm", ""),
        ("wasmcloud.provision.status", ""),
    ] {
        let reply = call(&nc, subject, body).await;
        let message = reply.error(503);
        assert!(message.contains("JetStream"), "{subject}: {message}");
        assert!(
            message.contains("enable JetStream"),
            "{subject}: the message should say what to do: {message}"
        );
    }
    service.shutdown().await.expect("serve() returns Ok");
}

// ---------------------------------------------------------------------------
// 8. Concurrency
// ---------------------------------------------------------------------------

async fn concurrent(nc: &async_nats::Client, subject: &str, body: &str, n: usize) -> Vec<Reply> {
    join_all((0..n).map(|_| call(nc, subject, body.to_string()))).await
}

fn assert_all_provisioned(replies: &[Reply], streams: &[String]) {
    for reply in replies {
        reply.ok();
        let actions = reply.actions();
        assert_eq!(
            actions.keys().cloned().collect::<Vec<_>>(),
            {
                let mut s = streams.to_vec();
                s.sort();
                s
            },
            "{}",
            reply.body
        );
        assert!(
            actions.values().all(|a| a == "created" || a == "exists"),
            "{actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_a_new_lattice_all_succeed() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;

    let streams = |l: &str| vec![format!("KV_CONFIGDATA_{l}"), format!("KV_LATTICEDATA_{l}")];
    let two = concurrent(&nc, "wasmcloud.provision.lattice", "c2", 2).await;
    assert_all_provisioned(&two, &streams("c2"));
    let fifty = concurrent(&nc, "wasmcloud.provision.lattice", "c50", 50).await;
    assert_all_provisioned(&fifty, &streams("c50"));
    let wadm = concurrent(&nc, "wasmcloud.provision.wadm", "", 10).await;
    let wadm_streams: Vec<String> = wadm_desired(false).into_iter().map(|d| d.stream).collect();
    assert_all_provisioned(&wadm, &wadm_streams);

    // Two instances racing (queue group `q` spreads the requests over both).
    let second = provisioner::spawn(&server.url(), Settings::default()).await;
    let raced = concurrent(&nc, "wasmcloud.provision.lattice", "c50b", 50).await;
    assert_all_provisioned(&raced, &streams("c50b"));
    let scoped = concurrent(&nc, "wasmcloud.provision.lattice.c50c", "", 50).await;
    assert_all_provisioned(&scoped, &streams("c50c"));

    let mut expected: Vec<String> = ["c2", "c50", "c50b", "c50c"]
        .iter()
        .flat_map(|l| streams(l))
        .chain(wadm_streams)
        .collect();
    expected.sort();
    assert_eq!(stream_names(&nc).await, expected, "each stream exists once");
    assert_eq!(account_stream_count(&nc).await, expected.len() as u64);
    for l in ["c2", "c50", "c50b", "c50c"] {
        for d in lattice_desired(l) {
            assert_stored_is_desired(&stored_config(&nc, &d.stream).await, &d);
        }
    }
    second.shutdown().await.expect("serve() returns Ok");
    service.shutdown().await.expect("serve() returns Ok");
}
