//! Least privilege under attack, against a real nats-server (issue 10): reserved lattice
//! names refused at every entry point, refusals that reveal neither other tenants nor the
//! operator's policy, the operator's replicas as a floor, and signed host requests that
//! cannot come from the future or bootstrap a lattice their key is not bound to.

mod common;

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use serde_json::{json, Value};

use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::endpoints::{self, host};
use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
use wasmcloud_provisioner::policy::{HostAuth, HostAuthArgs, LatticePolicy};
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::service::SERVICE_NAME;
use wasmcloud_provisioner::settings::Settings;

/// Failsafe for one reply; never a timing assertion.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The service in-process, with a lattice policy and host authentication
// ---------------------------------------------------------------------------

struct Service(common::provisioner::RunningService);

impl Service {
    async fn start(
        url: &str,
        settings: Settings,
        policy: LatticePolicy,
        host_auth: HostAuth,
    ) -> Service {
        let observer = common::connect(url).await;
        let connect = ConnectArgs {
            server: Some(url.to_string()),
            ..Default::default()
        };
        Service::start_as(&connect, &observer, settings, policy, host_auth).await
    }

    /// Connected with `connect` (a user, an inbox prefix); `observer` waits for it.
    async fn start_as(
        connect: &ConnectArgs,
        observer: &async_nats::Client,
        settings: Settings,
        policy: LatticePolicy,
        host_auth: HostAuth,
    ) -> Service {
        let mut resolved = common::resolved(connect);
        resolved.settings = settings;
        let setup = ServiceSetup {
            policy,
            host_auth,
            ..ServiceSetup::new(resolved)
        };
        Service(common::provisioner::start(setup, observer).await)
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

/// A reply taken apart: ADR-32 headers, the raw text (for leak checks) and the JSON body.
#[derive(Debug)]
struct Reply {
    code: Option<u16>,
    header: Option<String>,
    raw: String,
    body: Value,
}

impl Reply {
    /// An error with both headers and a JSON body carrying the same code; its message.
    fn error(&self, code: u16) -> String {
        assert_eq!(self.code, Some(code), "{self:?}");
        let header = self.header.clone().unwrap_or_default();
        assert!(!header.trim().is_empty(), "no Nats-Service-Error: {self:?}");
        assert_eq!(self.body["error"]["code"], json!(code), "{self:?}");
        let message = self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!message.is_empty(), "{self:?}");
        message
    }

    /// Neither the headers nor the body mention `secret`.
    fn assert_silent_about(&self, secret: &str) {
        assert!(
            !self.raw.contains(secret),
            "body reveals {secret:?}: {}",
            self.raw
        );
        assert!(
            !self.header.clone().unwrap_or_default().contains(secret),
            "header reveals {secret:?}: {:?}",
            self.header
        );
    }
}

async fn call_with(
    client: &async_nats::Client,
    subject: &str,
    headers: HeaderMap,
    body: &str,
) -> Reply {
    let message = tokio::time::timeout(
        REPLY_TIMEOUT,
        client.request_with_headers(subject.to_string(), headers, body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: no reply"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let raw = String::from_utf8_lossy(&message.payload).into_owned();
    Reply {
        code: header("Nats-Service-Error-Code").and_then(|c| c.parse().ok()),
        header: header("Nats-Service-Error"),
        body: serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{subject}: not JSON ({e}): {raw}")),
        raw,
    }
}

async fn call(client: &async_nats::Client, subject: &str, body: &str) -> Reply {
    call_with(client, subject, HeaderMap::new(), body).await
}

/// Every stream of the account.
async fn stream_names(client: &async_nats::Client) -> Vec<String> {
    let m = client
        .request("$JS.API.STREAM.NAMES", "{}".into())
        .await
        .expect("STREAM.NAMES");
    let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
    let mut names: Vec<String> = v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn test_client(url: &str) -> async_nats::Client {
    common::connect_with(
        url,
        async_nats::ConnectOptions::new().request_timeout(Some(REPLY_TIMEOUT)),
    )
    .await
}

fn reserve(tokens: &[&str]) -> LatticePolicy {
    LatticePolicy::new(vec![], None)
        .expect("policy")
        .with_reserved(tokens.iter().map(|t| t.to_string()).collect())
        .expect("reserved names")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------
// 1. Reserved lattice names
// ---------------------------------------------------------------------------

/// Every endpoint refuses every reserved name, built in or the operator's, with a 400
/// saying what it would capture, and creates nothing; other spellings are served.
#[tokio::test]
async fn reserved_lattice_names_are_refused_by_every_endpoint() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let service = Service::start(
        &server.url(),
        Settings::default(),
        reserve(&["billing"]),
        HostAuth::default(),
    )
    .await;
    let key = nkeys::KeyPair::new_server().public_key();
    let host = |l: Option<&str>| match l {
        Some(l) => json!({"lattice": l, "host_id": key}).to_string(),
        None => json!({"host_id": key}).to_string(),
    };
    let cases: Vec<(String, String, &str)> = vec![
        (
            "wasmcloud.provision.lattice".into(),
            "wasmbus".into(),
            "wasmbus.ctl.v1",
        ),
        (
            "wasmcloud.provision.lattice".into(),
            r#"{"lattice":"wadm"}"#.into(),
            "wadm.api.>",
        ),
        (
            "wasmcloud.provision.lattice".into(),
            "\"_INBOX\"".into(),
            "_INBOX.>",
        ),
        (
            "wasmcloud.provision.lattice".into(),
            "wasmcloud".into(),
            "wasmcloud.provision.>",
        ),
        ("wasmcloud.provision.lattice".into(), "$JS".into(), "$JS.>"),
        (
            "wasmcloud.provision.lattice.wasmcloud".into(),
            "".into(),
            "wasmcloud.provision.>",
        ),
        (
            "wasmcloud.provision.lattice._INBOX".into(),
            "".into(),
            "_INBOX.>",
        ),
        (
            "wasmcloud.provision.lattice.$SYS".into(),
            "".into(),
            "$SYS.>",
        ),
        (
            "wasmcloud.provision.lattice._R_".into(),
            r#"{"dry_run":true}"#.into(),
            "_R_",
        ),
        (
            "wasmcloud.provision.status".into(),
            "wasmbus".into(),
            "wasmbus.ctl.v1",
        ),
        (
            "wasmcloud.provision.status".into(),
            r#"{"lattice":"wadm_event_consumer","wadm":true}"#.into(),
            "wadm_event_consumer.evt",
        ),
        (
            "wasmcloud.provision.host".into(),
            host(Some("wadm")),
            "wadm.api.>",
        ),
        (
            "wasmcloud.provision.host.wasmbus".into(),
            host(None),
            "wasmbus.ctl.v1",
        ),
        (
            "wasmcloud.provision.host._INBOX".into(),
            host(Some("_INBOX")),
            "_INBOX.>",
        ),
        // The operator's own reserved name, on every endpoint.
        (
            "wasmcloud.provision.lattice".into(),
            "billing".into(),
            "--reserve-lattice-name",
        ),
        (
            "wasmcloud.provision.lattice".into(),
            r#"{"lattice":"billing","dry_run":true}"#.into(),
            "--reserve-lattice-name",
        ),
        (
            "wasmcloud.provision.lattice.billing".into(),
            "".into(),
            "--reserve-lattice-name",
        ),
        (
            "wasmcloud.provision.status".into(),
            "billing".into(),
            "--reserve-lattice-name",
        ),
        (
            "wasmcloud.provision.host".into(),
            host(Some("billing")),
            "--reserve-lattice-name",
        ),
        (
            "wasmcloud.provision.host.billing".into(),
            host(Some("billing")),
            "--reserve-lattice-name",
        ),
    ];
    for (subject, body, says) in &cases {
        let reply = call(&client, subject, body).await;
        let message = reply.error(400);
        assert!(message.contains("reserved"), "{subject} {body}: {message}");
        assert!(message.contains(says), "{subject} {body}: {message}");
    }
    assert_eq!(stream_names(&client).await, Vec::<String>::new());

    // Subjects are case-sensitive: `WADM.>` captures nothing, so `WADM` is a lattice.
    for l in ["WADM", "billing-eu"] {
        let reply = call(&client, "wasmcloud.provision.lattice", l).await;
        assert_eq!(reply.code, None, "{reply:?}");
    }
    assert_eq!(
        stream_names(&client).await,
        vec![
            "KV_CONFIGDATA_WADM",
            "KV_CONFIGDATA_billing-eu",
            "KV_LATTICEDATA_WADM",
            "KV_LATTICEDATA_billing-eu"
        ]
    );
    service.stop().await;
}

/// Runs the binary with an environment of its own; returns (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = common::provisioner_command();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `permissions`, `creds`, `apply`, `plan`, `serve` and `config check` refuse reserved
/// names, built in or the operator's (flag, environment, config file), exit 1 with the
/// reason, and create nothing.
#[tokio::test]
async fn the_command_line_refuses_reserved_names() {
    let server = NatsServer::start();
    let url = server.url();
    let client = test_client(&url).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("host.creds");
    let out = out.to_str().expect("utf-8 path");
    let seed = dir.path().join("account.nk");
    std::fs::write(&seed, nkeys::KeyPair::new_account().seed().expect("seed")).expect("seed");
    let seed = seed.to_str().expect("utf-8 path");
    let config = dir.path().join("provisioner.toml");
    std::fs::write(
        &config,
        "reserved_lattice_names = [\"billing\"]\nmax_request_replicas = 3\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path");

    /// Arguments, environment, what stderr must say.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let refused: Vec<Case> = vec![
        (
            vec!["permissions", "--role", "host", "--lattice", "wasmbus"],
            vec![],
            "wasmbus.ctl.v1",
        ),
        (
            vec![
                "permissions",
                "--role",
                "host",
                "--lattice",
                "default",
                "--lattice",
                "_INBOX",
            ],
            vec![],
            "_INBOX.>",
        ),
        (
            vec!["permissions", "--role", "provisioner", "--lattice", "wadm"],
            vec![],
            "wadm.api.>",
        ),
        (
            vec![
                "creds",
                "--role",
                "host",
                "--lattice",
                "wasmcloud",
                "--account-seed",
                seed,
                "--out",
                out,
            ],
            vec![],
            "wasmcloud.provision.>",
        ),
        (
            vec!["-s", &url, "apply", "--lattice", "wasmbus"],
            vec![],
            "wasmbus.ctl.v1",
        ),
        (
            vec!["-s", &url, "plan", "--lattice", "_INBOX"],
            vec![],
            "_INBOX.>",
        ),
        // The operator's own: flag, environment, config file.
        (
            vec![
                "--reserve-lattice-name",
                "billing",
                "permissions",
                "--role",
                "host",
                "--lattice",
                "billing",
            ],
            vec![],
            "--reserve-lattice-name",
        ),
        (
            vec!["-s", &url, "apply", "--lattice", "audit"],
            vec![(
                "WASMCLOUD_PROVISIONER_RESERVE_LATTICE_NAME",
                "billing,audit",
            )],
            "--reserve-lattice-name",
        ),
        (
            vec![
                "--config",
                config,
                "creds",
                "--role",
                "host",
                "--lattice",
                "billing",
                "--account-seed",
                seed,
                "--out",
                out,
            ],
            vec![],
            "--reserve-lattice-name",
        ),
        (
            vec![
                "--config",
                config,
                "-s",
                &url,
                "apply",
                "--lattice",
                "billing",
            ],
            vec![],
            "--reserve-lattice-name",
        ),
        // Settings that can only be mistakes are refused before anything starts.
        (
            vec!["-s", &url, "--allow-lattice", "wadm", "serve"],
            vec![],
            "can only match reserved",
        ),
        (
            vec!["-s", &url, "--allow-lattice", "_*", "serve"],
            vec![],
            "can only match reserved",
        ),
        (
            vec!["-s", &url, "--reserve-lattice-name", "a.b", "serve"],
            vec![],
            "--reserve-lattice-name",
        ),
    ];
    for (args, env, says) in &refused {
        let (code, stdout, stderr) = run(args, env);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    }
    assert!(!std::path::Path::new(out).exists(), "creds were written");
    assert_eq!(stream_names(&client).await, Vec::<String>::new());

    // `config check` shows the reserved names and the request replicas policy.
    let (code, stdout, stderr) = run(&["config", "check", config], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("reserved:     billing"), "{stdout}");
    assert!(stdout.contains("may raise replicas up to 3"), "{stdout}");
    let (code, stdout, _) = run(
        &[
            "--reserve-lattice-name",
            "audit",
            "config",
            "check",
            config,
            "--json",
        ],
        &[],
    );
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        v["lattices"]["reserved"],
        json!(["billing", "audit"]),
        "{v}"
    );
    assert_eq!(v["max_request_replicas"], 3, "{v}");
    let (code, _, stderr) = run(
        &["config", "check", config],
        &[("WASMCLOUD_PROVISIONER_MAX_REQUEST_REPLICAS", "4")],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("max_request_replicas"), "{stderr}");
    // Other names work, and the file's reserved names do not touch them.
    let (code, stdout, stderr) = run(
        &[
            "--config",
            config,
            "permissions",
            "--role",
            "host",
            "--lattice",
            "billing-eu",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

// ---------------------------------------------------------------------------
// 5. Refusals reveal neither other tenants nor the policy
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refusals_reveal_neither_other_tenants_nor_the_policy() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let bound = nkeys::KeyPair::new_server();
    let keys = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![format!("{}=secret-tenant-a*", bound.public_key())],
        host_signature_max_age: Some(300),
        ..Default::default()
    })
    .expect("host auth");
    let policy = LatticePolicy::new(vec!["secret-tenant-*".into(), "default".into()], Some(1))
        .expect("policy");
    let service = Service::start(&server.url(), Settings::default(), policy, keys).await;

    let first = call(&client, "wasmcloud.provision.lattice", "secret-tenant-a").await;
    assert_eq!(first.code, None, "{first:?}");
    // The cap: the reply names only what was asked for.
    let capped = call(&client, "wasmcloud.provision.lattice", "secret-tenant-b").await;
    let message = capped.error(429);
    assert!(message.contains("secret-tenant-b"), "{message}");
    assert!(message.contains("--max-lattices"), "{message}");
    capped.assert_silent_about("secret-tenant-a");
    capped.assert_silent_about("secret-tenant-*");
    // Not allowed: the reply does not quote the globs.
    let refused = call(&client, "wasmcloud.provision.lattice", "other").await;
    let message = refused.error(403);
    assert!(message.contains("--allow-lattice"), "{message}");
    refused.assert_silent_about("secret");
    refused.assert_silent_about("default");
    // A host key bound elsewhere: the reply does not quote its globs.
    let body =
        json!({"lattice": "default", "host_id": bound.public_key(), "issued_at": now_secs()})
            .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        host::SIGNATURE_HEADER,
        host::sign(&bound, body.as_bytes()).expect("sign").as_str(),
    );
    let reply = call_with(&client, "wasmcloud.provision.host.default", headers, &body).await;
    reply.error(403);
    reply.assert_silent_about("secret");
    assert_eq!(
        stream_names(&client).await,
        // The lattice admitted before, and the provisioner's own reservations bucket
        // (made on first use with a cap): nothing for the refused requests.
        vec![
            "KV_CONFIGDATA_secret-tenant-a",
            "KV_LATTICEDATA_secret-tenant-a",
            "KV_wasmcloud_provisioner_admissions"
        ]
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------
// 6. The operator's replicas are a floor; raising them is the operator's choice
// ---------------------------------------------------------------------------

#[tokio::test]
async fn request_replicas_never_go_below_the_floor_nor_above_the_operators_max() {
    let server = NatsServer::start();
    let url = server.url();
    let client = test_client(&url).await;
    let lattice = "wasmcloud.provision.lattice";

    // Floor 3 (a dry run: a single server cannot hold R3): a request for 1 is planned at
    // 3, and the reply says why.
    let mut floor3 = Settings::default();
    floor3.all.replicas = Some(3);
    let service = Service::start(&url, floor3, LatticePolicy::default(), HostAuth::default()).await;
    let reply = call(
        &client,
        lattice,
        r#"{"lattice":"x","replicas":1,"dry_run":true}"#,
    )
    .await;
    assert_eq!(reply.code, None, "{reply:?}");
    assert!(
        reply.body["replicas_note"]
            .as_str()
            .is_some_and(|n| n.contains("floor")),
        "{reply:?}"
    );
    for r in reply.body["resources"].as_array().expect("resources") {
        assert_eq!(r["desired_replicas"], 3, "{r}");
    }
    let reply = call(
        &client,
        "wasmcloud.provision.wadm",
        r#"{"replicas":1,"dry_run":true}"#,
    )
    .await;
    assert_eq!(reply.code, None, "{reply:?}");
    assert!(reply.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .all(|r| r["desired_replicas"] == 3));
    service.stop().await;

    // Floor 1, no max (the default): a request may not raise replicas, dry run or not.
    let service = Service::start(
        &url,
        Settings::default(),
        LatticePolicy::default(),
        HostAuth::default(),
    )
    .await;
    for (subject, body) in [
        (lattice, r#"{"lattice":"y","replicas":3}"#),
        (lattice, r#"{"lattice":"y","replicas":3.0,"dry_run":true}"#),
        ("wasmcloud.provision.lattice.y", r#"{"replicas":5}"#),
        ("wasmcloud.provision.wadm", r#"{"replicas":3}"#),
    ] {
        let message = call(&client, subject, body).await.error(403);
        assert!(
            message.contains("--max-request-replicas"),
            "{body}: {message}"
        );
    }
    let reply = call(&client, lattice, r#"{"lattice":"y","replicas":1}"#).await;
    assert_eq!(reply.code, None, "{reply:?}");
    assert!(reply.body.get("replicas_note").is_none(), "{reply:?}");
    service.stop().await;

    // Max 3: 5 is refused; 3 passes the policy and reaches JetStream, which a single
    // server refuses (409), so nothing is created either way.
    let max3 = Settings {
        max_request_replicas: Some(3),
        ..Settings::default()
    };
    let service = Service::start(&url, max3, LatticePolicy::default(), HostAuth::default()).await;
    let message = call(&client, lattice, r#"{"lattice":"z","replicas":5}"#)
        .await
        .error(403);
    assert!(message.contains("at most 3"), "{message}");
    let message = call(&client, lattice, r#"{"lattice":"z","replicas":3}"#)
        .await
        .error(409);
    assert!(message.contains("not clustered"), "{message}");
    assert_eq!(
        stream_names(&client).await,
        vec!["KV_CONFIGDATA_y", "KV_LATTICEDATA_y"]
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Signed host requests: not from the future, only for the key's lattices
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signed_host_requests_cannot_come_from_the_future_or_leave_their_lattices() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let tenant_a = nkeys::KeyPair::new_server();
    let anywhere = nkeys::KeyPair::new_server();
    let auth = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![
            format!("{}=tenant-a,tenant-a-*", tenant_a.public_key()),
            anywhere.public_key(),
        ],
        host_signature_max_age: Some(300),
        ..Default::default()
    })
    .expect("host auth");
    let service = Service::start(
        &server.url(),
        Settings::default(),
        LatticePolicy::default(),
        auth,
    )
    .await;
    let signed = |key: &nkeys::KeyPair, lattice: &str, issued_at: i64| {
        let body = json!({"lattice": lattice, "host_id": key.public_key(), "issued_at": issued_at})
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            host::SIGNATURE_HEADER,
            host::sign(key, body.as_bytes()).expect("sign").as_str(),
        );
        (headers, body)
    };
    let subject = |l: &str| format!("wasmcloud.provision.host.{l}");

    // From the future: more than the clock skew ahead is refused, well within max age.
    for ahead in [45, 120, 299] {
        let (headers, body) = signed(&tenant_a, "tenant-a", now_secs() + ahead);
        let message = call_with(&client, &subject("tenant-a"), headers, &body)
            .await
            .error(403);
        assert!(message.contains("ahead"), "{ahead}: {message}");
    }
    assert_eq!(stream_names(&client).await, Vec::<String>::new());
    let (headers, body) = signed(&tenant_a, "tenant-a", now_secs() + 5);
    let reply = call_with(&client, &subject("tenant-a"), headers, &body).await;
    assert_eq!(
        reply.code, None,
        "a few seconds of skew are fine: {reply:?}"
    );

    // Bound to tenant-a*: another lattice is refused, on both subjects.
    let (headers, body) = signed(&tenant_a, "tenant-b", now_secs());
    let message = call_with(&client, &subject("tenant-b"), headers.clone(), &body)
        .await
        .error(403);
    assert!(
        message.contains("not trusted for lattice `tenant-b`"),
        "{message}"
    );
    call_with(&client, "wasmcloud.provision.host", headers, &body)
        .await
        .error(403);
    let reply = host::request_bootstrap(&client, &tenant_a, "tenant-a-2", None).await;
    assert!(reply.is_ok(), "{reply:?}");
    // An unbound trusted key may bootstrap any lattice.
    host::request_bootstrap(&client, &anywhere, "tenant-b", None)
        .await
        .expect("an unbound key is served");
    assert_eq!(
        stream_names(&client).await,
        vec![
            "KV_CONFIGDATA_tenant-a",
            "KV_CONFIGDATA_tenant-a-2",
            "KV_CONFIGDATA_tenant-b",
            "KV_LATTICEDATA_tenant-a",
            "KV_LATTICEDATA_tenant-a-2",
            "KV_LATTICEDATA_tenant-b"
        ]
    );
    service.stop().await;
}

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
    NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "accounts {{\n  SHARED {{\n    jetstream: enabled\n    users: [\n{users}    ]\n  }}\n}}\n"
        ),
        ..ServerOptions::default()
    })
}

async fn connect_as(url: &str, user: &str) -> async_nats::Client {
    common::connect_with(
        url,
        async_nats::ConnectOptions::with_user_and_password(user.into(), PASSWORD.into())
            .name(user)
            .request_timeout(Some(Duration::from_secs(5))),
    )
    .await
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
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "accounts {{\n  SHARED {{\n    jetstream: enabled\n    users: [\n{users}    ]\n  }}\n}}\n"
        ),
        ..ServerOptions::default()
    });
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let connect = ConnectArgs {
        server: Some(url.clone()),
        user: Some("provisioner".into()),
        password: Some(PASSWORD.into()),
        inbox_prefix: Some(prefix.into()),
        ..Default::default()
    };
    let service = Service::start_as(
        &connect,
        &admin,
        Settings::default(),
        LatticePolicy::default(),
        HostAuth::default(),
    )
    .await;
    for (subject, body) in [
        ("wasmcloud.provision.lattice", "default"),
        ("wasmcloud.provision.wadm", ""),
        ("wasmcloud.provision.status", ""),
    ] {
        let reply = call(&admin, subject, body).await;
        assert_eq!(reply.code, None, "{subject}: {reply:?}");
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
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "accounts {{\n  SHARED {{\n    jetstream: enabled\n    users: [\n{users}    ]\n  }}\n}}\n"
        ),
        ..ServerOptions::default()
    });
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
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "accounts {{\n  TENANT_A {{\n    jetstream {{ max_consumers: 3 }}\n    users: [\n{users}    ]\n  }}\n}}\n"
        ),
        ..ServerOptions::default()
    });
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

    /// Killed when dropped, also when an assertion fails.
    struct Serve(std::process::Child);
    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut serve = Serve(
        common::provisioner_command()
            .args(["--config", config, "-s", &url, "serve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start serve"),
    );
    let deadline = Instant::now() + common::START_TIMEOUT;
    loop {
        let registered = client
            .request(format!("$SRV.INFO.{SERVICE_NAME}"), "".into())
            .await
            .ok()
            .and_then(|m| serde_json::from_slice::<Value>(&m.payload).ok())
            .and_then(|i| i["endpoints"].as_array().map(Vec::len))
            .unwrap_or(0);
        if registered == endpoints::ENDPOINTS.len() {
            break;
        }
        assert!(
            serve.0.try_wait().expect("poll").is_none(),
            "serve exited while starting"
        );
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = host::request_bootstrap(&client, &key, "tenant-b", None).await;
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
    host::request_bootstrap(&client, &key, "tenant-a", None)
        .await
        .expect("tenant-a is served");
    drop(serve);
    assert_eq!(
        stream_names(&client).await,
        vec!["KV_CONFIGDATA_tenant-a", "KV_LATTICEDATA_tenant-a"]
    );
}
