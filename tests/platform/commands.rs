//! What the command line prints and does for the platform: templates, creds, apply/plan, serve, bootstrap.

use super::*;

#[test]
fn the_templates_the_tests_load_are_the_cli_output() {
    // What `permissions --role host --role operator --via-leaf` prints is the union the
    // README documents for the chart's shared secret: it holds both tested templates.
    let o = options(&["default"], Some("default"));
    let platform = PlatformOptions {
        via_leaf: true,
        operator: Some(Operator::V0_4),
    };
    let both =
        permissions::template_union(&[Role::Host, Role::Operator], &o, platform).expect("union");
    for role in [Role::Host, Role::Operator] {
        let one = permissions::template_for(role, &o, platform).expect("template");
        for s in &one.permissions.publish.allow {
            assert!(both.permissions.publish.allow.contains(s), "{s}");
        }
        for s in &one.permissions.subscribe.allow {
            assert!(both.permissions.subscribe.allow.contains(s), "{s}");
        }
    }
    let out = common::provisioner_command()
        .args([
            "permissions",
            "--role",
            "host",
            "--role",
            "operator",
            "--lattice",
            "default",
            "--js-domain",
            "default",
            "--via-leaf",
            "--operator",
            "0.4",
            "--format",
            "json",
        ])
        .output()
        .expect("run");
    common::cli::succeeded(&out);
    let printed: permissions::Permissions =
        serde_json::from_slice(&out.stdout).expect("JSON permissions");
    assert_eq!(printed, both.permissions);

    // `--format nsc` for the operator alone: every rule once per command, no response
    // permission.
    let out = common::provisioner_command()
        .args([
            "permissions",
            "--role",
            "operator",
            "--operator",
            "0.5",
            "--format",
            "nsc",
        ])
        .output()
        .expect("run");
    common::cli::succeeded(&out);
    let nsc = String::from_utf8_lossy(&out.stdout);
    let operator = permissions::template_for(
        Role::Operator,
        &options(&[], None),
        PlatformOptions {
            via_leaf: false,
            operator: Some(Operator::V0_5),
        },
    )
    .expect("template");
    assert!(
        nsc.contains("nsc add user --name wasmcloud-operator"),
        "{nsc}"
    );
    for s in &operator.permissions.publish.allow {
        assert_eq!(nsc.matches(&format!("--allow-pub '{s}'")).count(), 2, "{s}");
    }
    for s in &operator.permissions.publish.deny {
        assert_eq!(nsc.matches(&format!("--deny-pub '{s}'")).count(), 2, "{s}");
    }
    assert!(!nsc.contains("--allow-pub-response"), "{nsc}");
}

/// Runs the provisioner binary against `url`; returns the exit code and the JSON report.
fn cli(url: &str, args: &[&str]) -> (i32, Value) {
    let out = common::cli::run_against(url, &[args, &["--json"]].concat());
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// `apply`/`plan --wadm --operator <v>`: the stream after wadm's, idempotent, and a copy
/// that would break the operator reported as drift and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_plan_with_operator_and_its_drift() {
    let server = NatsServer::start();
    let url = server.url();
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 2, "{report}");
    let names: Vec<String> = actions_by_name(&report)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("wadm_operator_events")
    );
    let (code, report) = cli(&url, &["apply", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 0, "{report}");
    assert!(actions_by_name(&report).iter().all(|(_, a)| a == "created"));
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.5"]);
    assert_eq!(code, 0, "{report}");
    assert!(actions_by_name(&report).iter().all(|(_, a)| a == "exists"));

    // The 0.4 stream made by hand as a limits stream without the transform: the operator
    // would bind it and receive nothing.
    let admin = common::connect(&url).await;
    let js = js_of(&admin, None);
    js.create_stream(stream::Config {
        name: "wasmcloud_operator_events".into(),
        mirror: Some(stream::Source {
            name: "wadm_events".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("create by hand");
    let (code, report) = cli(&url, &["plan", "--wadm", "--operator", "0.4"]);
    assert_eq!(code, 3, "{report}");
    let resource = report["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "wasmcloud_operator_events")
        .expect("reported")
        .clone();
    assert_eq!(resource["action"], "drift");
    let fields: Vec<&str> = resource["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .map(|f| {
            assert_eq!(f["breaks"], "operator");
            f["field"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(fields, vec!["retention", "mirror"]);
    let (code, _) = cli(&url, &["apply", "--wadm", "--operator", "0.4"]);
    assert_eq!(code, 3);
    // The status endpoint reports the same drift, in its schema.
    let service = common::provisioner::spawn(&url, Default::default()).await;
    let (code, body) = call(
        &admin,
        "wasmcloud.provision.status",
        r#"{"wadm":true,"operator":"0.4"}"#,
    )
    .await
    .parts();
    assert_eq!(code, None, "{body}");
    assert!(actions_by_name(&body).contains(&("wasmcloud_operator_events".into(), "drift".into())));
    assert_reply_schema(&body);
    // Applying through the service: 409, the stream left as it is.
    let (code, body) = call(&admin, "wasmcloud.provision.wadm", r#"{"operator":"0.4"}"#)
        .await
        .parts();
    assert_eq!(code, Some(409), "{body}");
    service.shutdown().await.expect("serve() returns Ok");
    let mut kept = js
        .get_stream("wasmcloud_operator_events")
        .await
        .expect("kept");
    let kept = kept.info().await.expect("info");
    assert_eq!(kept.config.retention, stream::RetentionPolicy::Limits);
    // --operator without --wadm is a usage error.
    let out = common::provisioner_command()
        .args(["--server", &url, "apply", "--operator", "0.4"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

/// `creds --role host --role operator --via-leaf …`: the `.creds` file for the chart's one
/// secret carries exactly the union of both templates.
#[test]
fn creds_for_the_shared_leaf_and_operator_user_carry_the_union() {
    let dir = tempfile::tempdir().expect("temp dir");
    let account = nkeys::KeyPair::new_account();
    let seed_file = dir.path().join("account.nk");
    std::fs::write(&seed_file, account.seed().expect("seed")).expect("write seed");
    let out_file = dir.path().join("leaf.creds");
    let out = common::provisioner_command()
        .args([
            "creds",
            "--role",
            "host",
            "--role",
            "operator",
            "--operator",
            "0.4",
            "--lattice",
            "default",
            "--js-domain",
            "default",
            "--via-leaf",
            "--account-seed",
        ])
        .arg(&seed_file)
        .arg("--out")
        .arg(&out_file)
        .output()
        .expect("run");
    common::cli::succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("user wasmcloud-host-operator"), "{stdout}");
    let text = std::fs::read_to_string(&out_file).expect("creds written");
    let jwt = text
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT");
    let claims = wasmcloud_provisioner::creds::decode_jwt(jwt).expect("decode");
    let want = permissions::template_union(
        &[Role::Host, Role::Operator],
        &options(&["default"], Some("default")),
        PlatformOptions {
            via_leaf: true,
            operator: Some(Operator::V0_4),
        },
    )
    .expect("union")
    .permissions;
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let nats = &claims["nats"];
    assert_eq!(list(&nats["pub"]["allow"]), want.publish.allow);
    assert_eq!(list(&nats["pub"]["deny"]), want.publish.deny);
    assert_eq!(list(&nats["sub"]["allow"]), want.subscribe.allow);
    assert!(
        nats.get("resp").is_none() || nats["resp"].is_null(),
        "{nats}"
    );
}

/// `serve` with `WASMCLOUD_PROVISIONER_OPERATOR=0.5` (the `--operator` flag's variable, as
/// a Kubernetes ConfigMap sets it): wadm requests cover the 0.5 stream, and discovery says
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_an_operator_default_from_the_environment() {
    let server = NatsServer::start();
    let mut command = common::provisioner_command();
    command
        .args(["--server", &server.url(), "serve"])
        .env("WASMCLOUD_PROVISIONER_OPERATOR", "0.5");
    let _serve = Served::spawn(command, None);
    let client = common::connect(&server.url()).await;
    let info = common::eventually(
        "the service is discoverable",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            async move {
                let m = client
                    .request(format!("$SRV.INFO.{SERVICE_NAME}"), "".into())
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::from_slice::<Value>(&m.payload).map_err(|e| e.to_string())
            }
        },
    )
    .await;
    assert_eq!(info["metadata"]["operator"], "0.5", "{info}");
    let (code, body) = call(&client, "wasmcloud.provision.wadm", "").await.parts();
    assert_eq!(code, None, "{body}");
    assert_eq!(body["operator"], "0.5");
    assert!(actions_by_name(&body).contains(&("wadm_operator_events".into(), "created".into())));
    // A request may name the other version instead.
    let (code, body) = call(&client, "wasmcloud.provision.wadm", r#"{"operator":"0.4"}"#)
        .await
        .parts();
    assert_eq!(code, None, "{body}");
    let names: Vec<String> = actions_by_name(&body).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"wasmcloud_operator_events".to_string()));
    assert!(!names.contains(&"wadm_operator_events".to_string()));
}

/// `config check` lists the operator's streams with their settings like every resource:
/// a config file may set them per catalog key.
#[test]
fn config_check_lists_the_operator_streams() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("provisioner.toml");
    std::fs::write(
        &file,
        "[all]\nreplicas = 3\n\n[resources.wadm_operator_events]\nreplicas = 5\n",
    )
    .expect("write config");
    let out = common::provisioner_command()
        .args(["config", "check"])
        .arg(&file)
        .arg("--json")
        .output()
        .expect("run");
    common::cli::succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let replicas = |key: &str| {
        report["resources"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["key"] == key))
            .map(|r| r["replicas"].clone())
            .unwrap_or_else(|| panic!("no {key} in {report:#}"))
    };
    assert_eq!(replicas("wasmcloud_operator_events"), 3);
    assert_eq!(replicas("wadm_operator_events"), 5);
}

/// `bootstrap operator`, run as the real binary with the least-privilege operator user
/// (an init container of the operator's Deployment): it asks for its lattice's buckets and
/// for wadm's resources with the operator's stream, and exits 0 once they exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_operator_with_the_operator_user_ensures_its_stream() {
    let none = PlatformOptions::default();
    let op = &OPERATORS[0];
    let platform = PlatformOptions {
        via_leaf: false,
        operator: Some(op.version),
    };
    let users = vec![
        ("admin", String::new()),
        (
            "provisioner",
            conf(Role::Provisioner, &options(&[], None), none),
        ),
        (
            "operator-04",
            conf(Role::Operator, &options(&["ops"], None), platform),
        ),
    ];
    let server = NatsServer::start_with(ServerOptions {
        extra_config: accounts(&users),
        ..ServerOptions::default()
    });
    let url = server.url();
    let admin = connect_as(&url, "admin").await;
    let service = Options::new()
        .user("provisioner", PASSWORD)
        .start(&url, &admin)
        .await;
    let out = common::provisioner_command()
        .args(["-s", &url, "--user", "operator-04", "--password", PASSWORD])
        .args(["bootstrap", "operator", "--lattice", "ops", "--operator"])
        .arg(op.version.as_str())
        .args(["--timeout", "60", "--json"])
        .output()
        .expect("run bootstrap operator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Two steps, so `--json` prints both replies by step.
    let reply: Value = serde_json::from_slice(&out.stdout).expect("--json prints the replies");
    assert_eq!(reply["lattice"]["lattice"], "ops", "{reply}");
    assert!(
        actions_by_name(&reply["wadm"])
            .iter()
            .any(|(name, action)| name == op.stream && action == "created"),
        "{reply}"
    );
    let js = js_of(&admin, None);
    for stream in [
        op.stream,
        "wadm_events",
        "KV_LATTICEDATA_ops",
        "KV_CONFIGDATA_ops",
    ] {
        assert!(js.get_stream(stream).await.is_ok(), "{stream} exists");
    }
    service.stop().await;
}
