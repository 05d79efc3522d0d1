//! The wasmcloud-operator binds its stream and consumer and receives wadm's events.

use super::*;

// ---------------------------------------------------------------------------
// The operator
// ---------------------------------------------------------------------------

/// What the operator does with its stream for one lattice, as its user: bind the stream,
/// bind (create) its consumer, receive a wadm event and ack it; then every way to create,
/// change or delete a stream is refused.
pub(crate) async fn operator_workload(
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
    let service = Options::new()
        .user("provisioner", PASSWORD)
        .operator(Some(Operator::V0_4))
        .start(&server.url(), &admin)
        .await;

    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", "").await.parts();
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
    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", r#"{"operator":"0.5"}"#)
        .await
        .parts();
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
    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", r#"{"operator":"0.6"}"#)
        .await
        .parts();
    assert_eq!(code, Some(400), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/operator") && message.contains("\"0.4\""),
        "{message}"
    );
    // Status shows the stream; the serve default applies there too.
    let (code, body) = call(&admin, "wasmcloud.provision.status", r#"{"wadm":true}"#)
        .await
        .parts();
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
