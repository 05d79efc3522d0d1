//! Each tenant's buckets in its own account; refusals, forged request info, `config check`.

use super::*;

#[tokio::test]
async fn each_tenant_gets_its_buckets_in_its_own_account() {
    let bed = Bed::start().await;
    let (a_host, b_host) = (bed.client("a_host").await, bed.client("b_host").await);
    let (a_admin, b_admin) = (bed.client("a_admin").await, bed.client("b_admin").await);
    let prov = bed.client("prov").await;
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");

    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    // Audit events (in PROV) name the account the buckets were created in.
    let validator = project_schema("audit_event.json");
    for _ in 0..2 {
        let event = next_message(&mut events).await.expect("an audit event");
        let event: Value = serde_json::from_slice(&event.payload).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}: {event}");
        assert_eq!(event["account"], "TENANT_A", "{event}");
        assert_eq!(
            event["requester"]["request_info"]["acc"], "TENANT_A",
            "{event}"
        );
    }
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // A sniffer in A, on every subject: it sees A's own replies (the `_INBOX` sniffing
    // that works within one account) ...
    let sniffer = bed.client("a_admin").await;
    let mut sniffed = sniffer.subscribe(">").await.expect("subscribe");
    sniffer.flush().await.expect("flush");
    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    // Its reply (the request's copy may come before or after it) ...
    let mut got_reply = false;
    let marker = format!("marker.{}", nuid::next());
    while !got_reply {
        let m = next_message(&mut sniffed).await.expect("A's own reply");
        got_reply = m.subject.starts_with("_INBOX.")
            && String::from_utf8_lossy(&m.payload).contains("LATTICEDATA_a1");
    }
    // ... and then anything else of A's, up to a marker of the sniffer's own.
    sniffer
        .publish(marker.clone(), "".into())
        .await
        .expect("publish");
    sniffer.flush().await.expect("flush");
    loop {
        let m = next_message(&mut sniffed).await.expect("the marker");
        if m.subject.as_str() == marker {
            break;
        }
    }

    // ... but nothing of B's, while B asks for `b1` and for an `a1` of its own: that is
    // B's own pair, made now (never A's warm reply), and the second time answered warm.
    let (code, body) = request(&b_host, "b1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    let (code, body) = request(&b_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    let (code, body) = request(&b_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
    if let Some(m) = next_message(&mut sniffed).await {
        panic!(
            "A saw B's traffic on {}: {}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }

    let mut b_expected = lattice_streams("a1");
    b_expected.extend(lattice_streams("b1"));
    b_expected.sort();
    assert_eq!(streams(&b_admin).await, b_expected);
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov).await.is_empty());

    // A multitenant wadm in its own account (B here) gets its 8 resources there.
    let reply = b_host
        .request(
            "wasmcloud.provision.wadm",
            json!({"multitenant": true}).to_string().into(),
        )
        .await
        .expect("the provisioner answers");
    let body: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(common::actions(&body), vec!["created"; 8], "{body}");
    assert_eq!(streams(&b_admin).await.len(), b_expected.len() + 8);
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov).await.is_empty());
    bed.stop().await;
}

#[tokio::test]
async fn accounts_not_served_are_refused_and_nothing_is_created() {
    let bed = Bed::start().await;
    let prov = bed.client("prov").await;
    let (a_admin, c_admin) = (bed.client("a_admin").await, bed.client("c_admin").await);

    let (code, body) = request(&bed.client("c_host").await, "c1", None).await;
    assert_eq!(code, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("account TENANT_C is not served here"),
        "{message}"
    );
    assert!(streams(&c_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // TENANT_D is configured with the user of another account: the provisioner finds out
    // before it creates anything there.
    let (code, body) = request(&bed.client("d_host").await, "d1", None).await;
    assert_eq!(code, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the credentials of [accounts.TENANT_D] are those of a user in account TENANT_A"
        ),
        "{message}"
    );
    assert!(streams(&a_admin).await.is_empty());
    assert!(streams(&bed.client("d_admin").await).await.is_empty());
    // Requests right after a failed open share its answer: no connection attempt each.
    let d_host = bed.client("d_host").await;
    for _ in 0..5 {
        let (code, body) = request(&d_host, "d1", None).await;
        assert_eq!(code, 503, "{body}");
    }
    let (_, closed) = bed
        .server
        .http_get("/connz?acc=TENANT_A&state=closed&auth=true&limit=1000")
        .expect("/connz answers");
    let closed: Value = serde_json::from_str(&closed).expect("JSON");
    let attempts = closed["connections"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|c| c["authorized_user"] == "a_prov")
                .count()
        })
        .unwrap_or(0);
    assert!(
        attempts <= 2,
        "{attempts} connections for 6 requests: {closed}"
    );
    bed.stop().await;
}

fn forged(account: &str) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert(
        "Nats-Request-Info",
        json!({ "acc": account, "user": "forger" })
            .to_string()
            .as_str(),
    );
    h
}

#[tokio::test]
async fn a_forged_request_info_never_reaches_another_account() {
    let bed = Bed::start().await;
    let prov = bed.client("prov").await;
    let (a_admin, b_admin) = (bed.client("a_admin").await, bed.client("b_admin").await);

    // Within PROV the server passes a client's header on as sent: refused, since the
    // request did not come through an import.
    let (code, body) = request(&prov, "x1", Some(forged("TENANT_B"))).await;
    assert_eq!(code, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("did not come through a service import"),
        "{message}"
    );
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // Across the import (2.12.8) the server replaces it with the requester's account.
    let (code, body) = request(&bed.client("a_host").await, "x2", Some(forged("TENANT_B"))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("x2"));
    assert!(streams(&b_admin).await.is_empty());
    assert!(streams(&prov).await.is_empty());

    // Without the header, PROV's own requests are served in PROV as always (and their
    // audit events name no tenant account).
    let mut events = prov
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe to audit events");
    prov.flush().await.expect("flush");
    let (code, body) = request(&prov, "p1", None).await;
    assert_eq!(code, 200, "{body}");
    // (Events of x2 may still be on their way: they name TENANT_A.)
    loop {
        let event = next_message(&mut events).await.expect("p1's audit event");
        let event: Value = serde_json::from_slice(&event.payload).expect("JSON");
        if event["resource"]["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("_p1")
        {
            assert!(event.get("account").is_none(), "{event}");
            break;
        }
        assert_eq!(event["account"], "TENANT_A", "{event}");
    }
    assert_eq!(streams(&prov).await, lattice_streams("p1"));
    assert!(streams(&b_admin).await.is_empty());
    bed.stop().await;
}

/// `config check` resolves `[accounts.*]`: a served account is listed (no secrets), and
/// one without credentials of its own, or with a bad glob, fails before `serve` would.
#[test]
fn config_check_lists_and_checks_the_tenant_accounts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("provisioner.toml");
    let check = |text: &str| {
        std::fs::write(&config, text).expect("write the config");
        common::provisioner_command()
            .args(["config", "check", "--json"])
            .arg(&config)
            .output()
            .expect("run config check")
    };
    let out = check(
        "[accounts.TENANT_A]\nuser = \"a_prov\"\npassword = \"secret\"\nreplicas = 3\n\
         allow_lattices = [\"a-*\"]\nmax_lattices = 5\n",
    );
    common::cli::succeeded(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("secret"), "{text}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let a = &report["accounts"][0];
    assert_eq!(a["name"], "TENANT_A", "{report}");
    assert_eq!(a["replicas"], 3, "{report}");
    assert_eq!(a["max_lattices"], 5, "{report}");
    assert_eq!(a["allow_lattices"], json!(["a-*"]), "{report}");

    // Operator mode: a signing key, the table named by the account's public key.
    let key = nkeys::KeyPair::new_account();
    let seed = dir.path().join("a.nk");
    std::fs::write(&seed, key.seed().expect("seed")).expect("write");
    let out = check(&format!(
        "[accounts.{}]\nsigning_key = {:?}\nuser_expiry = \"30m\"\n",
        key.public_key(),
        seed.to_string_lossy()
    ));
    common::cli::succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let auth = report["accounts"][0]["auth"].as_str().unwrap_or_default();
    assert!(
        auth.starts_with("users minted with") && auth.ends_with("valid 1800 s"),
        "{report}"
    );

    let no_seed_file = format!(
        "[accounts.{}]\nsigning_key = \"/nonexistent/a.nk\"\n",
        nkeys::KeyPair::new_account().public_key()
    );
    for (text, expected) in [
        (
            "[accounts.TENANT_A]\nreplicas = 3\n",
            "give the credentials of a user in account TENANT_A",
        ),
        (
            "[accounts.TENANT_A]\ncreds = \"/nonexistent/a.creds\"\n",
            "credentials file /nonexistent/a.creds does not exist",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nallow_lattices = [\"wasmbus\"]\n",
            "[accounts.TENANT_A]",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nquota = 1\n",
            "unknown field",
        ),
        (
            "[accounts.TENANT_A]\nsigning_key = \"/nonexistent/a.nk\"\n",
            "name the table by the account's public key",
        ),
        (
            no_seed_file.as_str(),
            "cannot read the account seed file /nonexistent/a.nk",
        ),
        (
            "[accounts.TENANT_A]\nuser = \"u\"\npassword = \"p\"\nuser_expiry = \"1h\"\n",
            "user_expiry is for signing_key",
        ),
    ] {
        let out = check(text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: accepted");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}
