//! Operator mode: the provisioner mints its own users in a tenant account and renews them.

use super::*;

/// Operator mode (memory resolver): operator, SYS, PROV (exporting the service) and
/// TENANT_A (importing it) minted here. The provisioner holds only a signing key of
/// TENANT_A, mints itself a user there, provisions into it, and mints a new user before
/// each one expires, without a failed request.
#[tokio::test]
async fn operator_mode_mints_its_users_and_renews_them_before_they_expire() {
    use nkeys::KeyPair;
    use wasmcloud_provisioner::{clock, creds};

    let dir = tempfile::tempdir().expect("temp dir");
    let now = clock::unix_now();
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let prov = KeyPair::new_account();
    let tenant = KeyPair::new_account();
    let tenant_signing = KeyPair::new_account();
    let unlimited = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = |key: &KeyPair, name: &str, extra: Value| {
        let mut nats = json!({"limits": unlimited, "type": "account", "version": 2});
        for (k, v) in extra.as_object().expect("an object") {
            nats[k] = v.clone();
        }
        creds::encode_jwt(
            json!({"sub": key.public_key(), "name": name, "nats": nats}),
            &operator,
            now,
        )
        .expect("account JWT")
    };
    let subject = "wasmcloud.provision.>";
    let jwts = [
        // No JetStream in the system account.
        (
            &system,
            account_jwt(
                &system,
                "SYS",
                json!({"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                  "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}}),
            ),
        ),
        (
            &prov,
            account_jwt(
                &prov,
                "PROV",
                json!({"exports": [{"name": "provisioner", "subject": subject, "type": "service"}]}),
            ),
        ),
        (
            &tenant,
            account_jwt(
                &tenant,
                "TENANT_A",
                json!({
                    "imports": [{"name": "provisioner", "subject": subject,
                                 "account": prov.public_key(), "type": "service"}],
                    "signing_keys": [tenant_signing.public_key()],
                }),
            ),
        ),
    ];
    let operator_jwt = creds::encode_jwt(
        json!({"sub": operator.public_key(), "name": "test-operator",
               "nats": {"system_account": system.public_key(), "type": "operator", "version": 2}}),
        &operator,
        now,
    )
    .expect("operator JWT");
    let operator_file = dir.path().join("operator.jwt");
    std::fs::write(&operator_file, operator_jwt).expect("write");
    let mut config = format!(
        "operator: {:?}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n",
        operator_file.to_string_lossy(),
        system.public_key()
    );
    for (key, jwt) in &jwts {
        config.push_str(&format!("  {}: {:?}\n", key.public_key(), jwt));
    }
    config.push_str("}\n");
    let server = common::NatsServer::start_with(common::ServerOptions {
        extra_config: config,
        ..Default::default()
    });

    // Users with every permission: the provisioner's own in PROV, a host and an admin in A.
    let user = |account: &KeyPair| {
        let signer = creds::AccountSigner::new(
            KeyPair::from_seed(&account.seed().expect("seed")).expect("key"),
            None,
        )
        .expect("signer");
        let u = signer
            .mint_user("test", &Default::default(), None)
            .expect("a user");
        (u.jwt, u.seed)
    };
    let connect = |(jwt, seed): (String, String)| {
        let url = server.url();
        async move {
            common::connect_with(
                &url,
                async_nats::ConnectOptions::with_credentials(&creds::format_creds(&jwt, &seed))
                    .expect("credentials"),
            )
            .await
        }
    };
    let (prov_jwt, prov_seed) = user(&prov);
    let a_host = connect(user(&tenant)).await;
    let a_admin = connect(user(&tenant)).await;
    let prov_admin = connect((prov_jwt.clone(), prov_seed.clone())).await;

    let seed_file = dir.path().join("tenant-a-signing.nk");
    std::fs::write(&seed_file, tenant_signing.seed().expect("seed")).expect("write");
    let service = Options::new()
        .auth(wasmcloud_provisioner::config::Auth::JwtAndSeed {
            jwt: prov_jwt,
            seed: prov_seed,
        })
        .accounts(BTreeMap::from([(
            tenant.public_key(),
            FileAccount {
                signing_key: Some(seed_file.clone()),
                user_expiry: Some("4s".into()),
                ..Default::default()
            },
        )]))
        // Outcomes, not speed: on a loaded 2-core box (load 14) the first create in the
        // new tenant account took longer than serve's 5 s and came back as a 503.
        .js_timeout(Duration::from_secs(15))
        .start(&server.url(), &prov_admin)
        .await;

    let (code, body) = request(&a_host, "a1", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert_eq!(streams(&a_admin).await, lattice_streams("a1"));
    assert!(streams(&prov_admin).await.is_empty());
    let first = provisioner_user(&server, &tenant.public_key());
    assert!(first.starts_with('U'), "{first}");

    // Past four expiries, under load: three requesters ask for the existing lattice and
    // one creates a new lattice each round (a create always goes to JetStream, never to
    // the cache), all the time across the renewals. Every request is answered, by users
    // minted one after another.
    let until = Instant::now() + Duration::from_secs(9);
    let mut requesters = tokio::task::JoinSet::new();
    for r in 0..4 {
        let client = a_host.clone();
        requesters.spawn(async move {
            let mut answered = 0;
            while Instant::now() < until {
                let (lattice, expected) = if r == 0 {
                    (format!("c{answered}"), ["created", "created"])
                } else {
                    ("a1".to_string(), ["exists", "exists"])
                };
                let (code, body) = request(&client, &lattice, None).await;
                assert_eq!(code, 200, "requester {r}, {lattice}: {body}");
                assert_eq!(common::actions(&body), expected, "{lattice}: {body}");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answered
        });
    }
    let mut users = vec![first];
    while Instant::now() < until {
        let now = provisioner_user(&server, &tenant.public_key());
        if users.last() != Some(&now) {
            users.push(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(answered) = requesters.join_next().await {
        assert!(
            answered.expect("a requester failed") > 0,
            "a requester got no answer"
        );
    }
    // 4 s users (3 to 4 s of real validity) are renewed 1.5 to 2 s before they expire:
    // two renewals in 9 s even if each connect takes a second.
    assert!(users.len() >= 3, "renewed too rarely: {users:?}");
    assert!(
        streams(&a_admin).await.len() > 2,
        "the creator created nothing"
    );

    // A renewal that fails (the signing key file is gone): the current user still serves
    // until it nearly expires; then requests get a 503 naming the cause at once (they do
    // not hang on the connection the server closes), and once the key is back a request
    // opens the account again and finds its lattice: nothing recreated.
    let moved = dir.path().join("moved-away.nk");
    std::fs::rename(&seed_file, &moved).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(8);
    let refused = loop {
        assert!(
            Instant::now() < deadline,
            "requests still served 8 s after the key left"
        );
        let asked = Instant::now();
        let (code, body) = request(&a_host, "a1", None).await;
        if code == 200 {
            assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a slow refusal: {body}"
        );
        break (code, body);
    };
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert!(
        refused
            .1
            .to_string()
            .contains("cannot read the account seed file"),
        "{}",
        refused.1
    );
    std::fs::rename(&moved, &seed_file).expect("rename back");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = request(&a_host, "a1", None).await;
        if code == 200 {
            assert_eq!(common::actions(&body), ["exists", "exists"], "{body}");
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(Instant::now() < deadline, "not served again: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.stop().await;
}

/// The user of the provisioner's newest connection in an account (`/connz`).
fn provisioner_user(server: &common::NatsServer, account: &str) -> String {
    let (_, body) = server
        .http_get(&format!(
            "/connz?acc={account}&auth=true&sort=start&limit=1000"
        ))
        .expect("/connz answers");
    let connz: Value = serde_json::from_str(&body).expect("JSON");
    connz["connections"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .filter(|c| c["name"] == SERVICE_NAME)
                .filter_map(|c| c["authorized_user"].as_str())
                .next_back()
                .map(str::to_string)
        })
        .unwrap_or_default()
}
