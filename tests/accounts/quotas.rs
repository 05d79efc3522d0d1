//! Quotas and the warm path per account; the printed account blocks; idle tenant connections.

use super::*;

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
    common::cli::succeeded(&out);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (prov_user, accounts, tenant_user) = common::cli::tenant_blocks(&text);
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
