//! Proves the nats-server test bed in `tests/common` works against the real
//! binary: single node, no-JetStream node, JS domain, restart, 3-node cluster.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use common::{eventually, ClusterOptions, NatsCluster, NatsServer, ServerOptions};

/// Publishes until acked. A retry carries the same message id, so a publish that was
/// stored but whose ack was lost (a node stopping) is not stored twice.
async fn publish_acked(js: &jetstream::Context, subject: &str, payload: &'static str) -> u64 {
    let id = format!("{subject}:{payload}");
    eventually(
        &format!("publish to {subject}"),
        Duration::from_secs(15),
        || async {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(&id);
            let ack = js
                .send_publish(subject.to_string(), message)
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
        },
    )
    .await
}

#[test]
fn binary_is_recent_enough() {
    let v = common::nats_server_version();
    assert!(
        v.contains("nats-server: v2."),
        "unexpected version output {v:?}"
    );
}

#[tokio::test]
async fn single_node_jetstream_create_and_read_stream() {
    let server = NatsServer::start();
    assert!(server.url().starts_with("nats://127.0.0.1:"));
    assert!(server.log().contains("Server is ready"));

    let client = common::connect(&server.url()).await;
    let js = jetstream::new(client);
    let mut stream = js
        .create_stream(stream::Config {
            name: "SELFTEST".into(),
            subjects: vec!["selftest.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");

    let seq = publish_acked(&js, "selftest.a", "hello").await;
    assert_eq!(seq, 1);

    let info = stream.info().await.expect("stream info");
    assert_eq!(info.state.messages, 1);
    let msg = stream.get_raw_message(1).await.expect("get message 1");
    assert_eq!(msg.subject.as_str(), "selftest.a");
    assert_eq!(&msg.payload[..], b"hello");

    // The monitoring endpoint is always on.
    let (code, body) = server.http_get("/jsz").expect("GET /jsz");
    assert_eq!(code, 200);
    assert!(
        body.contains("\"streams\": 1") || body.contains("\"streams\":1"),
        "{body}"
    );
}

#[tokio::test]
async fn server_without_jetstream_has_no_js_api_responders() {
    let server = NatsServer::start_with(ServerOptions {
        jetstream: false,
        ..Default::default()
    });
    let client = common::connect(&server.url()).await;

    let err = client
        .request("$JS.API.INFO", "".into())
        .await
        .expect_err("$JS.API.INFO must not be answered without JetStream");
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "unexpected error: {err:?}"
    );

    let js = jetstream::new(client);
    assert!(js.query_account().await.is_err());
}

#[tokio::test]
async fn js_domain_is_configured() {
    let server = NatsServer::start_with(ServerOptions {
        js_domain: Some("hub".into()),
        ..Default::default()
    });
    let client = common::connect(&server.url()).await;

    let hub = jetstream::with_domain(client.clone(), "hub");
    let account = hub
        .query_account()
        .await
        .expect("account info via domain hub");
    assert_eq!(account.domain.as_deref(), Some("hub"));

    hub.create_stream(stream::Config {
        name: "HUB".into(),
        subjects: vec!["hub.>".into()],
        ..Default::default()
    })
    .await
    .expect("create stream via domain API prefix");

    // A domain nobody serves gets no answer.
    let other = jetstream::with_domain(client, "nowhere");
    assert!(other.query_account().await.is_err());
}

#[tokio::test]
async fn restart_keeps_jetstream_state() {
    let mut server = NatsServer::start();
    let port = server.port();
    {
        let client = common::connect(&server.url()).await;
        let js = jetstream::new(client);
        js.create_stream(stream::Config {
            name: "DURABLE".into(),
            subjects: vec!["durable.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
        publish_acked(&js, "durable.x", "kept").await;
    }

    server.restart();
    assert_eq!(server.port(), port, "restart must reuse the port");
    assert_eq!(server.log().matches("Server is ready").count(), 2);

    let client = common::connect(&server.url()).await;
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream("DURABLE")
        .await
        .expect("stream survives restart");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn extra_config_and_log_capture() {
    let server = NatsServer::start_with(ServerOptions {
        jetstream: false,
        extra_config: r#"
authorization {
  users: [
    { user: "limited", password: "pw", permissions: { publish: { allow: ["ok.>"] }, subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
"#
        .into(),
        ..Default::default()
    });

    // Anonymous connections are refused now.
    let refused = common::try_connect_with(&server.url(), async_nats::ConnectOptions::new()).await;
    assert!(refused.is_err(), "anonymous connect must fail");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("limited".into(), "pw".into())
            .event_callback(move |ev| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(ev.to_string());
                }
            }),
    )
    .await;
    client.publish("ok.fine", "1".into()).await.unwrap();
    client.publish("forbidden", "2".into()).await.unwrap();
    client.flush().await.unwrap();

    // Server side: "Publish Violation - Subject", not "Permissions Violation".
    assert!(
        common::wait_for_log(
            || server.log(),
            Duration::from_secs(5),
            |l| { l.contains(r#"Publish Violation - Subject "forbidden""#) }
        ),
        "no violation logged:\n{}",
        server.log()
    );
    let violations = common::permission_violations(&server.log());
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("user:limited"), "{violations:?}");
    assert!(!server.log().contains("Permissions Violation"));

    // Client side: the -ERR carries "Permissions Violation for Publish to".
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let ev = rx.recv().await.expect("event channel open");
            if ev.contains("Permissions Violation") {
                return ev;
            }
        }
    })
    .await
    .expect("client saw the permissions violation");
    assert!(
        event
            .to_lowercase()
            .contains("permissions violation for publish to \"forbidden\""),
        "{event}"
    );
}

#[tokio::test]
async fn cluster_r3_stream_survives_node_loss_and_rejoin() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start_with(3, ClusterOptions::default());
    eprintln!("3-node cluster ready in {:?}", started.elapsed());
    assert_eq!(cluster.urls().len(), 3);
    assert!(!cluster.meta_leader().is_empty());

    let client = common::connect(&cluster.client_url_all()).await;
    // Short ack timeout: a publish written to the connection of the node we are
    // about to stop is lost and only noticed when its ack times out.
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone());
    // The create, though, answers only once the stream has a leader: 4 to 9 s more when
    // its first election misfires (tests/cluster/main.rs, JS_TIMEOUT).
    let mut r3 = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(15))
        .build(client)
        .create_stream(stream::Config {
            name: "R3".into(),
            subjects: vec!["r3.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("create R3 stream");
    assert_eq!(r3.info().await.unwrap().config.num_replicas, 3);
    publish_acked(&js, "r3.before", "1").await;

    eprintln!(
        "client on {}, R3 leader {:?}",
        js.client().server_info().server_name,
        r3.info()
            .await
            .unwrap()
            .cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
    );
    let t = Instant::now();
    cluster.stop_node(0);
    eprintln!("stop_node(0) took {:?}", t.elapsed());
    assert!(!cluster.is_running(0));

    // Still writable with 2 of 3 replicas.
    let seq = publish_acked(&js, "r3.during", "2").await;
    assert_eq!(seq, 2);

    let t = Instant::now();
    cluster.start_node(0);
    eprintln!("start_node(0) took {:?}", t.elapsed());
    assert!(cluster.log(0).matches("Server is ready").count() >= 2);

    // n1 catches up and is a current replica again.
    let name = cluster.server_name(0);
    eventually("n1 current replica of R3", Duration::from_secs(15), || {
        let js = js.clone();
        let name = name.clone();
        async move {
            let mut stream = js.get_stream("R3").await.map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            let c = info.cluster.as_ref().ok_or("no cluster info")?;
            let ok = c.leader.as_deref() == Some(name.as_str())
                || c.replicas.iter().any(|r| r.name == name && r.current);
            if ok && info.state.messages == 2 {
                Ok(())
            } else {
                Err(format!("not yet: {c:?}, {} msgs", info.state.messages))
            }
        }
    })
    .await;

    // And a client pinned to the rejoined node sees the data.
    let n1 = jetstream::new(common::connect(&cluster.url(0)).await);
    let mut s = n1.get_stream("R3").await.expect("R3 via n1");
    assert_eq!(s.info().await.unwrap().state.messages, 2);
}

#[test]
#[should_panic(expected = "nats-server failed to start")]
fn broken_config_fails_loudly() {
    NatsServer::start_with(ServerOptions {
        extra_config: "this is { not valid".into(),
        ..Default::default()
    });
}
