//! Backup and restore round trips: single node, cluster, with and without a JetStream domain.

use super::*;

/// Backs up lattice `lattice` with the binary, checks the folder, deletes the streams,
/// restores, and compares everything.
async fn round_trip(url: &str, domain: Option<&str>, replicas: usize, f: Fill) {
    let client = common::connect(url).await;
    let j = js(&client, domain);
    let lattice = "rt";
    fill(&j, &format!("CONFIGDATA_{lattice}"), replicas, f).await;
    fill(
        &j,
        &format!("LATTICEDATA_{lattice}"),
        replicas,
        Fill {
            keys: f.keys / 10,
            revised: 10,
            deleted: 5,
            purged: 5,
        },
    )
    .await;
    let streams = [
        format!("KV_LATTICEDATA_{lattice}"),
        format!("KV_CONFIGDATA_{lattice}"),
    ];
    let mut before = Vec::new();
    for s in &streams {
        before.push(record(&client, domain, s).await);
    }
    let kv_before = kv_view(&j, lattice, f).await;
    assert_eq!(kv_before.0.len(), 5, "k0 has five revisions");
    assert_eq!(
        kv_before.1,
        (None, None),
        "deleted and purged keys read as gone"
    );
    assert_eq!(kv_before.2.len(), 64 * 1024);
    let mut events = client
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    client.flush().await.expect("flush");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("b1");
    let o = ok(cli(
        url,
        domain,
        &[
            "backup",
            "--lattice",
            lattice,
            "--out",
            path(&out),
            "--json",
        ],
    ));
    let manifest: Value = serde_json::from_slice(&o.stdout).expect("manifest on stdout");
    assert_eq!(manifest["js_domain"], serde_json::json!(domain));
    let listed: Vec<&str> = manifest["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["stream"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        listed,
        streams.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let on_disk: Value = serde_json::from_slice(
        &std::fs::read(out.join("backup-manifest.json")).expect("manifest file"),
    )
    .expect("manifest JSON");
    assert_eq!(on_disk, manifest);
    for (entry, rec) in manifest["streams"].as_array().unwrap().iter().zip(&before) {
        let folder = out.join(&rec.stream);
        let meta: Value =
            serde_json::from_slice(&std::fs::read(folder.join("backup.json")).unwrap()).unwrap();
        assert_eq!(meta["config"]["name"], rec.stream.as_str());
        assert_eq!(entry["messages"], rec.messages.len() as u64);
        let data = std::fs::read(folder.join("stream.tar.s2")).unwrap();
        assert_eq!(entry["data_bytes"], data.len() as u64);
        let sum =
            wasmcloud_provisioner::backup::manifest::sha256_file(&folder.join("stream.tar.s2"))
                .unwrap();
        assert_eq!(entry["sha256"], sum.as_str());
    }
    assert!(!out.join("BACKUP-INCOMPLETE").exists());
    // Nothing but the backup beside it: the temporary folder was renamed.
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);

    for s in &streams {
        delete(&client, domain, s).await;
    }
    ok_retrying_transient(url, domain, &["restore", "--from", path(&out)]);
    for rec in &before {
        assert_same(&client, domain, rec).await;
    }
    // The KV view agrees: a revised key has its five revisions, deleted and purged keys
    // read as gone, a 64 KiB value is intact. A restored R3 stream answers before every
    // replica has caught up, so the KV view is given time to converge.
    common::eventually("the KV view", Duration::from_secs(20), || async {
        let v = kv_view(&j, lattice, f).await;
        if v == kv_before {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    // `plan` sees the restored buckets as they were: exists, no drift.
    let plan = cli(url, domain, &["plan", "--lattice", lattice, "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let body: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(common::actions(&body), ["exists", "exists"], "{body:#}");

    if replicas == 3 {
        // --replicas changes the restored stream's replicas, nothing else.
        delete(&client, domain, &streams[0]).await;
        ok_retrying_transient(
            url,
            domain,
            &[
                "restore",
                "--from",
                path(&out),
                "--skip-existing",
                "--replicas",
                "1",
            ],
        );
        let mut want = before[0].config.clone();
        want["num_replicas"] = 1.into();
        assert_eq!(config(&client, domain, &streams[0]).await, want);
    }
    // Audit: one backed_up and one restored event per stream.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("audit events in time")
            .expect("subscription open");
        let e: Value = serde_json::from_slice(&m.payload).expect("event JSON");
        assert_eq!(e["js_domain"], serde_json::json!(domain));
        seen.push(format!(
            "{} {}",
            e["action"].as_str().unwrap_or("?"),
            e["resource"]["stream"].as_str().unwrap_or("?")
        ));
    }
    let want: Vec<String> = ["backed_up", "restored"]
        .iter()
        .flat_map(|a| streams.iter().map(move |s| format!("{a} {s}")))
        .collect();
    assert_eq!(seen[..4], want[..]);
}

#[tokio::test]
async fn round_trip_single_node_keeps_every_key_revision_tombstone_and_config() {
    let server = NatsServer::start();
    round_trip(&server.url(), None, 1, FULL).await;
}

#[tokio::test]
async fn round_trip_single_node_in_a_jetstream_domain() {
    let server = NatsServer::start_with(ServerOptions {
        js_domain: Some("hub".into()),
        ..Default::default()
    });
    round_trip(&server.url(), Some("hub"), 1, SMALL).await;
}

#[tokio::test]
async fn round_trip_three_node_cluster() {
    let cluster = NatsCluster::start(3);
    round_trip(&cluster.client_url_all(), None, 3, SMALL).await;
}

#[tokio::test]
async fn round_trip_three_node_cluster_in_a_jetstream_domain() {
    let cluster = NatsCluster::start_with(
        3,
        ClusterOptions {
            js_domain: Some("hub".into()),
            ..Default::default()
        },
    );
    round_trip(&cluster.client_url_all(), Some("hub"), 3, SMALL).await;
}
