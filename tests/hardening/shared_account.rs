//! What a host's template still allows in a shared account, and what it does not.

use super::*;

// ---------------------------------------------------------------------------
// What a host's template still allows, and what it does not (the README's "Security")
// ---------------------------------------------------------------------------

const PASSWORD: &str = "hardening";

/// A server whose account holds `admin` (no restrictions) and hosts of two lattices with
/// exactly their templates.
fn shared_account_server() -> NatsServer {
    let template = |lattice: &str| {
        permissions::template(
            Role::Host,
            &TemplateOptions {
                lattices: vec![lattice.to_string()],
                js_domain: None,
            },
        )
        .expect("template")
        .to_conf()
    };
    let mut users = String::new();
    for (name, block) in [
        ("admin", String::new()),
        ("host-a", template("tenant-a")),
        ("host-b", template("tenant-b")),
    ] {
        users.push_str(&format!(
            "      {{\n        user: {name:?}\n        password: {PASSWORD:?}\n{block}      }}\n"
        ));
    }
    server_with_account("SHARED", "jetstream: enabled", &users)
}

/// A server with one account `name` (`jetstream`: its JetStream block) holding `users`
/// (`{ user, password, permissions }` entries).
fn server_with_account(name: &str, jetstream: &str, users: &str) -> NatsServer {
    NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "accounts {{\n  {name} {{\n    {jetstream}\n    users: [\n{users}    ]\n  }}\n}}\n"
        ),
        ..ServerOptions::default()
    })
}

async fn connect_as(url: &str, user: &str) -> async_nats::Client {
    common::connect_as_user(url, user, PASSWORD, Duration::from_secs(5)).await
}

/// The server logged a permissions violation of `user` naming `subject`.
fn assert_violation(server: &NatsServer, user: &str, subject: &str) {
    let needle = format!("\"{subject}\"");
    let logged = common::wait_for_log(
        || {
            common::permission_violations(&server.log())
                .into_iter()
                .filter(|l| l.contains(&format!("user:{user}")) || l.contains(user))
                .collect::<Vec<_>>()
                .join("\n")
        },
        Duration::from_secs(10),
        |log| log.contains(&needle),
    );
    assert!(
        logged,
        "no violation by {user} on {subject}; violations:\n{}",
        common::permission_violations(&server.log()).join("\n")
    );
}

/// A host of a legitimate lattice cannot reach the subjects a reserved name would have
/// captured; but within one account it reads other lattices' replies (`_INBOX.>`), and it
/// can empty its own bucket with a rollup. Both are the README's "not guaranteed".
#[tokio::test]
async fn what_a_host_template_allows_in_a_shared_account() {
    let server = shared_account_server();
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let js = async_nats::jetstream::new(admin.clone());
    for bucket in ["LATTICEDATA_tenant-a", "CONFIGDATA_tenant-b"] {
        js.create_key_value(async_nats::jetstream::kv::Config {
            bucket: bucket.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("admin creates {bucket}: {e}"));
    }
    let host_a = connect_as(&url, "host-a").await;
    let host_b = connect_as(&url, "host-b").await;

    // Refused: the subjects `wasmbus`, `wadm` and `wasmcloud` lattices would capture.
    for subject in [
        "wasmbus.ctl.v1.tenant-b.host.stop",
        "wadm.api.tenant-b.model.del.app",
        "wasmcloud.provision.lattice.tenant-b",
    ] {
        host_a.publish(subject, "x".into()).await.expect("queued");
    }
    for subject in [
        "wadm.api.>",
        "wasmcloud.provision.>",
        "wasmbus.ctl.v1.tenant-b.>",
    ] {
        let _ = host_a.subscribe(subject).await;
    }
    host_a.flush().await.expect("flush");
    for subject in [
        "wasmbus.ctl.v1.tenant-b.host.stop",
        "wadm.api.tenant-b.model.del.app",
        "wasmcloud.provision.lattice.tenant-b",
        "wadm.api.>",
        "wasmcloud.provision.>",
        "wasmbus.ctl.v1.tenant-b.>",
    ] {
        assert_violation(&server, "host-a", subject);
    }

    // Not isolated: host-a reads the reply to host-b's direct get of its config.
    let admin_kv = js
        .get_key_value("CONFIGDATA_tenant-b")
        .await
        .expect("bucket");
    admin_kv
        .put("db-password", "tenant-b-secret".into())
        .await
        .expect("put");
    let mut spy = host_a.subscribe("_INBOX.>").await.expect("allowed");
    host_a.flush().await.expect("flush");
    let kv_b = async_nats::jetstream::new(host_b.clone())
        .get_key_value("CONFIGDATA_tenant-b")
        .await
        .expect("host-b binds its bucket");
    let value = kv_b.get("db-password").await.expect("host-b reads");
    assert_eq!(value.as_deref(), Some(&b"tenant-b-secret"[..]));
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = futures::StreamExt::next(&mut spy).await {
            if m.payload.as_ref() == b"tenant-b-secret" {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        seen,
        "host-a did not see host-b's reply: isolation would hold"
    );

    // A rollup empties the host's own bucket: KV needs rollups, so it cannot be denied.
    let kv_a = async_nats::jetstream::new(host_a.clone())
        .get_key_value("LATTICEDATA_tenant-a")
        .await
        .expect("host-a binds its bucket");
    for key in ["k1", "k2", "k3"] {
        kv_a.put(key, "v".into()).await.expect("put");
    }
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Rollup", "all");
    async_nats::jetstream::new(host_a.clone())
        .publish_with_headers("$KV.LATTICEDATA_tenant-a.k1", headers, "".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    for key in ["k2", "k3"] {
        assert_eq!(kv_a.get(key).await.expect("get"), None, "{key} survived");
    }
}

/// With `--inbox-prefix`, the provisioner's template subscribes to its own replies only:
/// the service works with it, and its user is refused everyone else's replies.
#[tokio::test]
async fn a_provisioner_with_its_own_inbox_cannot_read_other_replies() {
    let prefix = "_INBOX_provisioner";
    let template = permissions::template(Role::Provisioner, &TemplateOptions::default())
        .expect("template")
        .with_inbox_prefix(Some(prefix))
        .expect("prefix")
        .to_conf();
    let users = format!(
        "      {{ user: admin, password: {PASSWORD:?} }}\n      {{\n        user: provisioner\n        password: {PASSWORD:?}\n{template}      }}\n"
    );
    let server = server_with_account("SHARED", "jetstream: enabled", &users);
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let connect = ConnectArgs {
        server: Some(url.clone()),
        user: Some("provisioner".into()),
        password: Some(PASSWORD.into()),
        inbox_prefix: Some(prefix.into()),
        ..Default::default()
    };
    let service = Options::new().connect(connect).start(&url, &admin).await;
    for (subject, body) in [
        ("wasmcloud.provision.lattice", "default"),
        ("wasmcloud.provision.wadm", ""),
        ("wasmcloud.provision.status", ""),
    ] {
        let reply = call(&admin, subject, body).await;
        assert_eq!(reply.error_code, None, "{subject}: {reply:?}");
    }
    assert_eq!(stream_names(&admin).await.len(), 10);
    assert!(
        common::permission_violations(&server.log()).is_empty(),
        "{:?}",
        common::permission_violations(&server.log())
    );
    // The same user cannot listen to the replies of others.
    let spy = connect_as(&url, "provisioner").await;
    let _ = spy.subscribe("_INBOX.>").await;
    spy.flush().await.expect("flush");
    assert_violation(&server, "provisioner", "_INBOX.>");
    service.stop().await;
}

/// What the provisioner's credentials could do in other hands (README "Security"): with
/// `STREAM.CREATE.*` a stream that sources a bucket and republishes it to a subject the
/// user reads; with the exact-names form that create is refused, but an update of the
/// bucket itself can still add a republish. The code never does either; the credentials
/// must be protected.
#[tokio::test]
async fn what_the_provisioners_credentials_still_allow() {
    let open = permissions::template(Role::Provisioner, &TemplateOptions::default())
        .expect("template")
        .to_conf();
    let exact = permissions::template(
        Role::Provisioner,
        &TemplateOptions {
            lattices: vec!["x".into()],
            js_domain: None,
        },
    )
    .expect("template")
    .to_conf();
    let mut users = format!("      {{ user: admin, password: {PASSWORD:?} }}\n");
    for (name, block) in [("prov-open", open), ("prov-exact", exact)] {
        users.push_str(&format!(
            "      {{\n        user: {name:?}\n        password: {PASSWORD:?}\n{block}      }}\n"
        ));
    }
    let server = server_with_account("SHARED", "jetstream: enabled", &users);
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let kv = async_nats::jetstream::new(admin.clone())
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "CONFIGDATA_x".into(),
            ..Default::default()
        })
        .await
        .expect("bucket");
    kv.put("db-password", "s3cret".into()).await.expect("put");

    // The open template: a new stream sourcing the bucket, republished to its inbox.
    let thief = connect_as(&url, "prov-open").await;
    let mut leak = thief.subscribe("_INBOX.leak.>").await.expect("allowed");
    thief.flush().await.expect("flush");
    let reply = thief
        .request(
            "$JS.API.STREAM.CREATE.LEAK",
            json!({
                "name": "LEAK",
                "sources": [{"name": "KV_CONFIGDATA_x"}],
                "republish": {"src": ">", "dest": "_INBOX.leak.>"},
                "storage": "memory"
            })
            .to_string()
            .into(),
        )
        .await
        .expect("answered");
    let created: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert!(created.get("error").is_none(), "{created}");
    let got = tokio::time::timeout(Duration::from_secs(15), futures::StreamExt::next(&mut leak))
        .await
        .expect("the secret is republished")
        .expect("subscription open");
    assert_eq!(got.payload.as_ref(), b"s3cret");

    // The exact form: no new stream, but the bucket itself can be updated to leak.
    let narrow = connect_as(&url, "prov-exact").await;
    let _ = narrow
        .request(
            "$JS.API.STREAM.CREATE.LEAK2",
            json!({"name": "LEAK2"}).to_string().into(),
        )
        .await;
    narrow.flush().await.expect("flush");
    assert_violation(&server, "prov-exact", "$JS.API.STREAM.CREATE.LEAK2");
    let info: Value = serde_json::from_slice(
        &narrow
            .request("$JS.API.STREAM.INFO.KV_CONFIGDATA_x", "".into())
            .await
            .expect("info")
            .payload,
    )
    .expect("JSON");
    let mut config = info["config"].clone();
    config["republish"] = json!({"src": "$KV.CONFIGDATA_x.>", "dest": "_INBOX.leak2.>"});
    let mut leak2 = narrow.subscribe("_INBOX.leak2.>").await.expect("allowed");
    narrow.flush().await.expect("flush");
    let updated: Value = serde_json::from_slice(
        &narrow
            .request(
                "$JS.API.STREAM.UPDATE.KV_CONFIGDATA_x",
                config.to_string().into(),
            )
            .await
            .expect("answered")
            .payload,
    )
    .expect("JSON");
    assert!(updated.get("error").is_none(), "{updated}");
    kv.put("db-password", "rotated".into()).await.expect("put");
    let got = tokio::time::timeout(
        Duration::from_secs(15),
        futures::StreamExt::next(&mut leak2),
    )
    .await
    .expect("the new value is republished")
    .expect("subscription open");
    assert_eq!(got.payload.as_ref(), b"rotated");
}

/// Hosts create consumers on their buckets (watches, key listings) without a limit of
/// their own; the account's `max_consumers` bounds them (README "Security").
#[tokio::test]
async fn account_limits_bound_a_hosts_consumers() {
    let template = permissions::template(
        Role::Host,
        &TemplateOptions {
            lattices: vec!["tenant-a".into()],
            js_domain: None,
        },
    )
    .expect("template")
    .to_conf();
    let users = format!(
        "      {{ user: admin, password: {PASSWORD:?} }}\n      {{\n        user: host-a\n        password: {PASSWORD:?}\n{template}      }}\n"
    );
    let server = server_with_account("TENANT_A", "jetstream { max_consumers: 3 }", &users);
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    async_nats::jetstream::new(admin.clone())
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "LATTICEDATA_tenant-a".into(),
            ..Default::default()
        })
        .await
        .expect("bucket");
    let host = connect_as(&url, "host-a").await;
    let kv = async_nats::jetstream::new(host)
        .get_key_value("LATTICEDATA_tenant-a")
        .await
        .expect("bind");
    let mut watches = Vec::new();
    for i in 0..3 {
        watches.push(
            kv.watch_all()
                .await
                .unwrap_or_else(|e| panic!("watch {i}: {e}")),
        );
    }
    let fourth = kv.watch_all().await;
    let err = fourth
        .err()
        .expect("the fourth consumer is refused")
        .to_string();
    assert!(err.contains("maximum consumers limit"), "{err}");
}

/// `[hosts]` in the config file reaches `serve` (the real binary) and `config check`:
/// a key bound to `tenant-a` bootstraps it and is refused `tenant-b`.
#[tokio::test]
async fn host_keys_bound_in_the_config_file_hold_in_serve() {
    let server = NatsServer::start();
    let url = server.url();
    let client = test_client(&url).await;
    let key = nkeys::KeyPair::new_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("provisioner.toml");
    std::fs::write(
        &config,
        format!(
            "[hosts]\ntrusted_keys = [\"{}=tenant-a,tenant-a-*\"]\nsignature_max_age = 120\n",
            key.public_key()
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path");

    let (code, stdout, stderr) = run(&["config", "check", config, "--json"], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        v["hosts"],
        json!({"require_signed": true, "trusted_keys": 1, "keys_bound_to_lattices": 1,
               "signature_max_age": 120}),
        "{v}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[hosts]\ntrusted_keys = [\"NOTAKEY=x\"]\n").expect("config");
    let (code, _, stderr) = run(&["config", "check", bad.to_str().expect("path")], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("[hosts]"), "{stderr}");

    let mut command = common::provisioner_command();
    command.args(["--config", config, "-s", &url, "serve"]);
    let serve = Served::start(command, None, &client).await;
    let refused = request_bootstrap(&client, &key, "tenant-b", None).await;
    let message = refused.expect_err("tenant-b is refused");
    assert!(message.starts_with("403"), "{message}");
    assert!(message.contains("not trusted for lattice"), "{message}");
    let unsigned = call(
        &client,
        "wasmcloud.provision.host.tenant-a",
        &json!({"host_id": key.public_key()}).to_string(),
    )
    .await;
    unsigned.error(403);
    request_bootstrap(&client, &key, "tenant-a", None)
        .await
        .expect("tenant-a is served");
    drop(serve);
    assert_eq!(
        stream_names(&client).await,
        vec!["KV_CONFIGDATA_tenant-a", "KV_LATTICEDATA_tenant-a"]
    );
}
