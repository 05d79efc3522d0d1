//! Tenants in their own NATS accounts (issue 12): one provisioner, in account PROV,
//! creates each lattice's buckets in the account of the requester, which the server names
//! in `Nats-Request-Info` when the request crosses the service import.
//!
//! Static accounts on one real nats-server: PROV exports `wasmcloud.provision.>`;
//! TENANT_A, TENANT_B (served), TENANT_C (not configured) and TENANT_D (configured with
//! the credentials of a user in TENANT_A, a mistake) import it.

#[path = "../common/mod.rs"]
mod common;

mod isolation;
mod operator;
mod quotas;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use common::provisioner::{Options, RunningService};
use common::reply::call_with;
use common::schema::project_schema;
use common::stream_names as streams;
use wasmcloud_provisioner::config::FileAccount;
use wasmcloud_provisioner::policy::LatticePolicy;
use wasmcloud_provisioner::subjects::SERVICE_NAME;

const IMPORT: &str = r#"imports: [{service: {account: PROV, subject: "wasmcloud.provision.>"}}]"#;

fn accounts_config() -> String {
    let tenant = |name: &str, users: &str| {
        format!("  {name} {{ jetstream: enabled, users: [{users}], {IMPORT} }}\n")
    };
    let mut c = String::from("accounts {\n");
    c.push_str(
        r#"  PROV { jetstream: enabled, users: [{user: prov, password: p}, {user: prov_admin, password: p}], exports: [{service: "wasmcloud.provision.>"}] }
"#,
    );
    for t in ["a", "b", "c", "d"] {
        let name = format!("TENANT_{}", t.to_uppercase());
        let users = format!(
            "{{user: {t}_admin, password: x}}, {{user: {t}_host, password: x}}, \
             {{user: {t}_prov, password: x}}"
        );
        c.push_str(&tenant(&name, &users));
    }
    c.push_str("}\n");
    c
}

fn served(user: &str) -> FileAccount {
    FileAccount {
        user: Some(user.to_string()),
        password: Some("x".to_string()),
        ..Default::default()
    }
}

struct Bed {
    server: common::NatsServer,
    service: RunningService,
}

impl Bed {
    /// A server with the four tenant accounts and the provisioner serving A, B and
    /// (mistakenly, with A's user) D.
    async fn start() -> Bed {
        Bed::start_with(
            BTreeMap::from([
                ("TENANT_A".to_string(), served("a_prov")),
                ("TENANT_B".to_string(), served("b_prov")),
                ("TENANT_D".to_string(), served("a_prov")),
            ]),
            LatticePolicy::default(),
        )
        .await
    }

    async fn start_with(accounts: BTreeMap<String, FileAccount>, policy: LatticePolicy) -> Bed {
        let server = common::NatsServer::start_with(common::ServerOptions {
            extra_config: accounts_config(),
            ..Default::default()
        });
        Bed::start_on(server, accounts, policy).await
    }

    async fn start_on(
        server: common::NatsServer,
        accounts: BTreeMap<String, FileAccount>,
        policy: LatticePolicy,
    ) -> Bed {
        Bed::start_idle(server, accounts, policy, Duration::from_secs(600)).await
    }

    async fn start_idle(
        server: common::NatsServer,
        accounts: BTreeMap<String, FileAccount>,
        policy: LatticePolicy,
        account_idle: Duration,
    ) -> Bed {
        let observer = Bed::connect(&server, "prov_admin").await;
        let service = Options::new()
            .user("prov", "p")
            .accounts(accounts)
            .policy(policy)
            .account_idle(account_idle)
            .start(&server.url(), &observer)
            .await;
        Bed { server, service }
    }

    async fn connect(server: &common::NatsServer, user: &str) -> async_nats::Client {
        let password = if user.starts_with("prov") { "p" } else { "x" };
        common::connect_with(
            &server.url(),
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into()),
        )
        .await
    }

    async fn client(&self, user: &str) -> async_nats::Client {
        Bed::connect(&self.server, user).await
    }

    async fn stop(self) {
        self.service.stop().await;
    }
}

/// A reply: (error code or 200, body).
async fn request(
    client: &async_nats::Client,
    lattice: &str,
    headers: Option<async_nats::HeaderMap>,
) -> (u16, Value) {
    let body = json!({ "lattice": lattice }).to_string();
    let reply = call_with(
        client,
        "wasmcloud.provision.lattice",
        headers.unwrap_or_default(),
        body,
    )
    .await;
    (reply.code, reply.body)
}

/// The next message within 500 ms.
async fn next_message(subscriber: &mut async_nats::Subscriber) -> Option<async_nats::Message> {
    tokio::time::timeout(Duration::from_millis(500), subscriber.next())
        .await
        .ok()
        .flatten()
}

fn lattice_streams(lattice: &str) -> Vec<String> {
    vec![
        format!("KV_CONFIGDATA_{lattice}"),
        format!("KV_LATTICEDATA_{lattice}"),
    ]
}
