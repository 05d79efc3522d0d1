//! What a refused request reveals, the operator's replicas, signed host requests.

use super::*;

// ---------------------------------------------------------------------------
// 5. Refusals reveal neither other tenants nor the policy
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refusals_reveal_neither_other_tenants_nor_the_policy() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let bound = nkeys::KeyPair::new_server();
    let keys = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![format!("{}=secret-tenant-a*", bound.public_key())],
        host_signature_max_age: Some(300),
        ..Default::default()
    })
    .expect("host auth");
    let policy = LatticePolicy::new(vec!["secret-tenant-*".into(), "default".into()], Some(1))
        .expect("policy");
    let service = Options::new()
        .policy(policy)
        .host_auth(keys)
        .spawn(&server.url())
        .await;

    let first = call(&client, "wasmcloud.provision.lattice", "secret-tenant-a").await;
    assert_eq!(first.error_code, None, "{first:?}");
    // The cap: the reply names only what was asked for.
    let capped = call(&client, "wasmcloud.provision.lattice", "secret-tenant-b").await;
    let message = capped.error(429);
    assert!(message.contains("secret-tenant-b"), "{message}");
    assert!(message.contains("--max-lattices"), "{message}");
    capped.assert_silent_about("secret-tenant-a");
    capped.assert_silent_about("secret-tenant-*");
    // Not allowed: the reply does not quote the globs.
    let refused = call(&client, "wasmcloud.provision.lattice", "other").await;
    let message = refused.error(403);
    assert!(message.contains("--allow-lattice"), "{message}");
    refused.assert_silent_about("secret");
    refused.assert_silent_about("default");
    // A host key bound elsewhere: the reply does not quote its globs.
    let body =
        json!({"lattice": "default", "host_id": bound.public_key(), "issued_at": now_secs()})
            .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        sign(&bound, body.as_bytes()).expect("sign").as_str(),
    );
    let reply = call_with(&client, "wasmcloud.provision.host.default", headers, &body).await;
    reply.error(403);
    reply.assert_silent_about("secret");
    assert_eq!(
        stream_names(&client).await,
        // The lattice admitted before, and the provisioner's own reservations bucket
        // (made on first use with a cap): nothing for the refused requests.
        vec![
            "KV_CONFIGDATA_secret-tenant-a",
            "KV_LATTICEDATA_secret-tenant-a",
            "KV_wasmcloud_provisioner_admissions"
        ]
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------
// 6. The operator's replicas are a floor; raising them is the operator's choice
// ---------------------------------------------------------------------------

#[tokio::test]
async fn request_replicas_never_go_below_the_floor_nor_above_the_operators_max() {
    let server = NatsServer::start();
    let url = server.url();
    let client = test_client(&url).await;
    let lattice = "wasmcloud.provision.lattice";

    // Floor 3 (a dry run: a single server cannot hold R3): a request for 1 is planned at
    // 3, and the reply says why.
    let mut floor3 = Settings::default();
    floor3.all.replicas = Some(3);
    let service = Options::new().settings(floor3).spawn(&url).await;
    let reply = call(
        &client,
        lattice,
        r#"{"lattice":"x","replicas":1,"dry_run":true}"#,
    )
    .await;
    assert_eq!(reply.error_code, None, "{reply:?}");
    assert!(
        reply.body["replicas_note"]
            .as_str()
            .is_some_and(|n| n.contains("floor")),
        "{reply:?}"
    );
    for r in reply.body["resources"].as_array().expect("resources") {
        assert_eq!(r["desired_replicas"], 3, "{r}");
    }
    let reply = call(
        &client,
        "wasmcloud.provision.wadm",
        r#"{"replicas":1,"dry_run":true}"#,
    )
    .await;
    assert_eq!(reply.error_code, None, "{reply:?}");
    assert!(reply.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .all(|r| r["desired_replicas"] == 3));
    service.stop().await;

    // Floor 1, no max (the default): a request may not raise replicas, dry run or not.
    let service = Options::new().spawn(&url).await;
    for (subject, body) in [
        (lattice, r#"{"lattice":"y","replicas":3}"#),
        (lattice, r#"{"lattice":"y","replicas":3.0,"dry_run":true}"#),
        ("wasmcloud.provision.lattice.y", r#"{"replicas":5}"#),
        ("wasmcloud.provision.wadm", r#"{"replicas":3}"#),
    ] {
        let message = call(&client, subject, body).await.error(403);
        assert!(
            message.contains("--max-request-replicas"),
            "{body}: {message}"
        );
    }
    let reply = call(&client, lattice, r#"{"lattice":"y","replicas":1}"#).await;
    assert_eq!(reply.error_code, None, "{reply:?}");
    assert!(reply.body.get("replicas_note").is_none(), "{reply:?}");
    service.stop().await;

    // Max 3: 5 is refused; 3 passes the policy and reaches JetStream, which a single
    // server refuses (409), so nothing is created either way.
    let max3 = Settings {
        max_request_replicas: Some(3),
        ..Settings::default()
    };
    let service = Options::new().settings(max3).spawn(&url).await;
    let message = call(&client, lattice, r#"{"lattice":"z","replicas":5}"#)
        .await
        .error(403);
    assert!(message.contains("at most 3"), "{message}");
    let message = call(&client, lattice, r#"{"lattice":"z","replicas":3}"#)
        .await
        .error(409);
    assert!(message.contains("not clustered"), "{message}");
    assert_eq!(
        stream_names(&client).await,
        vec!["KV_CONFIGDATA_y", "KV_LATTICEDATA_y"]
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Signed host requests: not from the future, only for the key's lattices
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signed_host_requests_cannot_come_from_the_future_or_leave_their_lattices() {
    let server = NatsServer::start();
    let client = test_client(&server.url()).await;
    let tenant_a = nkeys::KeyPair::new_server();
    let anywhere = nkeys::KeyPair::new_server();
    let auth = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![
            format!("{}=tenant-a,tenant-a-*", tenant_a.public_key()),
            anywhere.public_key(),
        ],
        host_signature_max_age: Some(300),
        ..Default::default()
    })
    .expect("host auth");
    let service = Options::new().host_auth(auth).spawn(&server.url()).await;
    let signed = |key: &nkeys::KeyPair, lattice: &str, issued_at: i64| {
        let body = json!({"lattice": lattice, "host_id": key.public_key(), "issued_at": issued_at})
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            sign(key, body.as_bytes()).expect("sign").as_str(),
        );
        (headers, body)
    };
    let subject = |l: &str| format!("wasmcloud.provision.host.{l}");

    // From the future: more than the clock skew ahead is refused, well within max age.
    for ahead in [45, 120, 299] {
        let (headers, body) = signed(&tenant_a, "tenant-a", now_secs() + ahead);
        let message = call_with(&client, &subject("tenant-a"), headers, &body)
            .await
            .error(403);
        assert!(message.contains("ahead"), "{ahead}: {message}");
    }
    assert_eq!(stream_names(&client).await, Vec::<String>::new());
    let (headers, body) = signed(&tenant_a, "tenant-a", now_secs() + 5);
    let reply = call_with(&client, &subject("tenant-a"), headers, &body).await;
    assert_eq!(
        reply.error_code, None,
        "a few seconds of skew are fine: {reply:?}"
    );

    // Bound to tenant-a*: another lattice is refused, on both subjects.
    let (headers, body) = signed(&tenant_a, "tenant-b", now_secs());
    let message = call_with(&client, &subject("tenant-b"), headers.clone(), &body)
        .await
        .error(403);
    assert!(
        message.contains("not trusted for lattice `tenant-b`"),
        "{message}"
    );
    call_with(&client, "wasmcloud.provision.host", headers, &body)
        .await
        .error(403);
    let reply = request_bootstrap(&client, &tenant_a, "tenant-a-2", None).await;
    assert!(reply.is_ok(), "{reply:?}");
    // An unbound trusted key may bootstrap any lattice.
    request_bootstrap(&client, &anywhere, "tenant-b", None)
        .await
        .expect("an unbound key is served");
    assert_eq!(
        stream_names(&client).await,
        vec![
            "KV_CONFIGDATA_tenant-a",
            "KV_CONFIGDATA_tenant-a-2",
            "KV_CONFIGDATA_tenant-b",
            "KV_LATTICEDATA_tenant-a",
            "KV_LATTICEDATA_tenant-a-2",
            "KV_LATTICEDATA_tenant-b"
        ]
    );
    service.stop().await;
}
