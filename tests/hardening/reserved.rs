//! Reserved lattice names, refused by every endpoint and by the command line.

use super::*;

// ---------------------------------------------------------------------------
// 1. Reserved lattice names
// ---------------------------------------------------------------------------

/// Every endpoint refuses every reserved name, built in or the operator's, with a 400
/// saying what it would capture, and creates nothing; other spellings are served.
#[tokio::test]
async fn reserved_lattice_names_are_refused_by_every_endpoint() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let service = Options::new()
        .policy(reserve(&["billing"]))
        .spawn(&server.url())
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
        assert_eq!(reply.error_code, None, "{reply:?}");
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
