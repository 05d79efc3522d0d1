//! The operator's experience, against real nats-servers and the real binary:
//! - operator mode: JWTs minted with `wasmcloud_provisioner::creds` (operator, accounts,
//!   and users from the `creds` command), a `resolver: MEMORY` server; the host's minted
//!   creds do the host's work and are refused stream create and delete;
//! - observability: `$SRV.STATS` data, JSON logs carrying the request span, and audit
//!   events (schema-valid, naming the requester through `Nats-Request-Info`);
//! - connecting like natscli: a selected context with TLS (client certificate) and a
//!   token, flags winning over it, and errors that say what to check;
//! - the config file: the documented example passes `config check`; `--help`,
//!   `--version`, exit codes; the `nsc` rendering of a template.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use nkeys::KeyPair;
use serde_json::{json, Value};

use common::actions;
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::creds;
use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};

/// Failsafe for waits on replies and events; never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// The binary with natscli's config directory pointed at `xdg`.
fn cli(xdg: &Path) -> Command {
    common::provisioner_command_with_config_home(xdg)
}

fn run(mut command: Command) -> Output {
    command.output().expect("run wasmcloud-provisioner")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Asserts an exit code, showing everything the command printed when it differs.
fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A `serve` process whose stderr (the logs) goes to a file; SIGTERM on drop.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Served {
    fn start(mut command: Command, log: PathBuf) -> Served {
        let file = std::fs::File::create(&log).expect("create the log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn wasmcloud-provisioner serve");
        Served { child, log }
    }

    /// SIGTERM, wait for the drain, return the logs.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `$SRV.PING` until the service answers.
async fn wait_for_service(client: &async_nats::Client) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ping = tokio::time::timeout(
            Duration::from_secs(2),
            client.request("$SRV.PING.wasmcloud-provisioner", "".into()),
        )
        .await;
        if let Ok(Ok(_)) = ping {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the service never answered $SRV.PING"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn request_json(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
) -> (Option<String>, Value) {
    let reply = tokio::time::timeout(
        WAIT,
        client.request(subject.to_string(), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no reply on {subject}"))
    .unwrap_or_else(|e| panic!("request on {subject}: {e}"));
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR_CODE))
        .map(|v| v.as_str().to_string());
    let body = serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("reply on {subject} is not JSON ({e}): {reply:?}"));
    (code, body)
}

/// The next audit event; its subject ends with its action.
async fn next_event(events: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an audit event arrives")
        .expect("subscription open");
    let event: Value = serde_json::from_slice(&message.payload).expect("event JSON");
    assert_eq!(
        message.subject.as_str(),
        format!(
            "wasmcloud.provision.events.{}",
            event["action"].as_str().unwrap_or("?")
        )
    );
    event
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read schema"))
        .expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is invalid: {errors:?}\n{value:#}"
    );
}

// ---------------------------------------------------------------------------
// Operator mode
// ---------------------------------------------------------------------------

/// Operator, system account and one application account with JetStream, as `nsc` would
/// make them, and the server config that trusts them (`resolver: MEMORY`).
struct Trust {
    app: KeyPair,
    signing_key: KeyPair,
    config: String,
}

impl Trust {
    fn new(dir: &Path) -> Trust {
        let now = creds::unix_now();
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let app = KeyPair::new_account();
        let signing_key = KeyPair::new_account();
        let operator_jwt = creds::encode_jwt(
            json!({
                "sub": operator.public_key(),
                "name": "test-operator",
                "nats": {"system_account": system.public_key(), "type": "operator", "version": 2},
            }),
            &operator,
            now,
        )
        .expect("operator JWT");
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1,
            "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
        });
        let system_jwt = creds::encode_jwt(
            json!({
                "sub": system.public_key(),
                "name": "SYS",
                "nats": {"limits": unlimited, "type": "account", "version": 2},
            }),
            &operator,
            now,
        )
        .expect("system account JWT");
        let mut limits = unlimited.clone();
        for (k, v) in [
            ("mem_storage", -1),
            ("disk_storage", -1),
            ("streams", -1),
            ("consumer", -1),
        ] {
            limits[k] = json!(v);
        }
        let app_jwt = creds::encode_jwt(
            json!({
                "sub": app.public_key(),
                "name": "WASMCLOUD",
                "nats": {
                    "limits": limits,
                    "signing_keys": [signing_key.public_key()],
                    "type": "account",
                    "version": 2,
                },
            }),
            &operator,
            now,
        )
        .expect("account JWT");
        let operator_file = dir.join("operator.jwt");
        std::fs::write(&operator_file, &operator_jwt).expect("write operator JWT");
        let config = format!(
            "operator: {:?}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  \
             {}: {:?}\n  {}: {:?}\n}}\n",
            operator_file.to_string_lossy(),
            system.public_key(),
            system.public_key(),
            system_jwt,
            app.public_key(),
            app_jwt,
        );
        Trust {
            app,
            signing_key,
            config,
        }
    }
}

fn write_seed(dir: &Path, name: &str, key: &KeyPair) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", key.seed().expect("seed"))).expect("write seed");
    path
}

#[tokio::test]
async fn operator_mode_host_creds_do_the_hosts_work_and_nothing_more() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xdg = dir.path().join("xdg");
    let trust = Trust::new(dir.path());
    let server = NatsServer::start_with(ServerOptions {
        extra_config: trust.config.clone(),
        ..Default::default()
    });
    let account_seed = write_seed(dir.path(), "account.nk", &trust.app);
    let signing_seed = write_seed(dir.path(), "signing.nk", &trust.signing_key);

    // The provisioner's own user, signed by the account key.
    let prov_creds = dir.path().join("provisioner.creds");
    let mut c = cli(&xdg);
    c.args(["creds", "--role", "provisioner", "--account-seed"])
        .arg(&account_seed)
        .arg("--out")
        .arg(&prov_creds);
    expect_code(&run(c), 0, "creds --role provisioner");

    // The host's user, signed by a signing key, expiring in an hour.
    let host_creds = dir.path().join("host.creds");
    let mut c = cli(&xdg);
    c.args([
        "creds",
        "--role",
        "host",
        "--lattice",
        "default",
        "--expiry",
        "1h",
    ])
    .arg("--account-seed")
    .arg(&signing_seed)
    .args(["--account", &trust.app.public_key(), "--out"])
    .arg(&host_creds);
    let out = run(c);
    expect_code(&out, 0, "creds --role host");
    assert!(text(&out.stdout).contains(&trust.app.public_key()));

    // The file is laid out as `nsc generate creds` writes it, and readable by its owner only.
    let file = std::fs::read_to_string(&host_creds).expect("read host.creds");
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines[0], "-----BEGIN NATS USER JWT-----");
    assert_eq!(lines[2], "------END NATS USER JWT------");
    assert_eq!(
        lines[6],
        "NKEYs are sensitive and should be treated as secrets."
    );
    assert_eq!(lines[8], "-----BEGIN USER NKEY SEED-----");
    assert!(lines[9].starts_with("SU"), "{}", lines[9]);
    assert_eq!(lines[10], "------END USER NKEY SEED------");
    assert_eq!(
        file,
        creds::format_creds(lines[1], lines[9]),
        "exact nsc layout"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&host_creds).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let claims = creds::decode_jwt(lines[1]).expect("the JWT verifies");
    assert_eq!(claims["iss"], json!(trust.signing_key.public_key()));
    assert_eq!(
        claims["nats"]["issuer_account"],
        json!(trust.app.public_key())
    );
    assert_eq!(claims["name"], "wasmcloud-host-default");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let template = permissions::template(
        Role::Host,
        &TemplateOptions {
            lattices: vec!["default".into()],
            js_domain: None,
        },
    )
    .expect("host template");
    assert_eq!(
        claims["nats"]["pub"]["allow"],
        json!(template.permissions.publish.allow)
    );
    assert_eq!(
        claims["nats"]["pub"]["deny"],
        json!(template.permissions.publish.deny)
    );
    assert_eq!(
        claims["nats"]["sub"]["allow"],
        json!(template.permissions.subscribe.allow)
    );
    assert_eq!(claims["nats"]["resp"], json!({"max": 1, "ttl": 0}));

    // The provisioner, with its own minted creds, creates the lattice's buckets.
    let mut c = cli(&xdg);
    c.args(["--server", &server.url(), "--creds"])
        .arg(&prov_creds)
        .args(["apply", "--lattice", "default", "--json"]);
    let out = run(c);
    expect_code(&out, 0, "apply with the provisioner's minted creds");
    let report: Value = serde_json::from_slice(&out.stdout).expect("apply --json");
    assert_eq!(actions(&report), ["created", "created"], "{report}");
    assert!(
        common::permission_violations(&server.log()).is_empty(),
        "the provisioner template was not enough:\n{}",
        server.log()
    );

    // The host connects with its minted creds and uses its buckets.
    let host = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::new()
            .credentials_file(&host_creds)
            .await
            .expect("async-nats reads the .creds file")
            .request_timeout(Some(Duration::from_secs(5))),
    )
    .await;
    let js = jetstream::new(host.clone());
    for bucket in ["LATTICEDATA_default", "CONFIGDATA_default"] {
        let kv = js
            .get_key_value(bucket)
            .await
            .unwrap_or_else(|e| panic!("get_key_value {bucket}: {e}"));
        let mut watch = kv.watch_all().await.expect("watch_all");
        kv.put("host.key", "v1".into()).await.expect("put");
        let seen = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("the watch delivers the put")
            .expect("watch open")
            .expect("watch entry");
        assert_eq!(seen.key, "host.key");
        assert_eq!(
            kv.get("host.key").await.expect("get").as_deref(),
            Some(&b"v1"[..])
        );
    }

    // ... and may neither create nor delete streams.
    let create = js
        .create_stream(stream::Config {
            name: "EVIL".into(),
            subjects: vec!["evil.>".into()],
            ..Default::default()
        })
        .await;
    assert!(create.is_err(), "the host created a stream");
    let delete = js.delete_stream("KV_LATTICEDATA_default").await;
    assert!(delete.is_err(), "the host deleted a stream");
    for subject in [
        "$JS.API.STREAM.CREATE.EVIL",
        "$JS.API.STREAM.DELETE.KV_LATTICEDATA_default",
    ] {
        assert!(
            common::wait_for_log(
                || server.log(),
                WAIT,
                |log| log.contains(&format!("Publish Violation - Subject \"{subject}\""))
            ),
            "no violation logged for {subject}:\n{}",
            server.log()
        );
    }
    let mut c = cli(&xdg);
    c.args(["--server", &server.url(), "--creds"])
        .arg(&prov_creds)
        .args(["plan", "--lattice", "default", "--json"]);
    let out = run(c);
    expect_code(&out, 0, "plan after the refused delete");
    let report: Value = serde_json::from_slice(&out.stdout).expect("plan --json");
    assert_eq!(actions(&report), ["exists", "exists"], "{report}");

    // Creds of an account the server does not trust are refused, and the error says so.
    let stranger = write_seed(dir.path(), "stranger.nk", &KeyPair::new_account());
    let stranger_creds = dir.path().join("stranger.creds");
    let mut c = cli(&xdg);
    c.args(["creds", "--role", "host", "--account-seed"])
        .arg(&stranger)
        .arg("--out")
        .arg(&stranger_creds);
    expect_code(&run(c), 0, "creds for an unknown account");
    let mut c = cli(&xdg);
    c.args(["--server", &server.url(), "--creds"])
        .arg(&stranger_creds)
        .args(["plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 1, "plan with untrusted creds");
    assert!(
        text(&out.stderr).contains("authentication failed"),
        "{}",
        text(&out.stderr)
    );

    // An existing file is not replaced without --force.
    let mut c = cli(&xdg);
    c.args(["creds", "--role", "wadm", "--account-seed"])
        .arg(&account_seed)
        .arg("--out")
        .arg(&host_creds);
    let out = run(c);
    expect_code(&out, 1, "creds onto an existing file");
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// Observability: STATS data, JSON logs, audit events
// ---------------------------------------------------------------------------

const PASSWORD: &str = "s3cret";

#[tokio::test]
async fn stats_logs_and_audit_events_describe_each_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xdg = dir.path().join("xdg");
    // The provisioner in its own account; hosts reach it through a service import with
    // `share: true`, so nats-server tells the service who asked, and it creates the
    // buckets in the hosts' account (served as `[accounts.HOSTS]`, see tests/accounts.rs).
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            r#"accounts {{
  PROV: {{
    jetstream: enabled
    users: [{{user: prov, password: {PASSWORD}}}]
    exports: [{{service: "wasmcloud.provision.>"}}]
  }}
  HOSTS: {{
    jetstream: enabled
    users: [{{user: host1, password: {PASSWORD}}}, {{user: prov_hosts, password: {PASSWORD}}}]
    imports: [{{service: {{account: PROV, subject: "wasmcloud.provision.>"}}, share: true}}]
  }}
}}"#
        ),
        ..Default::default()
    });
    let config = dir.path().join("provisioner.toml");
    std::fs::write(
        &config,
        format!("[accounts.HOSTS]\nuser = \"prov_hosts\"\npassword = \"{PASSWORD}\"\n"),
    )
    .expect("write the config file");
    let mut serve = cli(&xdg);
    serve
        .args([
            "--server",
            &server.url(),
            "--user",
            "prov",
            "--password",
            PASSWORD,
        ])
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "serve"])
        .env("RUST_LOG", "info");
    let mut served = Served::start(serve, dir.path().join("serve.log"));

    let prov = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("prov".into(), PASSWORD.into()),
    )
    .await;
    let host = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("host1".into(), PASSWORD.into())
            .name("host-one"),
    )
    .await;
    wait_for_service(&prov).await;
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");

    let (code, body) = request_json(&host, "wasmcloud.provision.lattice", "default").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(actions(&body), ["created", "created"]);

    // One audit event per created bucket, valid against the documented schema.
    let info: Value = {
        let reply = prov
            .request("$SRV.INFO.wasmcloud-provisioner", "".into())
            .await
            .expect("$SRV.INFO");
        serde_json::from_slice(&reply.payload).expect("info JSON")
    };
    let instance_id = info["metadata"]["instance_id"].clone();
    assert!(instance_id.is_string(), "{info}");
    let event_schema = schema("audit_event.json");
    let mut created = Vec::new();
    for _ in 0..2 {
        let event = next_event(&mut events).await;
        assert_valid(&event_schema, &event, "audit event");
        assert_eq!(event["action"], "created");
        assert_eq!(event["before"], Value::Null);
        assert_eq!(event["after"]["replicas"], 1);
        assert_eq!(event["provisioner"]["id"], instance_id);
        let requester = &event["requester"];
        assert_eq!(requester["via"], "request", "{event}");
        assert_eq!(requester["endpoint"], "lattice");
        assert_eq!(requester["subject"], "wasmcloud.provision.lattice");
        assert_eq!(requester["request_info"]["acc"], "HOSTS", "{event}");
        assert_eq!(requester["request_info"]["user"], "host1", "{event}");
        assert_eq!(requester["request_info"]["name"], "host-one", "{event}");
        created.push(
            event["resource"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
    }
    created.sort();
    assert_eq!(created, ["CONFIGDATA_default", "LATTICEDATA_default"]);

    // Asking again changes nothing (a warm answer), so the next event is the next change.
    let (_, body) = request_json(&host, "wasmcloud.provision.lattice", "default").await;
    assert_eq!(actions(&body), ["exists", "exists"]);
    let (_, body) = request_json(&host, "wasmcloud.provision.lattice.second", "").await;
    assert_eq!(actions(&body), ["created", "created"]);
    let event = next_event(&mut events).await;
    assert!(
        event["resource"]["name"]
            .as_str()
            .unwrap_or("")
            .ends_with("_second"),
        "an event for the unchanged lattice: {event}"
    );
    assert_eq!(event["requester"]["endpoint"], "lattice_scoped");
    let _ = next_event(&mut events).await;

    // Drift: wadm_events exists in the hosts' account with other subjects; the wadm
    // request is a 409.
    let prov_hosts = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("prov_hosts".into(), PASSWORD.into()),
    )
    .await;
    let js = jetstream::new(prov_hosts);
    js.create_stream(stream::Config {
        name: "wadm_events".into(),
        subjects: vec!["wadm.evt.>".into()],
        ..Default::default()
    })
    .await
    .expect("create a drifted wadm_events");
    let (code, body) = request_json(&host, "wasmcloud.provision.wadm", "").await;
    assert_eq!(code.as_deref(), Some("409"), "{body}");

    // $SRV.STATS: per endpoint, resources by outcome, warm/cold, errors by code.
    let stats: Value = {
        let reply = prov
            .request("$SRV.STATS.wasmcloud-provisioner", "".into())
            .await
            .expect("$SRV.STATS");
        serde_json::from_slice(&reply.payload).expect("stats JSON")
    };
    let data = |name: &str| -> Value {
        stats["endpoints"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == name))
            .map(|e| e["data"].clone())
            .unwrap_or_else(|| panic!("no endpoint {name} in {stats:#}"))
    };
    let lattice = data("lattice");
    assert_eq!(lattice["resources"]["created"], 2, "{lattice}");
    assert_eq!(lattice["resources"]["exists"], 2, "{lattice}");
    assert_eq!(lattice["resources"]["drift"], 0, "{lattice}");
    assert_eq!(lattice["cold"], 1, "{lattice}");
    assert_eq!(lattice["warm"], 1, "{lattice}");
    assert_eq!(data("lattice_scoped")["resources"]["created"], 2);
    let wadm = data("wadm");
    assert_eq!(wadm["resources"]["drift"], 1, "{wadm}");
    assert_eq!(wadm["errors"]["409"], 1, "{wadm}");
    assert!(
        wadm["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("409:"),
        "{wadm}"
    );

    // JSON logs: the "answered" event carries the request's span.
    let logs = served.stop();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    // The warm request is counted in STATS but logged only at debug (the hot path).
    assert_eq!(answered.len(), 3, "{logs}");
    let first = answered
        .iter()
        .find(|l| l["span"]["endpoint"] == "lattice")
        .unwrap_or_else(|| panic!("no answered line for the lattice endpoint:\n{logs}"));
    let span = &first["span"];
    assert_eq!(span["name"], "request", "{first}");
    assert_eq!(span["subject"], "wasmcloud.provision.lattice", "{first}");
    assert_eq!(span["lattice"], "default", "{first}");
    assert_eq!(span["outcome"], "created=2", "{first}");
    assert!(span["duration_us"].is_u64(), "{first}");
    let drifted = answered
        .iter()
        .find(|l| l["span"]["endpoint"] == "wadm")
        .unwrap_or_else(|| panic!("no answered line for the wadm endpoint:\n{logs}"));
    assert_eq!(drifted["span"]["outcome"], "error 409", "{drifted}");
}

// ---------------------------------------------------------------------------
// Contexts, TLS and tokens
// ---------------------------------------------------------------------------

/// A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert, key)
}

fn make_pki(dir: &Path) -> Pki {
    let (ca, ca_key) = make_ca("wasmcloud-provisioner test CA");
    let issue = |names: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue(
        vec!["127.0.0.1".into(), "localhost".into()],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = issue(
        vec!["provisioner".into()],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write PEM");
        p
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
    }
}

#[tokio::test]
async fn natscli_context_with_tls_and_token_and_flags_that_win() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = make_pki(dir.path());
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n\
             authorization {{ token: \"{PASSWORD}\" }}\n",
            pki.server_cert.to_string_lossy(),
            pki.server_key.to_string_lossy(),
            pki.ca.to_string_lossy(),
        ),
        ..Default::default()
    });
    // natscli's layout: context/<name>.json and the selected name in context.txt.
    let xdg = dir.path().join("xdg");
    let contexts = xdg.join("nats").join("context");
    std::fs::create_dir_all(&contexts).expect("context dir");
    let context = json!({
        "description": "TLS test server",
        "url": server.url(),
        "token": PASSWORD,
        "user": "", "password": "", "creds": "", "nkey": "",
        "cert": pki.client_cert, "key": pki.client_key, "ca": pki.ca,
        "nsc": "", "jetstream_domain": "", "jetstream_api_prefix": "",
        "jetstream_event_prefix": "", "inbox_prefix": "", "user_jwt": "",
        "color_scheme": "", "tls_first": false,
    });
    std::fs::write(
        contexts.join("tls-test.json"),
        serde_json::to_string_pretty(&context).unwrap(),
    )
    .expect("write context");
    std::fs::write(xdg.join("nats").join("context.txt"), "tls-test\n").expect("select");

    // No connection flag at all: the selected context connects (TLS, client cert, token).
    let mut c = cli(&xdg);
    c.args(["plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 2, "plan through the selected context");
    assert!(
        text(&out.stdout).contains("would_create"),
        "{}",
        text(&out.stdout)
    );

    // A named context works the same; apply creates.
    let mut c = cli(&xdg);
    c.args(["--context", "tls-test", "apply", "--lattice", "default"]);
    expect_code(&run(c), 0, "apply through --context");

    // Flags win over the context, and the errors say what to check.
    let mut c = cli(&xdg);
    c.args(["--token", "wrong", "plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 1, "a wrong --token");
    let err = text(&out.stderr);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("tls-test"), "names the context: {err}");

    let (other_ca, _) = make_ca("some other CA");
    let other_ca_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, other_ca.pem()).expect("write other CA");
    let mut c = cli(&xdg);
    c.arg("--tls-ca")
        .arg(&other_ca_file)
        .args(["plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 1, "a CA that did not sign the server");
    let err = text(&out.stderr);
    assert!(err.contains("TLS failed"), "{err}");
    assert!(err.contains("--tls-ca"), "{err}");

    let closed_port = common::free_port();
    let mut c = cli(&xdg);
    c.args(["--server", &format!("nats://127.0.0.1:{closed_port}")])
        .args(["plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 1, "a URL nobody listens on");
    assert!(
        text(&out.stderr).contains("check the URL"),
        "{}",
        text(&out.stderr)
    );

    let mut c = cli(&xdg);
    c.args(["--context", "nope", "plan", "--lattice", "default"]);
    let out = run(c);
    expect_code(&out, 1, "an unknown context");
    assert!(
        text(&out.stderr).contains("nats context ls"),
        "{}",
        text(&out.stderr)
    );

    // The library sees the same server the binary did.
    let client = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::with_token(PASSWORD.into())
            .add_root_certificates(pki.ca.clone())
            .add_client_certificate(pki.client_cert.clone(), pki.client_key.clone())
            .require_tls(true),
    )
    .await;
    let js = jetstream::new(client);
    js.get_stream("KV_LATTICEDATA_default")
        .await
        .expect("apply created the bucket");
}

// ---------------------------------------------------------------------------
// Config file, help, nsc rendering
// ---------------------------------------------------------------------------

#[test]
fn example_config_passes_config_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/provisioner.toml");
    let mut c = cli(dir.path());
    c.args(["config", "check"]).arg(&example).arg("--json");
    let out = run(c);
    expect_code(&out, 0, "config check examples/provisioner.toml");
    let report: Value = serde_json::from_slice(&out.stdout).expect("config check --json");
    assert_eq!(report["valid"], true);
    let resource = |key: &str| {
        report["resources"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["key"] == key))
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {report:#}"))
    };
    // [all] replicas 3, overridden per resource as the example documents.
    assert_eq!(resource("configdata")["replicas"], 3);
    assert_eq!(resource("latticedata")["replicas"], 5);
    assert_eq!(resource("wadm_events")["max_bytes"], 1_073_741_824);
    assert_eq!(report["lattices"]["allow"], json!(["default", "prod-*"]));
    assert_eq!(report["lattices"]["max"], 50);

    // A flag wins over the file.
    let mut c = cli(dir.path());
    c.args(["--replicas", "1", "--max-lattices", "7", "config", "check"])
        .arg(&example)
        .arg("--json");
    let out = run(c);
    expect_code(&out, 0, "config check with flags");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["replicas"] == 1));
    assert_eq!(report["lattices"]["max"], 7);

    // Text output names every resource.
    let mut c = cli(dir.path());
    c.args(["config", "check"]).arg(&example);
    let out = run(c);
    expect_code(&out, 0, "config check (text)");
    let stdout = text(&out.stdout);
    for key in ["latticedata", "wadm_event_consumer"] {
        assert!(stdout.contains(key), "{stdout}");
    }

    // Mistakes are refused with the place to fix.
    for (toml, want) in [
        ("[all]\nreplica = 3\n", "unknown field `replica`"),
        (
            "[resources.nope]\nreplicas = 3\n",
            "unknown resource `nope`",
        ),
        ("[all]\nreplicas = 7\n", "between 1 and 5"),
        ("allow_lattices = [\"a.b\"]\n", "not a lattice glob"),
        (
            "[connection]\ncreds = \"/no/such.creds\"\n",
            "does not exist",
        ),
        (
            "[connection]\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"\n",
            "more than one way to authenticate",
        ),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, toml).expect("write");
        let mut c = cli(dir.path());
        c.args(["config", "check"]).arg(&file);
        let out = run(c);
        expect_code(&out, 1, toml);
        assert!(
            text(&out.stderr).contains(want),
            "{toml}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_explains_every_command_with_an_example() {
    let dir = tempfile::tempdir().expect("temp dir");
    for command in ["serve", "apply", "plan", "permissions", "creds", "config"] {
        let mut c = cli(dir.path());
        c.args([command, "--help"]);
        let out = run(c);
        expect_code(&out, 0, command);
        assert!(
            text(&out.stdout).contains("Example: wasmcloud-provisioner"),
            "{command} --help has no example:\n{}",
            text(&out.stdout)
        );
    }
    let mut c = cli(dir.path());
    c.arg("--help");
    let out = run(c);
    expect_code(&out, 0, "--help");
    assert!(text(&out.stdout).contains("Exit codes:"));
    let mut c = cli(dir.path());
    c.arg("--version");
    let out = run(c);
    expect_code(&out, 0, "--version");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("wasmcloud-provisioner {}", env!("CARGO_PKG_VERSION"))
    );
    // A usage error is 1, never 2 (which `plan` uses for "changes found").
    let mut c = cli(dir.path());
    c.args(["plan", "--no-such-flag"]);
    expect_code(&run(c), 1, "a usage error");
}

#[test]
fn nsc_lines_carry_exactly_the_template() {
    for (role, lattices) in [
        (Role::Host, vec!["default".to_string()]),
        (Role::Wadm, vec![]),
        (Role::Provisioner, vec![]),
        (Role::Backup, vec!["default".to_string()]),
    ] {
        let template = permissions::template(
            role,
            &TemplateOptions {
                lattices,
                js_domain: Some("hub".into()),
            },
        )
        .expect("template");
        let nsc = template.to_nsc();
        let p = &template.permissions;
        // Both the `add` and the `edit` command carry every rule once.
        for command in ["nsc add user", "nsc edit user"] {
            let block: Vec<&str> = nsc
                .split(command)
                .nth(1)
                .unwrap_or_else(|| panic!("no `{command}` in\n{nsc}"))
                .lines()
                .take_while(|l| !l.starts_with('#'))
                .collect();
            let values = |flag: &str| -> Vec<String> {
                block
                    .iter()
                    .filter_map(|l| l.trim().strip_prefix(&format!("{flag} '")))
                    .map(|rest| {
                        rest.trim_end_matches(" \\")
                            .trim_end_matches('\'')
                            .to_string()
                    })
                    .collect()
            };
            assert_eq!(values("--allow-pub"), p.publish.allow, "{nsc}");
            assert_eq!(values("--deny-pub"), p.publish.deny, "{nsc}");
            assert_eq!(values("--allow-sub"), p.subscribe.allow, "{nsc}");
            assert_eq!(values("--deny-sub"), p.subscribe.deny, "{nsc}");
            assert_eq!(
                block.iter().any(|l| l.trim() == "--allow-pub-response"),
                p.allow_responses
            );
            // Every line but the last continues the command.
            let (last, rest) = block.split_last().expect("lines");
            assert!(rest.iter().all(|l| l.ends_with(" \\")), "{nsc}");
            assert!(!last.ends_with('\\'), "{nsc}");
        }
    }
}
