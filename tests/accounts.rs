//! Tenants in their own NATS accounts (issue 12): one provisioner, in account PROV,
//! creates each lattice's buckets in the account of the requester, which the server names
//! in `Nats-Request-Info` when the request crosses the service import.
//!
//! Static accounts on one real nats-server: PROV exports `wasmcloud.provision.>`;
//! TENANT_A, TENANT_B (served), TENANT_C (not configured) and TENANT_D (configured with
//! the credentials of a user in TENANT_A, a mistake) import it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use common::provisioner::{self, Options, RunningService};
use common::reply::call_with;
use wasmcloud_provisioner::accounts::FileAccount;
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::policy::LatticePolicy;
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::service::SERVICE_NAME;

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

/// The stream names in a client's account.
async fn streams(client: &async_nats::Client) -> Vec<String> {
    let js = async_nats::jetstream::new(client.clone());
    let mut names: Vec<String> = js
        .stream_names()
        .map(|n| n.expect("a name"))
        .collect()
        .await;
    names.sort();
    names
}

fn audit_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/audit_event.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read the schema"))
            .expect("JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
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

#[tokio::test]
async fn each_tenant_gets_its_buckets_in_its_own_account() {
    let bed = Bed::start().await;
    let (a_host, b_host) = (bed.client("a_host").await, bed.client("b_host").await);
    let (a_admin, b_admin) = (bed.client("a_admin").await, bed.client("b_admin").await);
    let prov = bed.client("prov").await;
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");

    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    // Audit events (in PROV) name the account the buckets were created in.
    let validator = audit_schema();
    for _ in 0..2 {
        let event = next_message(&mut events).await.expect("an audit event");
        let event: Value = serde_json::from_slice(&event.payload).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}: {event}");
        assert_eq!(event["account"], "TENANT_A", "{event}");
        assert_eq!(
            event["requester"]["request_info"]["acc"], "TENANT_A",
            "{event}"
        );
    }
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // A sniffer in A, on every subject: it sees A's own replies (the `_INBOX` sniffing
    // that works within one account) ...
    let sniffer = bed.client("a_admin").await;
    let mut sniffed = sniffer.subscribe(">").await.expect("subscribe");
    sniffer.flush().await.expect("flush");
    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    // Its reply (the request's copy may come before or after it) ...
    let mut got_reply = false;
    let marker = format!("marker.{}", nuid::next());
    while !got_reply {
        let m = next_message(&mut sniffed).await.expect("A's own reply");
        got_reply = m.subject.starts_with("_INBOX.")
            && String::from_utf8_lossy(&m.payload).contains("LATTICEDATA_a1");
    }
    // ... and then anything else of A's, up to a marker of the sniffer's own.
    sniffer
        .publish(marker.clone(), "".into())
        .await
        .expect("publish");
    sniffer.flush().await.expect("flush");
    loop {
        let m = next_message(&mut sniffed).await.expect("the marker");
        if m.subject.as_str() == marker {
            break;
        }
    }

    // ... but nothing of B's, while B asks for `b1` and for an `a1` of its own: that is
    // B's own pair, made now (never A's warm reply), and the second time answered warm.
    let (code, body) = request(&b_host, "b1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    let (code, body) = request(&b_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    let (code, body) = request(&b_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
    if let Some(m) = next_message(&mut sniffed).await {
        panic!(
            "A saw B's traffic on {}: {}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }

    let mut b_expected = lattice_streams("a1");
    b_expected.extend(lattice_streams("b1"));
    b_expected.sort();
    assert_eq!(streams(&b_admin).await, b_expected);
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov).await.is_empty());

    // A multitenant wadm in its own account (B here) gets its 8 resources there.
    let reply = b_host
        .request(
            "wasmcloud.provision.wadm",
            json!({"multitenant": true}).to_string().into(),
        )
        .await
        .expect("the provisioner answers");
    let body: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(common::actions(&body), vec!["created"; 8], "{body}");
    assert_eq!(streams(&b_admin).await.len(), b_expected.len() + 8);
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov).await.is_empty());
    bed.stop().await;
}

#[tokio::test]
async fn accounts_not_served_are_refused_and_nothing_is_created() {
    let bed = Bed::start().await;
    let prov = bed.client("prov").await;
    let (a_admin, c_admin) = (bed.client("a_admin").await, bed.client("c_admin").await);

    let (code, body) = request(&bed.client("c_host").await, "c1", None).await;
    assert_eq!(code, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("account TENANT_C is not served here"),
        "{message}"
    );
    assert!(streams(&c_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // TENANT_D is configured with the user of another account: the provisioner finds out
    // before it creates anything there.
    let (code, body) = request(&bed.client("d_host").await, "d1", None).await;
    assert_eq!(code, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the credentials of [accounts.TENANT_D] are those of a user in account TENANT_A"
        ),
        "{message}"
    );
    assert!(streams(&a_admin).await.is_empty());
    assert!(streams(&bed.client("d_admin").await).await.is_empty());
    // Requests right after a failed open share its answer: no connection attempt each.
    let d_host = bed.client("d_host").await;
    for _ in 0..5 {
        let (code, body) = request(&d_host, "d1", None).await;
        assert_eq!(code, 503, "{body}");
    }
    let (_, closed) = bed
        .server
        .http_get("/connz?acc=TENANT_A&state=closed&auth=true&limit=1000")
        .expect("/connz answers");
    let closed: Value = serde_json::from_str(&closed).expect("JSON");
    let attempts = closed["connections"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|c| c["authorized_user"] == "a_prov")
                .count()
        })
        .unwrap_or(0);
    assert!(
        attempts <= 2,
        "{attempts} connections for 6 requests: {closed}"
    );
    bed.stop().await;
}

fn forged(account: &str) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert(
        "Nats-Request-Info",
        json!({ "acc": account, "user": "forger" })
            .to_string()
            .as_str(),
    );
    h
}

#[tokio::test]
async fn a_forged_request_info_never_reaches_another_account() {
    let bed = Bed::start().await;
    let prov = bed.client("prov").await;
    let (a_admin, b_admin) = (bed.client("a_admin").await, bed.client("b_admin").await);

    // Within PROV the server passes a client's header on as sent: refused, since the
    // request did not come through an import.
    let (code, body) = request(&prov, "x1", Some(forged("TENANT_B"))).await;
    assert_eq!(code, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("did not come through a service import"),
        "{message}"
    );
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // Across the import (2.12.8) the server replaces it with the requester's account.
    let (code, body) = request(&bed.client("a_host").await, "x2", Some(forged("TENANT_B"))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("x2"));
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // Without the header, PROV's own requests are served in PROV as always (and their
    // audit events name no tenant account).
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");
    let (code, body) = request(&prov, "p1", None).await;
    assert_eq!(code, 200, "{body}");
    // (Events of x2 may still be on their way: they name TENANT_A.)
    loop {
        let event = next_message(&mut events).await.expect("p1's audit event");
        let event: Value = serde_json::from_slice(&event.payload).expect("JSON");
        if event["resource"]["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("_p1")
        {
            assert!(event.get("account").is_none(), "{event}");
            break;
        }
        assert_eq!(event["account"], "TENANT_A", "{event}");
    }
    assert_eq!(streams(&prov).await, lattice_streams("p1"));
    assert!(streams(&b_admin).await.is_empty());
    bed.stop().await;
}

/// `config check` resolves `[accounts.*]`: a served account is listed (no secrets), and
/// one without credentials of its own, or with a bad glob, fails before `serve` would.
#[test]
fn config_check_lists_and_checks_the_tenant_accounts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("provisioner.toml");
    let check = |text: &str| {
        std::fs::write(&config, text).expect("write the config");
        common::provisioner_command()
            .args(["config", "check", "--json"])
            .arg(&config)
            .output()
            .expect("run config check")
    };
    let out = check(
        "[accounts.TENANT_A]\nuser = \"a_prov\"\npassword = \"secret\"\nreplicas = 3\n\
         allow_lattices = [\"a-*\"]\nmax_lattices = 5\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("secret"), "{text}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let a = &report["accounts"][0];
    assert_eq!(a["name"], "TENANT_A", "{report}");
    assert_eq!(a["replicas"], 3, "{report}");
    assert_eq!(a["max_lattices"], 5, "{report}");
    assert_eq!(a["allow_lattices"], json!(["a-*"]), "{report}");

    // Operator mode: a signing key, the table named by the account's public key.
    let key = nkeys::KeyPair::new_account();
    let seed = dir.path().join("a.nk");
    std::fs::write(&seed, key.seed().expect("seed")).expect("write");
    let out = check(&format!(
        "[accounts.{}]\nsigning_key = {:?}\nuser_expiry = \"30m\"\n",
        key.public_key(),
        seed.to_string_lossy()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let auth = report["accounts"][0]["auth"].as_str().unwrap_or_default();
    assert!(
        auth.starts_with("users minted with") && auth.ends_with("valid 1800 s"),
        "{report}"
    );

    let no_seed_file = format!(
        "[accounts.{}]\nsigning_key = \"/nonexistent/a.nk\"\n",
        nkeys::KeyPair::new_account().public_key()
    );
    for (text, expected) in [
        (
            "[accounts.TENANT_A]\nreplicas = 3\n",
            "give the credentials of a user in account TENANT_A",
        ),
        (
            "[accounts.TENANT_A]\ncreds = \"/nonexistent/a.creds\"\n",
            "credentials file /nonexistent/a.creds does not exist",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nallow_lattices = [\"wasmbus\"]\n",
            "[accounts.TENANT_A]",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nquota = 1\n",
            "unknown field",
        ),
        (
            "[accounts.TENANT_A]\nsigning_key = \"/nonexistent/a.nk\"\n",
            "name the table by the account's public key",
        ),
        (
            no_seed_file.as_str(),
            "cannot read the account seed file /nonexistent/a.nk",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nuser_expiry = \"1h\"\n",
            "user_expiry is for signing_key",
        ),
    ] {
        let out = check(text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: accepted");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}

/// `--max-lattices` and the allowed globs apply per account: a tenant's cap counts only its
/// own lattices (nor PROV's); and each account's warm path makes no JetStream call at all,
/// counted from that account's own API audit advisories.
#[tokio::test]
async fn quotas_and_the_warm_path_are_per_account() {
    // The provisioner-wide cap of 2 applies to B (no cap of its own) and to PROV; A has
    // its own cap and globs.
    let a = FileAccount {
        allow_lattices: vec!["a*".into()],
        max_lattices: Some(1),
        ..served("a_prov")
    };
    let bed = Bed::start_with(
        BTreeMap::from([
            ("TENANT_A".to_string(), a),
            ("TENANT_B".to_string(), served("b_prov")),
        ]),
        LatticePolicy::new(Vec::new(), Some(2)).expect("a policy"),
    )
    .await;
    let prov = bed.client("prov").await;
    let (a_host, b_host) = (bed.client("a_host").await, bed.client("b_host").await);
    let (a_admin, b_admin) = (bed.client("a_admin").await, bed.client("b_admin").await);

    for l in ["p1", "p2"] {
        assert_eq!(request(&prov, l, None).await.0, 200);
    }
    assert_eq!(request(&a_host, "a1", None).await.0, 200);
    let (code, body) = request(&a_host, "a2", None).await;
    assert_eq!(code, 429, "A's cap is 1: {body}");
    let (code, body) = request(&a_host, "b9", None).await;
    assert_eq!(code, 403, "A serves only a*: {body}");
    // B's count is B's: PROV's two and A's one do not count.
    for l in ["b1", "b2"] {
        let (code, body) = request(&b_host, l, None).await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = request(&b_host, "b3", None).await;
    assert_eq!(code, 429, "B's cap is the provisioner's 2: {body}");
    // A's one lattice, and (with a cap) the reservations bucket of `--max-lattices`
    // admission, kept per account like the count.
    let mut want = lattice_streams("a1");
    want.push("KV_wasmcloud_provisioner_admissions".into());
    assert_eq!(streams(&a_admin).await, want);

    // Warm: the same requests again, many times, in both accounts: no JetStream call in
    // either (nor in PROV).
    let audits = [
        common::api_audit::ApiAudit::start(&a_admin).await,
        common::api_audit::ApiAudit::start(&b_admin).await,
        common::api_audit::ApiAudit::start(&prov).await,
    ];
    let admins = [&a_admin, &b_admin, &prov];
    let mut before = Vec::new();
    for (audit, admin) in audits.iter().zip(admins) {
        before.push(real_calls(audit.calls_so_far(admin).await));
    }
    for _ in 0..20 {
        for (host, l) in [
            (&a_host, "a1"),
            (&b_host, "b1"),
            (&b_host, "b2"),
            (&prov, "p1"),
        ] {
            let (code, body) = request(host, l, None).await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
        }
    }
    let mut warm = Vec::new();
    for ((audit, admin), before) in audits.iter().zip(admins).zip(&before) {
        let after = real_calls(audit.calls_so_far(admin).await);
        assert_eq!(&after, before, "JetStream calls while warm");
        warm.push(after);
    }
    // The counters do see each account's calls: a new lattice past the cap is counted
    // (STREAM.NAMES, and the admission's reservations bucket) in the account that asked,
    // and only there.
    for (i, (host, l)) in [(&a_host, "a3"), (&b_host, "b4"), (&prov, "p3")]
        .into_iter()
        .enumerate()
    {
        assert_eq!(request(host, l, None).await.0, 429);
        for (j, (audit, admin)) in audits.iter().zip(admins).enumerate() {
            let calls = real_calls(audit.calls_so_far(admin).await);
            let new = &calls[warm[j].len()..];
            if i == j {
                assert!(
                    new.iter().any(|c| c == "$JS.API.STREAM.NAMES")
                        && new.iter().all(|c| c == "$JS.API.STREAM.NAMES"
                            || c.ends_with(".KV_wasmcloud_provisioner_admissions")),
                    "account {j}: {new:?}"
                );
                warm[j] = calls;
            } else {
                assert!(new.is_empty(), "account {j} saw {new:?}");
            }
        }
    }

    // STATS count the requests served in each tenant account (PROV's are the rest).
    let stats = prov
        .request(format!("$SRV.STATS.{SERVICE_NAME}"), "".into())
        .await
        .expect("$SRV.STATS");
    let stats: Value = serde_json::from_slice(&stats.payload).expect("JSON");
    let lattice = stats["endpoints"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "lattice"))
        .map(|e| e["data"].clone())
        .expect("the lattice endpoint");
    // A: a1, a2, b9, 20 warm, a3; B: b1, b2, b3, 40 warm, b4.
    assert_eq!(
        lattice["accounts"],
        json!({"TENANT_A": 24, "TENANT_B": 44, "other": 0}),
        "{lattice}"
    );
}

/// API calls but the audit's own markers.
fn real_calls(calls: Vec<String>) -> Vec<String> {
    calls
        .into_iter()
        .filter(|c| !c.contains("audit-marker"))
        .collect()
}

/// The text between the first `start` and the following `end` (both included).
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"));
    let len = text[at..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?} in:\n{text}"));
    &text[at..at + len + end.len()]
}

/// `permissions --role provisioner --tenant-account …` prints account blocks and a tenant
/// user that work as printed: a server configured with them (plus users) serves both
/// tenants, with the provisioner's users holding exactly the printed permissions and no
/// permission violation.
#[tokio::test]
async fn the_printed_account_blocks_and_users_serve_the_tenants() {
    let out = common::provisioner_command()
        .args(["permissions", "--role", "provisioner"])
        .args([
            "--tenant-account",
            "TENANT_A",
            "--tenant-account",
            "TENANT_B",
        ])
        .args(["--format", "conf"])
        .output()
        .expect("run permissions");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let prov_user = between(&text, "permissions: {", "\n}\n");
    let accounts = between(&text, "accounts {", "}\n# end accounts");
    let accounts = &accounts[..accounts.len() - "# end accounts".len()];
    let tenant_user = between(
        &text[text.find("# end accounts").expect("the end marker")..],
        "permissions: {",
        "\n}\n",
    );
    assert!(
        text.trim_end().ends_with("# end tenant user permissions"),
        "{text}"
    );

    // The printed blocks, with users (and JetStream) merged in.
    let mut config = accounts.replacen(
        "  PROV: {\n",
        &format!("  PROV: {{\n    jetstream: enabled\n    users: [{{user: prov, password: p, {prov_user}}}, {{user: prov_admin, password: p}}]\n"),
        1,
    );
    for t in ["a", "b"] {
        let name = format!("TENANT_{}", t.to_uppercase());
        config = config.replacen(
            &format!("  {name}: {{\n"),
            &format!(
                "  {name}: {{\n    jetstream: enabled\n    users: [{{user: {t}_prov, password: x, \
                 {tenant_user}}}, {{user: {t}_host, password: x}}, {{user: {t}_admin, password: x}}]\n"
            ),
            1,
        );
    }
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config.clone(),
        ..Default::default()
    });
    let bed = Bed::start_on(
        server,
        BTreeMap::from([
            ("TENANT_A".to_string(), served("a_prov")),
            ("TENANT_B".to_string(), served("b_prov")),
        ]),
        LatticePolicy::default(),
    )
    .await;
    for t in ["a", "b"] {
        let lattice = format!("{t}1");
        let (code, body) = request(&bed.client(&format!("{t}_host")).await, &lattice, None).await;
        assert_eq!(code, 200, "{body}\n{config}");
        assert_eq!(common::actions(&body), ["created", "created"], "{body}");
        let admin = bed.client(&format!("{t}_admin")).await;
        assert_eq!(streams(&admin).await, lattice_streams(&lattice));
    }
    let log = bed.server.log();
    let violations = common::permission_violations(&log);
    assert!(violations.is_empty(), "{violations:?}\n{config}");
    bed.stop().await;
}

/// How many connections `user` has open in `account` (the server's `/connz`).
fn connections(server: &common::NatsServer, account: &str, user: &str) -> usize {
    let (status, body) = server
        .http_get(&format!("/connz?acc={account}&auth=true&limit=1000"))
        .expect("/connz answers");
    assert_eq!(status, 200, "{body}");
    let connz: Value = serde_json::from_str(&body).expect("JSON");
    connz["connections"]
        .as_array()
        .map(|l| l.iter().filter(|c| c["authorized_user"] == user).count())
        .unwrap_or(0)
}

/// A tenant account's connection is opened by its first request, kept while requests
/// come, closed once idle, and opened again by the next request.
#[tokio::test]
async fn tenant_connections_close_when_idle_and_reopen() {
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: accounts_config(),
        ..Default::default()
    });
    let bed = Bed::start_idle(
        server,
        BTreeMap::from([("TENANT_A".to_string(), served("a_prov"))]),
        LatticePolicy::default(),
        Duration::from_secs(1),
    )
    .await;
    let a_host = bed.client("a_host").await;
    assert_eq!(connections(&bed.server, "TENANT_A", "a_prov"), 0);
    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(connections(&bed.server, "TENANT_A", "a_prov"), 1);
    // Requests keep it open past the idle time (counted from the last request).
    let busy_until = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < busy_until {
        let (code, body) = request(&a_host, "a1", None).await;
        assert_eq!(
            (code, common::actions(&body)),
            (200, vec!["exists".to_string(); 2])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(connections(&bed.server, "TENANT_A", "a_prov"), 1);
    // Idle: closed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while connections(&bed.server, "TENANT_A", "a_prov") > 0 {
        assert!(Instant::now() < deadline, "the idle connection stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The next request opens it again.
    let (code, body) = request(&a_host, "a2", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert_eq!(connections(&bed.server, "TENANT_A", "a_prov"), 1);
    bed.stop().await;
}

/// Operator mode (memory resolver): operator, SYS, PROV (exporting the service) and
/// TENANT_A (importing it) minted here. The provisioner holds only a signing key of
/// TENANT_A, mints itself a user there, provisions into it, and mints a new user before
/// each one expires, without a failed request.
#[tokio::test]
async fn operator_mode_mints_its_users_and_renews_them_before_they_expire() {
    use nkeys::KeyPair;
    use wasmcloud_provisioner::creds;

    let dir = tempfile::tempdir().expect("temp dir");
    let now = creds::unix_now();
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let prov = KeyPair::new_account();
    let tenant = KeyPair::new_account();
    let tenant_signing = KeyPair::new_account();
    let unlimited = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = |key: &KeyPair, name: &str, extra: Value| {
        let mut nats = json!({"limits": unlimited, "type": "account", "version": 2});
        for (k, v) in extra.as_object().expect("an object") {
            nats[k] = v.clone();
        }
        creds::encode_jwt(
            json!({"sub": key.public_key(), "name": name, "nats": nats}),
            &operator,
            now,
        )
        .expect("account JWT")
    };
    let subject = "wasmcloud.provision.>";
    let jwts = [
        // No JetStream in the system account.
        (
            &system,
            account_jwt(
                &system,
                "SYS",
                json!({"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                  "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}}),
            ),
        ),
        (
            &prov,
            account_jwt(
                &prov,
                "PROV",
                json!({"exports": [{"name": "provisioner", "subject": subject, "type": "service"}]}),
            ),
        ),
        (
            &tenant,
            account_jwt(
                &tenant,
                "TENANT_A",
                json!({
                    "imports": [{"name": "provisioner", "subject": subject,
                                 "account": prov.public_key(), "type": "service"}],
                    "signing_keys": [tenant_signing.public_key()],
                }),
            ),
        ),
    ];
    let operator_jwt = creds::encode_jwt(
        json!({"sub": operator.public_key(), "name": "test-operator",
               "nats": {"system_account": system.public_key(), "type": "operator", "version": 2}}),
        &operator,
        now,
    )
    .expect("operator JWT");
    let operator_file = dir.path().join("operator.jwt");
    std::fs::write(&operator_file, operator_jwt).expect("write");
    let mut config = format!(
        "operator: {:?}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n",
        operator_file.to_string_lossy(),
        system.public_key()
    );
    for (key, jwt) in &jwts {
        config.push_str(&format!("  {}: {:?}\n", key.public_key(), jwt));
    }
    config.push_str("}\n");
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config,
        ..Default::default()
    });

    // Users with every permission: the provisioner's own in PROV, a host and an admin in A.
    let user = |account: &KeyPair| {
        let signer = creds::AccountSigner::new(
            KeyPair::from_seed(&account.seed().expect("seed")).expect("key"),
            None,
        )
        .expect("signer");
        let u = signer
            .mint_user("test", &Default::default(), None)
            .expect("a user");
        (u.jwt, u.seed)
    };
    let connect = |(jwt, seed): (String, String)| {
        let url = server.url();
        async move {
            common::connect_with(
                &url,
                async_nats::ConnectOptions::with_credentials(&creds::format_creds(&jwt, &seed))
                    .expect("credentials"),
            )
            .await
        }
    };
    let (prov_jwt, prov_seed) = user(&prov);
    let a_host = connect(user(&tenant)).await;
    let a_admin = connect(user(&tenant)).await;
    let prov_admin = connect((prov_jwt.clone(), prov_seed.clone())).await;

    let seed_file = dir.path().join("tenant-a-signing.nk");
    std::fs::write(&seed_file, tenant_signing.seed().expect("seed")).expect("write");
    let mut resolved = common::resolved(&ConnectArgs {
        server: Some(server.url()),
        ..Default::default()
    });
    resolved.auth = wasmcloud_provisioner::config::Auth::JwtAndSeed {
        jwt: prov_jwt,
        seed: prov_seed,
    };
    resolved.file_accounts = BTreeMap::from([(
        tenant.public_key(),
        FileAccount {
            signing_key: Some(seed_file),
            user_expiry: Some("4s".into()),
            ..Default::default()
        },
    )]);
    let service = provisioner::start(ServiceSetup::new(resolved), &prov_admin).await;

    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov_admin).await.is_empty());
    let first = provisioner_user(&server, &tenant.public_key());
    assert!(first.starts_with('U'), "{first}");

    // Past two expiries: every request answered, by users minted one after another.
    let mut users = vec![first];
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        let (code, body) = request(&a_host, "a1", None).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
        let now = provisioner_user(&server, &tenant.public_key());
        if users.last() != Some(&now) {
            users.push(now);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(users.len() >= 2, "never renewed: {users:?}");
    service.stop().await;
}

/// The user of the provisioner's newest connection in an account (`/connz`).
fn provisioner_user(server: &common::NatsServer, account: &str) -> String {
    let (_, body) = server
        .http_get(&format!(
            "/connz?acc={account}&auth=true&sort=start&limit=1000"
        ))
        .expect("/connz answers");
    let connz: Value = serde_json::from_str(&body).expect("JSON");
    connz["connections"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .filter(|c| c["name"] == SERVICE_NAME)
                .filter_map(|c| c["authorized_user"].as_str())
                .next_back()
                .map(str::to_string)
        })
        .unwrap_or_default()
}
