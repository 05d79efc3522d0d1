//! wasmCloud's multitenant mode beside the provisioner (issue 12): the account blocks
//! `accounts::wiring` generates, loaded by a real nats-server, route what a multitenant
//! wadm and the tenants' hosts and clients send — and nothing across tenants.
//!
//! No wadm or host binary runs here (none can be built or fetched on this machine); the
//! clients below send and subscribe on exactly the subjects wadm 0.21 `--multitenant`
//! and the 1.9 host use (see the module docs of `accounts::wiring`).
//!
//! The last test is the whole layout as printed by the binary (`permissions … --wadm-account
//! WADM`) with the provisioner serving it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use wasmcloud_provisioner::accounts::wiring::Wiring;
use wasmcloud_provisioner::config::FileAccount;

const WAIT: Duration = Duration::from_secs(10);

/// The generated blocks with a user (and JetStream) merged into each account, as an
/// operator does.
fn server_config(wiring: &Wiring) -> String {
    let mut config = wiring.conf();
    for account in ["PROV", "A", "B", "WADM"] {
        let user = account.to_lowercase();
        config = config.replacen(
            &format!("  {account}: {{\n"),
            &format!(
                "  {account}: {{\n    jetstream: enabled\n    users: [{{user: {user}, password: p}}]\n"
            ),
            1,
        );
    }
    config
}

fn wiring() -> Wiring {
    let tenants = vec!["A".to_string(), "B".to_string()];
    let mut wiring = Wiring::default();
    wiring.provisioner("PROV", &["A".into(), "B".into(), "WADM".into()]);
    wiring.wadm_multitenant("WADM", &tenants);
    wiring
}

async fn user(server: &common::NatsServer, name: &str) -> async_nats::Client {
    common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password(name.into(), "p".into()),
    )
    .await
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message within 10 s")
        .expect("the subscription is open")
}

#[tokio::test]
async fn wadm_in_its_own_account_hears_each_tenants_hosts_and_commands_them() {
    let config = server_config(&wiring());
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config.clone(),
        ..Default::default()
    });
    let wadm = user(&server, "wadm").await;

    // Hosts' events reach wadm under their account's name, as `*.wasmbus.evt.*.>`.
    let mut events = wadm
        .subscribe("*.wasmbus.evt.*.>")
        .await
        .expect("subscribe");
    wadm.flush().await.expect("flush");
    for tenant in ["A", "B"] {
        let host = user(&server, &tenant.to_lowercase()).await;
        host.publish("wasmbus.evt.default.host_heartbeat", tenant.into())
            .await
            .expect("publish");
        host.flush().await.expect("flush");
        let event = next(&mut events).await;
        assert_eq!(
            event.subject.as_str(),
            format!("{tenant}.wasmbus.evt.default.host_heartbeat"),
            "{config}"
        );
        assert_eq!(&event.payload[..], tenant.as_bytes());
    }

    // wadm's commands to `<account>.wasmbus.ctl.…` reach that account's hosts only.
    let mut hosts = Vec::new();
    for tenant in ["A", "B"] {
        let host = user(&server, &tenant.to_lowercase()).await;
        let mut control = host
            .subscribe("wasmbus.ctl.v1.default.host.get")
            .await
            .expect("subscribe");
        host.flush().await.expect("flush");
        let answering = host.clone();
        let tenant = tenant.to_string();
        hosts.push(tokio::spawn(async move {
            while let Some(request) = control.next().await {
                if let Some(reply) = request.reply {
                    let _ = answering
                        .publish(reply, format!("host of {tenant}").into())
                        .await;
                }
            }
        }));
    }
    for tenant in ["A", "B"] {
        let reply = tokio::time::timeout(
            WAIT,
            wadm.request(
                format!("{tenant}.wasmbus.ctl.v1.default.host.get"),
                "".into(),
            ),
        )
        .await
        .expect("an answer within 10 s")
        .expect("a host answers");
        assert_eq!(
            String::from_utf8_lossy(&reply.payload),
            format!("host of {tenant}")
        );
    }
    for host in hosts {
        host.abort();
    }
    server_has_no_violations(&server);
}

#[tokio::test]
async fn each_tenant_reaches_wadm_only_as_itself() {
    let config = server_config(&wiring());
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config.clone(),
        ..Default::default()
    });
    let wadm = user(&server, "wadm").await;
    let mut api = wadm.subscribe("*.wadm.api.>").await.expect("subscribe");
    wadm.flush().await.expect("flush");
    let answering = wadm.clone();
    let server_task = tokio::spawn(async move {
        while let Some(request) = api.next().await {
            if let Some(reply) = request.reply {
                let _ = answering
                    .publish(reply, request.subject.to_string().into())
                    .await;
            }
        }
    });

    for tenant in ["A", "B"] {
        let client = user(&server, &tenant.to_lowercase()).await;
        let reply = tokio::time::timeout(
            WAIT,
            client.request("wadm.api.default.model.list", "".into()),
        )
        .await
        .expect("an answer within 10 s")
        .expect("wadm answers");
        // wadm sees the request under the tenant's own name: that is what it scopes by.
        assert_eq!(
            String::from_utf8_lossy(&reply.payload),
            format!("{tenant}.wadm.api.default.model.list"),
            "{config}"
        );
        // Another tenant's prefix is not reachable from here: nothing answers.
        let other = if tenant == "A" { "B" } else { "A" };
        let spoofed = client
            .request(format!("{other}.wadm.api.default.model.list"), "".into())
            .await;
        assert!(
            spoofed.is_err(),
            "{tenant} reached wadm as {other}: {spoofed:?}"
        );
    }
    server_task.abort();
    server_has_no_violations(&server);
}

/// The export's account token: a tenant that imports another tenant's API prefix is
/// refused by the server itself, so a hand-edited config cannot make A speak as B.
#[test]
fn the_server_refuses_an_import_of_another_tenants_api_prefix() {
    let config = server_config(&wiring()).replacen(
        "{service: {account: WADM, subject: \"A.wadm.api.>\"}, to: \"wadm.api.>\"}",
        "{service: {account: WADM, subject: \"B.wadm.api.>\"}, to: \"wadm.api.>\"}",
        1,
    );
    assert!(
        config.contains("subject: \"B.wadm.api.>\"}, to"),
        "{config}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nats.conf");
    std::fs::write(&path, &config).expect("write config");
    let out = std::process::Command::new(common::nats_server_bin())
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run nats-server -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains("service import not authorized"),
        "the server accepted A importing B's prefix, or refused it for another reason:\n{text}"
    );
}

/// The wadm account's `wasmbus_events` stream (multitenant subjects and `no_ack`, as the
/// catalog creates it) stores the events the tenants' hosts send.
#[tokio::test]
async fn wadms_events_stream_stores_every_tenants_host_events() {
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: server_config(&wiring()),
        ..Default::default()
    });
    let wadm = user(&server, "wadm").await;
    let js = async_nats::jetstream::new(wadm.clone());
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "wasmbus_events".into(),
            subjects: vec!["*.wasmbus.evt.*.>".into()],
            // As the catalog creates it: `*.` overlaps `$JS.API.>`, which JetStream allows
            // only for a stream that does not ack (error 10052; README, "resources").
            no_ack: true,
            ..Default::default()
        })
        .await
        .expect("create the stream");
    for tenant in ["A", "B"] {
        let host = user(&server, &tenant.to_lowercase()).await;
        host.publish("wasmbus.evt.default.host_started", tenant.into())
            .await
            .expect("publish");
        host.flush().await.expect("flush");
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let messages = stream.info().await.expect("stream info").state.messages;
        if messages == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{messages} of the 2 events stored after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (seq, tenant) in [(1, "A"), (2, "B")] {
        let message = stream.get_raw_message(seq).await.expect("get");
        assert_eq!(
            message.subject.as_str(),
            format!("{tenant}.wasmbus.evt.default.host_started")
        );
    }
}

fn server_has_no_violations(server: &common::NatsServer) {
    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:?}");
}

/// What the binary prints for `args` (it must succeed).
fn printed(args: &[&str]) -> String {
    let out = common::provisioner_command()
        .args(args)
        .output()
        .expect("run the binary");
    common::cli::succeeded(&out);
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The whole layout as an operator builds it from what `permissions --tenant-account A
/// --tenant-account B --wadm-account WADM --format conf` prints (users merged into the
/// printed blocks): the provisioner in PROV serving A, B and WADM; a multitenant wadm's
/// resources in WADM; a host in A with the host template; the host's events stored by
/// wadm's `wasmbus_events` under A's name.
#[tokio::test]
async fn the_printed_multitenant_layout_serves_wadm_and_the_tenants_hosts() {
    let text = printed(&[
        "permissions",
        "--role",
        "provisioner",
        "--tenant-account",
        "A",
        "--tenant-account",
        "B",
        "--wadm-account",
        "WADM",
        "--format",
        "conf",
    ]);
    let (prov_user, accounts, tenant_user) = common::cli::tenant_blocks(&text);
    let host_text = printed(&["permissions", "--role", "host", "--format", "conf"]);
    let host_user = common::cli::between(&host_text, "permissions: {", "\n}\n");

    let merge = |config: String, account: &str, users: String| {
        let block = format!("  {account}: {{\n");
        assert_eq!(config.matches(&block).count(), 1, "{account}:\n{config}");
        config.replacen(
            &block,
            &format!("{block}    jetstream: enabled\n    users: [{users}]\n"),
            1,
        )
    };
    let mut config = merge(
        accounts.to_string(),
        "PROV",
        format!("{{user: prov, password: p, {prov_user}}}, {{user: prov_admin, password: p}}"),
    );
    for account in ["A", "B", "WADM"] {
        let t = account.to_lowercase();
        config = merge(
            config,
            account,
            format!(
                "{{user: {t}_prov, password: p, {tenant_user}}}, \
                 {{user: {t}_host, password: p, {host_user}}}, {{user: {t}, password: p}}"
            ),
        );
    }
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config.clone(),
        ..Default::default()
    });
    let served = |user: &str| FileAccount {
        user: Some(user.to_string()),
        password: Some("p".to_string()),
        ..Default::default()
    };
    let observer = user(&server, "prov_admin").await;
    let service = common::provisioner::Options::new()
        .user("prov", "p")
        .accounts(BTreeMap::from([
            ("A".to_string(), served("a_prov")),
            ("B".to_string(), served("b_prov")),
            ("WADM".to_string(), served("wadm_prov")),
        ]))
        .start(&server.url(), &observer)
        .await;
    let (a, b, wadm, prov) = (
        user(&server, "a").await,
        user(&server, "b").await,
        user(&server, "wadm").await,
        user(&server, "prov_admin").await,
    );

    // wadm (a user in WADM) asks for its resources, multitenant: all 8 land in WADM.
    let reply = common::reply::call(
        &wadm,
        "wasmcloud.provision.wadm",
        json!({"multitenant": true}).to_string(),
    )
    .await;
    assert_eq!(reply.code, 200, "{}\n{config}", reply.raw);
    assert_eq!(
        common::actions(&reply.body),
        vec!["created"; 8],
        "{}",
        reply.raw
    );
    let wadm_streams = common::stream_names(&wadm).await;
    assert_eq!(wadm_streams.len(), 8, "{wadm_streams:?}");
    for name in ["KV_wadm_manifests", "KV_wadm_state", "wasmbus_events"] {
        assert!(wadm_streams.iter().any(|s| s == name), "{wadm_streams:?}");
    }
    let js = async_nats::jetstream::new(wadm.clone());
    let mut events = js
        .get_stream("wasmbus_events")
        .await
        .expect("wasmbus_events");
    let subjects = events.info().await.expect("info").config.subjects.clone();
    assert_eq!(subjects, ["*.wasmbus.evt.*.>"], "multitenant subjects");
    for other in [&a, &b, &prov] {
        assert!(common::stream_names(other).await.is_empty());
    }

    // A host in A (host template) bootstraps lattice `default`: its buckets are A's.
    let host = user(&server, "a_host").await;
    let host_id = nkeys::KeyPair::new_server().public_key();
    let reply = common::reply::call(
        &host,
        "wasmcloud.provision.host.default",
        json!({"lattice": "default", "host_id": host_id}).to_string(),
    )
    .await;
    assert_eq!(reply.code, 200, "{}", reply.raw);
    assert_eq!(
        common::stream_names(&a).await,
        ["KV_CONFIGDATA_default", "KV_LATTICEDATA_default"]
    );
    assert!(common::stream_names(&b).await.is_empty());
    assert!(common::stream_names(&prov).await.is_empty());
    assert_eq!(common::stream_names(&wadm).await.len(), 8);

    // Its event is stored in wadm's account under A's name.
    host.publish("wasmbus.evt.default.host_started", "A".into())
        .await
        .expect("publish");
    host.flush().await.expect("flush");
    let stored = "A.wasmbus.evt.default.host_started";
    let deadline = Instant::now() + WAIT;
    let message = loop {
        match events.get_last_raw_message_by_subject(stored).await {
            Ok(message) => break message,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{stored} not in wadm's wasmbus_events after {WAIT:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(&message.payload[..], b"A");
    let stored_count = events.info().await.expect("info").state.messages;
    assert_eq!(stored_count, 1, "only the host's event is stored");

    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:?}\n{config}");
    service.stop().await;
}

/// Names that cannot make a working layout are refused before anything is printed.
#[test]
fn the_binary_refuses_a_wadm_account_that_cannot_work() {
    for (args, says) in [
        (
            &["--tenant-account", "A", "--wadm-account", "PROV"][..],
            "--wadm-account PROV is the provisioner's own account",
        ),
        (
            &["--tenant-account", "WADM", "--wadm-account", "WADM"][..],
            "name the accounts of the hosts with --tenant-account",
        ),
        (
            &["--tenant-account", "A", "--wadm-account", "W.X"][..],
            "account \"W.X\": use A-Z",
        ),
    ] {
        let out = common::provisioner_command()
            .args(["permissions", "--role", "provisioner"])
            .args(args)
            .output()
            .expect("run the binary");
        common::cli::fails_with(&out, says);
        assert!(out.stdout.is_empty(), "{}", common::cli::text(&out));
    }
    // Without tenants there is nothing for wadm to hear: clap refuses the flag alone.
    let out = common::provisioner_command()
        .args([
            "permissions",
            "--role",
            "provisioner",
            "--wadm-account",
            "W",
        ])
        .output()
        .expect("run the binary");
    assert!(!out.status.success(), "{}", common::cli::text(&out));
    assert!(out.stdout.is_empty(), "{}", common::cli::text(&out));
}
