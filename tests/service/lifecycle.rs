//! Graceful shutdown, and the real binary (`plan`, `apply`, `serve`).

use super::*;

// ---------------------------------------------------------------------------
// 10. Graceful shutdown
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_request_in_flight() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let mut service = provisioner::spawn(&server.url(), Settings::default()).await;

    // 100 cold lattices: each needs two observations and two creates.
    let n = 100;
    let inbox = nc.new_inbox();
    let mut replies = nc.subscribe(format!("{inbox}.*")).await.expect("subscribe");
    for i in 0..n {
        nc.publish_with_reply(
            "wasmcloud.provision.lattice".to_string(),
            format!("{inbox}.{i}"),
            format!("drain-{i}").into(),
        )
        .await
        .expect("publish");
    }
    nc.flush().await.expect("flush");
    // The service's connection gets messages from one publisher in order: once it has
    // answered a PING sent after the requests, it holds all of them.
    discovery(&nc, "$SRV.PING.wasmcloud-provisioner").await;
    // Replies already here were not in flight; reported, never asserted (timing).
    let mut early = Vec::new();
    while let Some(Some(message)) = futures::FutureExt::now_or_never(replies.next()) {
        early.push(message);
    }
    service.trigger_shutdown();
    eprintln!(
        "shutdown triggered with {} of {n} requests still in flight",
        n - early.len()
    );

    let mut answered = BTreeSet::new();
    let mut early = early.into_iter();
    while answered.len() < n {
        let next = match early.next() {
            Some(message) => Some(message),
            None => tokio::time::timeout(REPLY_TIMEOUT, replies.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {n} requests were answered", answered.len())
                }),
        };
        let message = next.expect("subscription open");
        let reply = Reply::from_message("wasmcloud.provision.lattice", &message, Duration::ZERO);
        reply.ok();
        assert!(
            reply.actions().values().all(|a| a == "created"),
            "{}",
            reply.body
        );
        assert_eq!(reply.actions().len(), 2);
        assert!(
            answered.insert(message.subject.to_string()),
            "answered twice"
        );
    }
    service
        .join()
        .await
        .expect("serve() returns Ok after draining");
    assert_eq!(account_stream_count(&nc).await, 2 * n as u64);
    // After shutdown nobody answers any more.
    let after = nc
        .request("wasmcloud.provision.lattice".to_string(), "late".into())
        .await;
    assert!(after.is_err(), "a stopped service answered: {after:?}");
}

// ---------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------

/// The binary with a clean environment (see `common::provisioner_command`): only the
/// flags given here count.
fn binary(url: &str) -> Command {
    let mut cmd = common::provisioner_command();
    cmd.arg("--server").arg(url);
    cmd
}

/// Runs a one-shot command on a blocking thread; returns (exit code, stdout, stderr).
async fn run_binary(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = binary(url);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn binary_plan_and_apply_exit_codes() {
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;

    let (code, out, err) = run_binary(&url, &["plan", "--lattice", "cli"]).await;
    assert_eq!(code, 2, "plan with work to do exits 2\n{out}\n{err}");
    assert!(out.contains("would_create"), "{out}");
    assert_eq!(account_stream_count(&nc).await, 0, "plan created something");

    let (code, out, err) =
        run_binary(&url, &["apply", "--lattice", "cli", "--wadm", "--json"]).await;
    assert_eq!(code, 0, "apply exits 0\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["dry_run"], false);
    let resources = report["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 10);
    assert!(
        resources.iter().all(|r| r["action"] == "created"),
        "{report}"
    );
    for d in lattice_desired("cli")
        .into_iter()
        .chain(wadm_desired(false))
    {
        assert_stored_is_desired(&stored_config(&nc, &d.stream).await, &d);
    }

    let (code, out, err) = run_binary(&url, &["plan", "--lattice", "cli", "--wadm"]).await;
    assert_eq!(code, 0, "nothing to do exits 0\n{out}\n{err}");
    let (code, out, _) = run_binary(&url, &["plan", "--lattice", "cli", "--json"]).await;
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(plan["dry_run"], true);

    // Drift: a bucket without rollup; plan and apply both exit 3 and change nothing.
    let mut broken = desired_config("KV_LATTICEDATA_drift", false);
    broken["allow_rollup_hdrs"] = json!(false);
    assert!(raw_create(&nc, &broken).await.get("error").is_none());
    let before = stream_info(&nc, "KV_LATTICEDATA_drift")
        .await
        .expect("created");
    for command in ["plan", "apply"] {
        let (code, out, err) = run_binary(&url, &[command, "--lattice", "drift"]).await;
        assert_eq!(code, 3, "{command} with drift exits 3\n{out}\n{err}");
        assert!(out.contains("drift allow_rollup_hdrs"), "{out}");
    }
    let after = stream_info(&nc, "KV_LATTICEDATA_drift")
        .await
        .expect("kept");
    assert_eq!(after["config"], before["config"]);
    assert_eq!(after["created"], before["created"]);

    // Bad arguments exit 1 and name the problem.
    let (code, _, err) = run_binary(&url, &["apply", "--lattice", "a.b"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("'.'"), "{err}");
    let (code, _, err) = run_binary(&url, &["apply"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("--lattice"), "{err}");
}

#[tokio::test]
async fn binary_serve_answers_and_exits_0_on_sigterm() {
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;
    let mut child = binary(&url)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");

    // Ready once $SRV.INFO lists every endpoint.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Ok(m)) = tokio::time::timeout(
            Duration::from_secs(1),
            nc.request("$SRV.INFO.wasmcloud-provisioner".to_string(), "".into()),
        )
        .await
        {
            let info: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if info["endpoints"].as_array().map(Vec::len) == Some(ENDPOINTS.len()) {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "serve did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reply = call(&nc, "wasmcloud.provision.lattice", "bin").await;
    reply.ok();
    assert!(reply.actions().values().all(|a| a == "created"));
    call(&nc, "wasmcloud.provision.lattice", "a.b")
        .await
        .error(400);

    assert!(common::cli::sigterm(child.id()));
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait for serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "serve exits 0 on SIGTERM\n{stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");
}
