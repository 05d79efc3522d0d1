//! Operator mode: JWTs minted with `wasmcloud_provisioner::creds`, a server that trusts them, host creds that do the host's work and nothing more.

use super::*;

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
        let now = clock::unix_now();
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
