//! Tenants, the lattice cap, host bootstrap on the wire, exact stream names, the example config.

use super::*;

// ---------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_tenant_cannot_provision_another_lattice() {
    let users = Users::new(None);
    let bed = Bed::start(&users).await;
    let service = bed.service(Options::default()).await;
    let tenant = bed.user("tenant").await;
    let (code, body) = call(&tenant, "wasmcloud.provision.lattice.tenant-a", "")
        .await
        .expect("its own lattice");
    assert_eq!(code, None, "{body}");
    assert_eq!(actions(&body), vec!["created", "created"]);

    // Subjects it may not publish to: refused by the server.
    for (subject, body) in [
        ("wasmcloud.provision.lattice.tenant-b", ""),
        ("wasmcloud.provision.lattice", "tenant-b"),
        ("wasmcloud.provision.lattice", r#"{"lattice":"tenant-b"}"#),
        ("wasmcloud.provision.lattice.*", ""),
        ("wasmcloud.provision.lattice.>", ""),
        ("wasmcloud.provision.status", "tenant-b"),
        ("wasmcloud.provision.wadm", ""),
        ("wasmcloud.provision.host.tenant-b", ""),
        ("wasmcloud.provision.host", r#"{"lattice":"tenant-b"}"#),
    ] {
        assert!(
            call(&tenant, subject, body).await.is_err(),
            "{subject} {body} answered"
        );
        bed.assert_violation("tenant", &format!("\"{subject}\""));
    }
    // Its own subject with a body naming another lattice: refused by the service.
    for body in [
        "tenant-b",
        "\"tenant-b\"",
        r#"{"lattice":"tenant-b"}"#,
        r#"{"lattice":"tenant-b","dry_run":true}"#,
    ] {
        let (code, reply) = call(&tenant, "wasmcloud.provision.lattice.tenant-a", body)
            .await
            .expect("answered");
        assert_eq!(code, Some(403), "{body}: {reply}");
    }

    // A host of tenant-a, with the host template: only its own bootstrap subject.
    let host_a = bed.user("host-a").await;
    let key = nkeys::KeyPair::new_server();
    let reply = request_bootstrap(&host_a, &key, "tenant-a", None)
        .await
        .expect("its own lattice");
    assert!(reply.resources.iter().all(|r| r["action"] == "exists"));
    let err = request_bootstrap(&host_a, &key, "tenant-b", None)
        .await
        .unwrap_err();
    assert!(err.contains("failed"), "{err}");
    bed.assert_violation("host-a", "\"wasmcloud.provision.host.tenant-b\"");
    let smuggled = json!({"lattice": "tenant-b", "host_id": key.public_key()}).to_string();
    let (code, reply) = call(&host_a, "wasmcloud.provision.host.tenant-a", &smuggled)
        .await
        .expect("answered");
    assert_eq!(code, Some(403), "{reply}");

    for stream in ["KV_LATTICEDATA_tenant-b", "KV_CONFIGDATA_tenant-b"] {
        assert!(!bed.stream_exists(stream).await, "{stream} was created");
    }
    service.stop().await;
}

#[tokio::test]
async fn allowed_lattices_and_the_lattice_cap() {
    let users = Users::new(None);
    let bed = Bed::start(&users).await;
    let guard = || Options {
        policy: LatticePolicy::new(vec!["tenant-*".into(), "default".into()], Some(2))
            .expect("policy"),
        ..Options::default()
    };
    let service = bed.service(guard()).await;
    let admin = &bed.admin;
    let lattice = |l: &str| format!("wasmcloud.provision.lattice.{l}");

    let (code, body) = call(admin, &lattice("other"), "").await.expect("reply");
    assert_eq!(code, Some(403), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--allow-lattice"), "{message}");
    for l in ["tenant-a", "tenant-b"] {
        let (code, body) = call(admin, &lattice(l), "").await.expect("reply");
        assert_eq!(code, None, "{l}: {body}");
    }
    let (code, body) = call(admin, &lattice("tenant-c"), "").await.expect("reply");
    assert_eq!(code, Some(429), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--max-lattices"), "{message}");
    // A dry run creates nothing and is not capped; existing lattices are always served.
    let (code, body) = call(admin, &lattice("tenant-c"), r#"{"dry_run":true}"#)
        .await
        .expect("reply");
    assert_eq!(code, None, "{body}");
    let (code, body) = call(admin, &lattice("tenant-a"), "").await.expect("reply");
    assert_eq!(code, None, "{body}");
    assert_eq!(actions(&body), vec!["exists", "exists"]);
    // Every entry point obeys: the host endpoint too.
    let key = nkeys::KeyPair::new_server();
    let host_body = |l: &str| json!({"lattice": l, "host_id": key.public_key()}).to_string();
    let (code, _) = call(admin, "wasmcloud.provision.host", &host_body("default"))
        .await
        .expect("reply");
    assert_eq!(code, Some(429));
    let (code, _) = call(admin, "wasmcloud.provision.host", &host_body("nope"))
        .await
        .expect("reply");
    assert_eq!(code, Some(403));

    // The count is what exists in JetStream: a new instance counts the same, and a
    // removed lattice frees its place.
    service.stop().await;
    let service = bed.service(guard()).await;
    let (code, _) = call(admin, &lattice("tenant-c"), "").await.expect("reply");
    assert_eq!(code, Some(429));
    for s in ["KV_LATTICEDATA_tenant-b", "KV_CONFIGDATA_tenant-b"] {
        bed.js(admin).delete_stream(s).await.expect("admin deletes");
    }
    let (code, body) = call(admin, &lattice("tenant-c"), "").await.expect("reply");
    assert_eq!(code, None, "{body}");
    service.stop().await;

    // The command line obeys the same flags.
    let out = common::provisioner_command()
        .args([
            "--server",
            &bed.server.url(),
            "--user",
            "admin",
            "--password",
            PASSWORD,
        ])
        .args(["apply", "--lattice", "other", "--allow-lattice", "tenant-*"])
        .env_remove("WASMCLOUD_PROVISIONER_CONFIG")
        .env_remove("WASMCLOUD_JS_DOMAIN")
        .output()
        .expect("run the CLI");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not served here"), "{stderr}");
    assert!(!bed.stream_exists("KV_LATTICEDATA_other").await);
}

// ---------------------------------------------------------------------------
// Host bootstrap: signatures and validation on the wire
// ---------------------------------------------------------------------------

#[tokio::test]
async fn host_bootstrap_checks_keys_and_signatures() {
    let users = Users::new(None);
    let bed = Bed::start(&users).await;
    let trusted = nkeys::KeyPair::new_server();
    let stranger = nkeys::KeyPair::new_server();
    let service = bed
        .service(Options {
            host_auth: HostAuth {
                require_signed: true,
                trusted: Some([trusted.public_key()].into_iter().collect()),
                max_age: Duration::from_secs(60),
                ..HostAuth::default()
            },
            ..Options::default()
        })
        .await;
    let admin = &bed.admin;
    let signed = |key: &nkeys::KeyPair, signer: &nkeys::KeyPair, issued_at: i64| {
        let body =
            json!({"lattice": "default", "host_id": key.public_key(), "issued_at": issued_at})
                .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            sign(signer, body.as_bytes()).expect("sign").as_str(),
        );
        (headers, body)
    };
    // Malformed host ids are a 400.
    let user_key = nkeys::KeyPair::new_user().public_key();
    for body in [
        json!({"host_id": "NOTAKEY"}).to_string(),
        json!({"host_id": user_key}).to_string(),
        "{}".to_string(),
    ] {
        let (code, reply) = call(admin, "wasmcloud.provision.host", &body)
            .await
            .expect("reply");
        assert_eq!(code, Some(400), "{body}: {reply}");
    }
    // Unsigned, signed by another key, stale, untrusted: 403, nothing created.
    let now = now_secs();
    let unsigned = json!({"lattice": "default", "host_id": trusted.public_key(), "issued_at": now});
    let cases = [
        (HeaderMap::new(), unsigned.to_string()),
        signed(&trusted, &stranger, now),
        signed(&trusted, &trusted, now - 3600),
        signed(&stranger, &stranger, now),
    ];
    for (headers, body) in cases {
        let (code, reply) = call_with(admin, "wasmcloud.provision.host", headers, &body)
            .await
            .expect("reply");
        assert_eq!(code, Some(403), "{body}: {reply}");
    }
    assert!(!bed.stream_exists("KV_LATTICEDATA_default").await);
    // A signed scoped request must name its lattice in the signed body.
    let body = json!({"host_id": trusted.public_key(), "issued_at": now}).to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        sign(&trusted, body.as_bytes()).expect("sign").as_str(),
    );
    let (code, _) = call_with(admin, "wasmcloud.provision.host.default", headers, &body)
        .await
        .expect("reply");
    assert_eq!(code, Some(403));
    // The trusted key, signed and fresh: served, on both subjects.
    let (headers, body) = signed(&trusted, &trusted, now);
    let (code, reply) = call_with(admin, "wasmcloud.provision.host", headers, &body)
        .await
        .expect("reply");
    assert_eq!(code, None, "{reply}");
    assert_eq!(reply["signed"], true);
    assert_eq!(actions(&reply), vec!["created", "created"]);
    let reply = request_bootstrap(admin, &trusted, "default", Some("1.9.2"))
        .await
        .expect("scoped bootstrap");
    assert!(reply.resources.iter().all(|r| r["action"] == "exists"));
    service.stop().await;
}

// ---------------------------------------------------------------------------
// The provisioner with exact stream names
// ---------------------------------------------------------------------------

#[tokio::test]
async fn provisioner_with_exact_names_serves_only_its_lattices() {
    let mut users = Users::new(None);
    users.provisioner.lattices = vec!["default".into(), "prod".into()];
    let bed = Bed::start(&users).await;
    let service = bed
        .service(Options {
            js_timeout: REFUSED_TIMEOUT,
            ..Options::default()
        })
        .await;
    let admin = &bed.admin;
    for (subject, body) in [
        ("wasmcloud.provision.lattice", "default"),
        ("wasmcloud.provision.lattice", "prod"),
        ("wasmcloud.provision.wadm", ""),
    ] {
        let (code, reply) = call(admin, subject, body).await.expect("reply");
        assert_eq!(code, None, "{subject} {body}: {reply}");
        assert!(actions(&reply).iter().all(|a| a == "created"), "{reply}");
    }
    assert!(common::permission_violations(&bed.server.log()).is_empty());
    // Another lattice: the server refuses the provisioner's stream calls, and the reply
    // says where to look.
    let (code, reply) = call(admin, "wasmcloud.provision.lattice", "other")
        .await
        .expect("reply");
    assert_eq!(code, Some(503), "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("permissions violation"), "{message}");
    // (A lookup or a create, depending on whether the service looks before creating.)
    bed.assert_violation("provisioner", ".KV_LATTICEDATA_other\"");
    assert!(!bed.stream_exists("KV_LATTICEDATA_other").await);
    service.stop().await;
}

// ---------------------------------------------------------------------------
// examples/nats-server.conf is the tool's current output
// ---------------------------------------------------------------------------

/// Every block of the example config that starts with `# wasmcloud-provisioner
/// permissions …` must be exactly what that command prints now. `UPDATE_EXAMPLES=1`
/// rewrites the blocks instead.
#[test]
fn example_server_config_is_what_the_tool_prints() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nats-server.conf");
    let text = std::fs::read_to_string(&path).expect("examples/nats-server.conf");
    let mut rebuilt = String::new();
    let mut lines = text.split_inclusive('\n');
    let mut blocks = 0;
    let mut stale = Vec::new();
    while let Some(line) = lines.next() {
        let Some(command) = line.trim().strip_prefix("# wasmcloud-provisioner ") else {
            rebuilt.push_str(line);
            continue;
        };
        let mut block = line.to_string();
        for next in lines.by_ref() {
            block.push_str(next);
            if next.trim() == "# end wasmcloud-provisioner permissions" {
                break;
            }
        }
        let out = common::provisioner_command()
            .args(command.split_whitespace())
            .env_remove("WASMCLOUD_JS_DOMAIN")
            .env_remove("WASMCLOUD_PROVISIONER_CONFIG")
            .output()
            .expect("run the tool");
        assert!(out.status.success(), "{command}: {out:?}");
        let now = String::from_utf8(out.stdout).expect("utf-8");
        if now != block {
            stale.push(command.to_string());
        }
        rebuilt.push_str(&now);
        blocks += 1;
    }
    assert_eq!(
        blocks, 3,
        "the example holds the provisioner, host and wadm users"
    );
    if std::env::var_os("UPDATE_EXAMPLES").is_some() {
        std::fs::write(&path, &rebuilt).expect("rewrite the example");
        return;
    }
    assert!(
        stale.is_empty(),
        "examples/nats-server.conf is stale for: {stale:?}; regenerate with \
         `UPDATE_EXAMPLES=1 cargo test --test least_privilege example_server_config`"
    );
    // And nats-server accepts it.
    let out = std::process::Command::new(common::nats_server_bin())
        .args(["-t", "-c"])
        .arg(&path)
        .env("PROVISIONER_PASSWORD", "p")
        .env("HOST_PASSWORD", "h")
        .env("WADM_PASSWORD", "w")
        .output()
        .expect("run nats-server -t");
    assert!(
        out.status.success(),
        "nats-server refuses the example: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
