//! What host 1.9 and wadm 0.21 do with their templates, with and without a JetStream domain, and nothing more.

use super::*;

// ---------------------------------------------------------------------------
// What the apps do
// ---------------------------------------------------------------------------

/// Everything the v1.9 host does with its buckets at start, with async-nats.
async fn host_uses_its_buckets(js: &Context, buckets: &BTreeMap<String, String>) {
    assert_eq!(buckets.len(), 2, "{buckets:?}");
    for bucket in buckets.values() {
        let kv = js
            .get_key_value(bucket)
            .await
            .unwrap_or_else(|e| panic!("get_key_value {bucket}: {e}"));
        let mut watch = kv.watch_all().await.expect("watch_all");
        kv.put("host.key", "v1".into()).await.expect("put");
        let seen = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the watch delivers the put")
            .expect("watch open")
            .expect("watch entry");
        assert_eq!(seen.key, "host.key");
        let keys: Vec<String> = kv
            .keys()
            .await
            .expect("keys")
            .try_collect()
            .await
            .expect("keys listed");
        assert_eq!(keys, vec!["host.key"]);
        assert_eq!(
            kv.get("host.key").await.expect("get").as_deref(),
            Some(&b"v1"[..])
        );
        kv.purge("host.key").await.expect("purge");
        assert_eq!(kv.get("host.key").await.expect("get after purge"), None);
        // A key that stays, to see that refused purges remove nothing.
        kv.put("kept", "yes".into()).await.expect("put kept");
    }
}

fn wadm_names(kind: Kind) -> Vec<String> {
    catalog::rows(Scope::Wadm)
        .filter(|r| r.kind() == kind)
        .map(|r| r.name_for(""))
        .collect()
}

/// Batches from a pull consumer until `want` messages arrived (or a generous deadline).
async fn pull(consumer: &consumer::PullConsumer, want: usize) -> Vec<String> {
    let mut subjects = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while subjects.len() < want && Instant::now() < deadline {
        let mut batch = consumer
            .batch()
            .max_messages(want - subjects.len())
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("pull a batch");
        while let Some(message) = batch.next().await {
            let message = message.expect("message");
            message.ack().await.expect("ack");
            subjects.push(message.subject.to_string());
        }
    }
    subjects
}

/// Everything wadm does with its streams and buckets, and the host's events reaching it.
async fn wadm_uses_its_streams(bed: &Bed, wadm: &async_nats::Client, host: &async_nats::Client) {
    let js = bed.js(wadm);
    for name in wadm_names(Kind::Stream) {
        js.get_stream(&name)
            .await
            .unwrap_or_else(|e| panic!("wadm binds stream {name}: {e}"));
    }
    for bucket in wadm_names(Kind::Kv) {
        let kv = js
            .get_key_value(&bucket)
            .await
            .unwrap_or_else(|e| panic!("wadm binds bucket {bucket}: {e}"));
        kv.put("app", "manifest".into()).await.expect("wadm put");
        assert_eq!(
            kv.get("app").await.expect("wadm get").as_deref(),
            Some(&b"manifest"[..])
        );
    }
    let l = "default";
    let commands = js.get_stream("wadm_commands").await.expect("wadm_commands");
    let command_consumer: consumer::PullConsumer = commands
        .create_consumer(consumer::pull::Config {
            durable_name: Some(format!("wadm_commands-{l}")),
            filter_subject: format!("wadm.cmd.{l}"),
            ..Default::default()
        })
        .await
        .expect("durable wadm_commands-<l>");
    let events = js
        .get_stream("wadm_event_consumer")
        .await
        .expect("wadm_event_consumer");
    let event_consumer: consumer::PullConsumer = events
        .create_consumer(consumer::pull::Config {
            durable_name: Some(format!("wadm_event_consumer-{l}")),
            filter_subject: format!("wadm_event_consumer.evt.{l}.>"),
            ..Default::default()
        })
        .await
        .expect("durable wadm_event_consumer-<l>");
    let notify = js.get_stream("wadm_notify").await.expect("wadm_notify");
    let notify_consumer: consumer::PullConsumer = notify
        .create_consumer(consumer::pull::Config::default())
        .await
        .expect("ephemeral consumer on wadm_notify");
    // INFO and LIST, as wadm does at start.
    commands
        .consumer_info(format!("wadm_commands-{l}"))
        .await
        .expect("consumer info");
    let listed: Vec<_> = commands
        .consumers()
        .try_collect()
        .await
        .expect("consumer list");
    assert_eq!(listed.len(), 1);

    // The server sets up the sourcing of wadm_event_consumer shortly after creating it;
    // messages published before that may never be sourced (a server behaviour that has
    // nothing to do with permissions), so wait, as a long-running wadm effectively does.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut events = js
            .get_stream("wadm_event_consumer")
            .await
            .expect("wadm_event_consumer");
        let info = events.info().await.expect("info");
        if info.sources.len() == 2 && info.sources.iter().all(|s| s.active.is_some()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sources never active: {:?}",
            info.sources
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let publish = |subject: String, js: Context| async move {
        js.publish(subject.clone(), "{}".into())
            .await
            .unwrap_or_else(|e| panic!("publish {subject}: {e}"))
            .await
            .unwrap_or_else(|e| panic!("stored {subject}: {e}"));
    };
    publish(format!("wadm.cmd.{l}"), js.clone()).await;
    publish(format!("wadm.evt.{l}.app_deployed"), js.clone()).await;
    publish(format!("wadm.notify.{l}"), js.clone()).await;
    publish(format!("wadm.status.{l}.app"), js.clone()).await;
    // Host events come from the host: wadm only consumes them.
    publish(format!("wasmbus.evt.{l}.host_started"), bed.js(host)).await;

    assert_eq!(
        pull(&command_consumer, 1).await,
        vec![format!("wadm.cmd.{l}")]
    );
    let transformed: BTreeSet<String> = pull(&event_consumer, 2).await.into_iter().collect();
    assert_eq!(
        transformed,
        BTreeSet::from([
            format!("wadm_event_consumer.evt.{l}.app_deployed"),
            format!("wadm_event_consumer.evt.{l}.host_started"),
        ])
    );
    assert_eq!(
        pull(&notify_consumer, 1).await,
        vec![format!("wadm.notify.{l}")]
    );
    let status = js.get_stream("wadm_status").await.expect("wadm_status");
    let direct = status
        .direct_get_last_for_subject(format!("wadm.status.{l}.app"))
        .await
        .expect("direct get of the status");
    assert_eq!(direct.payload.as_ref(), b"{}");
    let raw = status
        .get_last_raw_message_by_subject(&format!("wadm.status.{l}.app"))
        .await
        .expect("STREAM.MSG.GET of the status");
    assert_eq!(raw.payload.as_ref(), b"{}");
}

/// Every way an app could create, change or delete a stream or read account info; each
/// must fail, leave nothing changed and show up as a violation by `user`.
async fn assert_refused_stream_admin(bed: &Bed, user: &str, own_stream: &str) {
    let client = bed.user(user).await;
    let js = bed.js(&client);
    let intruder = format!("intruder_{}", user.replace('-', "_"));
    let (created, overwritten, updated, deleted, purged, info) = tokio::join!(
        js.create_stream(stream::Config {
            name: intruder.clone(),
            subjects: vec![format!("{intruder}.>")],
            ..Default::default()
        }),
        js.create_stream(stream::Config {
            name: own_stream.to_string(),
            subjects: vec![format!("{intruder}.>")],
            ..Default::default()
        }),
        js.update_stream(stream::Config {
            name: own_stream.to_string(),
            subjects: vec![format!("{intruder}.>")],
            ..Default::default()
        }),
        js.delete_stream(own_stream),
        async {
            let s = js.get_stream_no_info(own_stream).await.expect("bind");
            s.purge().await
        },
        js.query_account(),
    );
    assert!(created.is_err(), "{user} created a stream");
    assert!(overwritten.is_err(), "{user} re-created {own_stream}");
    assert!(updated.is_err(), "{user} updated {own_stream}");
    assert!(deleted.is_err(), "{user} deleted {own_stream}");
    assert!(purged.is_err(), "{user} purged {own_stream}");
    assert!(info.is_err(), "{user} read $JS.API.INFO");
    for fragment in [
        format!("STREAM.CREATE.{intruder}\""),
        format!("STREAM.CREATE.{own_stream}\""),
        format!("STREAM.UPDATE.{own_stream}\""),
        format!("STREAM.DELETE.{own_stream}\""),
        format!("STREAM.PURGE.{own_stream}\""),
        "API.INFO\"".to_string(),
    ] {
        bed.assert_violation(user, &fragment);
    }
    assert!(!bed.stream_exists(&intruder).await);
    let info = bed
        .js(&bed.admin)
        .get_stream(own_stream)
        .await
        .expect("still there")
        .info()
        .await
        .expect("info")
        .clone();
    assert!(
        info.state.messages > 0,
        "{own_stream} lost its messages: {:?}",
        info.state
    );
    assert_ne!(info.config.subjects, vec![format!("{intruder}.>")]);
}

// ---------------------------------------------------------------------------
// The scenario, with and without a JetStream domain
// ---------------------------------------------------------------------------

async fn host_and_wadm_with_generated_templates(domain: Option<&str>) {
    let users = Users::new(domain);
    let bed = Bed::start(&users).await;
    let host_key = nkeys::KeyPair::new_server();
    let service = bed
        .service(Options {
            host_auth: HostAuth {
                require_signed: true,
                ..HostAuth::default()
            },
            ..Options::default()
        })
        .await;

    // The host's first start: a signed bootstrap on its scoped subject, then its buckets.
    let host = bed.user("host").await;
    let reply = request_bootstrap(&host, &host_key, "default", Some("1.9.2"))
        .await
        .expect("the host bootstraps");
    assert_eq!(reply.lattice, "default");
    assert!(reply.signed);
    assert_eq!(reply.js_domain.as_deref(), domain);
    assert_eq!(
        reply.buckets,
        BTreeMap::from([
            ("configdata".to_string(), "CONFIGDATA_default".to_string()),
            ("latticedata".to_string(), "LATTICEDATA_default".to_string()),
        ])
    );
    assert!(reply.resources.iter().all(|r| r["action"] == "created"));
    host_uses_its_buckets(&bed.js(&host), &reply.buckets).await;

    // wadm: its bootstrap, then everything it does.
    let wadm = bed.user("wadm").await;
    let (code, body) = call(&wadm, "wasmcloud.provision.wadm", "")
        .await
        .expect("wadm may ask for its resources");
    assert_eq!(code, None, "{body}");
    assert_eq!(actions(&body), vec!["created"; 8]);
    wadm_uses_its_streams(&bed, &wadm, &host).await;

    // The service's own work under its template: discovery, and the advisories that make
    // it notice a bucket deleted behind its back (its cache would trust it for 10 min).
    let ping = bed
        .admin
        .request(format!("$SRV.PING.{SERVICE_NAME}"), "".into())
        .await
        .expect("the service answers discovery");
    assert!(!ping.payload.is_empty());
    let stats = bed
        .admin
        .request(format!("$SRV.STATS.{SERVICE_NAME}"), "".into())
        .await
        .expect("stats");
    assert!(!stats.payload.is_empty());
    bed.js(&bed.admin)
        .delete_stream("KV_CONFIGDATA_default")
        .await
        .expect("admin deletes a bucket");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let unsigned = json!({"lattice": "default", "host_id": host_key.public_key(),
            "issued_at": now_secs()});
        let (code, body) = call(
            &host,
            "wasmcloud.provision.host.default",
            &unsigned.to_string(),
        )
        .await
        .expect("reply");
        // Unsigned: refused, without touching JetStream.
        assert_eq!(code, Some(403), "{body}");
        let reply = request_bootstrap(&host, &host_key, "default", None)
            .await
            .expect("bootstrap again");
        if reply
            .resources
            .iter()
            .any(|r| r["name"] == "CONFIGDATA_default" && r["action"] == "created")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted bucket was not noticed through the advisories"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let violations = common::permission_violations(&bed.server.log());
    assert!(
        violations.is_empty(),
        "the templates missed something:\n{}",
        violations.join("\n")
    );

    // Now the refusals.
    assert_refused_stream_admin(&bed, "host", "KV_LATTICEDATA_default").await;
    assert_refused_stream_admin(&bed, "wadm", "KV_wadm_state").await;
    let provisioner = bed.user("provisioner").await;
    let js = bed.js(&provisioner);
    let (deleted, purged, info) = tokio::join!(
        js.delete_stream("KV_wadm_state"),
        async {
            let s = js.get_stream_no_info("KV_wadm_state").await.expect("bind");
            s.purge().await
        },
        js.query_account(),
    );
    assert!(deleted.is_err() && purged.is_err() && info.is_err());
    for fragment in [
        "STREAM.DELETE.KV_wadm_state\"",
        "STREAM.PURGE.KV_wadm_state\"",
        "API.INFO\"",
    ] {
        bed.assert_violation("provisioner", fragment);
    }
    assert!(bed.stream_exists("KV_wadm_state").await);
    service.stop().await;
}

#[tokio::test]
async fn host_and_wadm_work_with_their_templates_and_nothing_more() {
    host_and_wadm_with_generated_templates(None).await;
}

#[tokio::test]
async fn the_same_in_jetstream_domain_hub() {
    host_and_wadm_with_generated_templates(Some("hub")).await;
}
