//! Contexts, TLS and tokens; the config file, help and nsc rendering.

use super::*;

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
