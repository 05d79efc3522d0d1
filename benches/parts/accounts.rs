//! Issue 12's rows: tenants in their own accounts (static config), on a server of their
//! own.
//!
//! - Warm `lattice` requests from a tenant account through the service import, against
//!   the inline echo through the same import (the echo runs in `PROV` too, exported
//!   beside the service): the warm rows' targets, as in the direct case.
//! - One lattice in each of 200 tenant accounts, one after the other: the service (which
//!   opens its connection in each account on first use) against the same two KV creates
//!   per account sent by the bench itself on connections it opened beforehand, in
//!   alternating chunks; and the service's resident memory after.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::echo::Mode;
use super::warm::{measure, rows, Contender};
use super::{
    common, concurrent_creates, lattice_configs, ms, provision, start_echo_as, start_provisioner,
    wait_for_service, Figure, Target, LATTICE_SUBJECT, WARM_PAIRS,
};

/// Tenant accounts of the many-accounts row.
const ACCOUNTS: usize = 200;
/// Accounts per chunk (service and bench alternate by chunk).
const CHUNK: usize = 20;
const IMPORT_SERVICE: &str = r#"{service: {account: PROV, subject: "wasmcloud.provision.>"}}"#;

fn tenant(i: usize) -> String {
    format!("T{i:03}")
}

/// The server's accounts: PROV exports the service and the echo; TENANT_W imports both
/// (the warm rows); T000… import the service (the many-accounts row).
fn server_accounts() -> String {
    let mut c = String::from("accounts {\n");
    c.push_str(
        "  PROV { jetstream: enabled, users: [{user: prov, password: p}, {user: echo, \
         password: p}, {user: admin, password: p}], exports: [{service: \
         \"wasmcloud.provision.>\"}, {service: \"bench.echo\"}] }\n",
    );
    let _ = writeln!(
        c,
        "  TENANT_W {{ jetstream: enabled, users: [{{user: w_prov, password: x}}, {{user: \
         w_host, password: x}}], imports: [{IMPORT_SERVICE}, {{service: {{account: PROV, \
         subject: \"bench.echo\"}}}}] }}"
    );
    for i in 0..ACCOUNTS {
        let t = tenant(i);
        let user = t.to_lowercase();
        let _ = writeln!(
            c,
            "  {t} {{ jetstream: enabled, users: [{{user: {user}_prov, password: x}}, \
             {{user: {user}_host, password: x}}], imports: [{IMPORT_SERVICE}] }}"
        );
    }
    c.push_str("}\n");
    c
}

/// The provisioner's config file: one `[accounts.<name>]` table per tenant.
fn provisioner_config() -> String {
    let mut c = String::from("[accounts.TENANT_W]\nuser = \"w_prov\"\npassword = \"x\"\n");
    for i in 0..ACCOUNTS {
        let t = tenant(i);
        let _ = write!(
            c,
            "\n[accounts.{t}]\nuser = \"{}_prov\"\npassword = \"x\"\n",
            t.to_lowercase()
        );
    }
    c
}

async fn connect_as(url: &str, user: &str, password: &str) -> async_nats::Client {
    common::connect_with(
        url,
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into()),
    )
    .await
}

pub async fn figures(log_dir: &Path) -> Vec<Figure> {
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: server_accounts(),
        ..Default::default()
    });
    let url = server.url();
    let config = log_dir.join("accounts-provisioner.toml");
    std::fs::write(&config, provisioner_config()).expect("write the provisioner's config");
    let config = config.to_str().expect("a UTF-8 path").to_string();
    let mut provisioner = start_provisioner(
        &url,
        &["--user", "prov", "--password", "p", "--config", &config],
        log_dir.join("provisioner-accounts.log"),
    );
    let mut echo = start_echo_as(
        &url,
        Mode::Inline,
        Some(("echo", "p")),
        log_dir.join("echo-accounts.log"),
    );
    let admin = connect_as(&url, "admin", "p").await;
    wait_for_service(&admin, "wasmcloud-provisioner", &mut provisioner).await;
    wait_for_service(&admin, Mode::Inline.service(), &mut echo).await;

    // Warm, through the import.
    let host = connect_as(&url, "w_host", "x").await;
    let lattice = Bytes::from_static(b"warm");
    provision(&host, LATTICE_SUBJECT, lattice.clone(), &["created"]).await;
    let contenders = [
        Contender {
            subject: Mode::Inline.subject(),
            process: &echo,
            provisions: false,
        },
        Contender {
            subject: LATTICE_SUBJECT,
            process: &provisioner,
            provisions: true,
        },
    ];
    let (m, api_calls) = measure(&host, &contenders, lattice).await;
    let mut figures = rows(
        &m[1],
        &m[0],
        ", through an import",
        format!(
            "{WARM_PAIRS} rounds in turn (inline echo, service), both reached from TENANT_W \
             through a service import of PROV; JetStream API calls in TENANT_W while warm: \
             {api_calls} (server audit)"
        ),
    );
    provisioner.check_running();

    // One lattice in each of 200 accounts.
    let mut clients = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let user = format!("{}_host", tenant(i).to_lowercase());
        clients.push(connect_as(&url, &user, "x").await);
    }
    let (mut service_time, mut direct_time) = (Duration::ZERO, Duration::ZERO);
    for chunk in clients.chunks(CHUNK) {
        let t = Instant::now();
        for client in chunk {
            let both = lattice_configs("direct", 1);
            concurrent_creates(client, &[&both]).await;
        }
        direct_time += t.elapsed();
        let t = Instant::now();
        for client in chunk {
            provision(
                client,
                LATTICE_SUBJECT,
                Bytes::from_static(b"service"),
                &["created"],
            )
            .await;
        }
        service_time += t.elapsed();
    }
    provisioner.check_running();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = provisioner.rss_mib();
    figures.extend([
        Figure {
            name: format!("one lattice in each of {ACCOUNTS} accounts, total"),
            unit: "ms",
            value: ms(service_time),
            baseline_name: "the same creates, sent by the bench",
            baseline: Some(ms(direct_time)),
            target: Target::Info,
            note: format!(
                "one account after the other, alternating chunks of {CHUNK} accounts; the \
                 service opens its connection in each account on first use (connect, \
                 account check, advisory subscriptions), the bench's {ACCOUNTS} \
                 connections were opened beforehand"
            ),
            floor: None,
            hop: None,
        },
        Figure {
            name: format!("service RSS, after {} accounts", ACCOUNTS + 1),
            unit: "MiB",
            value: rss,
            baseline_name: "",
            baseline: None,
            target: Target::Info,
            note: format!(
                "VmRSS with a connection open in each of {} tenant accounts",
                ACCOUNTS + 1
            ),
            floor: None,
            hop: None,
        },
    ]);
    drop(clients);
    drop(host);
    drop(echo);
    drop(provisioner);
    drop(admin);
    drop(server);
    figures
}
