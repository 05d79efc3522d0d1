//! Placement tags and cluster choose the servers.

use super::*;

// ---------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_tags_and_cluster_choose_the_servers() {
    let _machine = MACHINE.read().await;
    let cluster = NatsCluster::start_with(
        3,
        ClusterOptions {
            server_tags: vec![
                vec!["az:a".into(), "disk:ssd".into()],
                vec!["az:b".into(), "disk:ssd".into()],
                vec!["az:c".into(), "disk:hdd".into()],
            ],
            ..Default::default()
        },
    );
    let client = common::connect(&cluster.client_url_all()).await;
    wait_placeable(&client).await;

    // From the config file, through the real binary: every resource on the hdd server at
    // R1, except CONFIGDATA at R3 anywhere in cluster c1.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("provisioner.toml");
    std::fs::write(
        &path,
        r#"
[all]
replicas = 1
placement = { tags = ["disk:hdd"] }

[resources.configdata]
replicas = 3
placement = { cluster = "c1" }
"#,
    )
    .expect("write the config file");
    let js_timeout = JS_TIMEOUT.as_secs().to_string();
    let out = common::provisioner_command()
        .args(["--server", &cluster.client_url_all(), "--config"])
        .arg(&path)
        .args([
            "apply",
            "--lattice",
            "placed",
            "--json",
            "--js-timeout",
            &js_timeout,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run wasmcloud-provisioner apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apply failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("apply --json prints JSON");
    assert_eq!(report["resources"][0]["action"], "created", "{report}");

    let data = stream_info(&client, "KV_LATTICEDATA_placed")
        .await
        .expect("created");
    assert_eq!(data["config"]["num_replicas"], 1);
    assert_eq!(data["config"]["placement"]["tags"], json!(["disk:hdd"]));
    assert_eq!(
        data["cluster"]["leader"],
        cluster.server_name(2),
        "on the hdd server"
    );
    let config = stream_info(&client, "KV_CONFIGDATA_placed")
        .await
        .expect("created");
    assert_eq!(config["config"]["num_replicas"], 3);
    assert_eq!(config["config"]["placement"]["cluster"], "c1");
    assert_eq!(peers(&config), 3);

    // The flag sets every resource's replicas; an even count is refused up front.
    let run = |args: &[&str]| {
        common::provisioner_command()
            .args(["--server", &cluster.client_url_all()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run wasmcloud-provisioner")
    };
    let out = run(&[
        "--replicas",
        "3",
        "apply",
        "--lattice",
        "flagged",
        "--json",
        "--js-timeout",
        &js_timeout,
    ]);
    common::cli::succeeded(&out);
    for stream in ["KV_LATTICEDATA_flagged", "KV_CONFIGDATA_flagged"] {
        let info = stream_info(&client, stream).await.expect("created");
        assert_eq!(info["config"]["num_replicas"], 3, "{stream}");
        assert_eq!(peers(&info), 3, "{stream}");
    }
    let out = run(&["--replicas", "4", "apply", "--lattice", "even"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1, 3 or 5"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stream_info(&client, "KV_LATTICEDATA_even").await.is_none());

    // A placement the cluster cannot satisfy is a 409 that names the placement, and
    // creates nothing.
    let mut ssd = r3();
    ssd.all.placement = Some(Placement {
        cluster: None,
        tags: vec!["disk:ssd".into()],
    });
    let instance = start_instance(&cluster.client_url_all(), ssd).await;
    wait_discoverable(&client, 1).await;
    let before = stream_count(&client).await;
    let reply = lattice(&client, json!({ "lattice": "nowhere" })).await;
    reply.assert_well_formed_error("R3 on two ssd servers");
    assert_eq!(reply.code, 409, "{reply:?}");
    assert!(reply.message().contains("placement"), "{reply:?}");
    assert_eq!(stream_count(&client).await, before, "nothing was created");
    instance.stop().await;
}
