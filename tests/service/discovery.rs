//! `$SRV` discovery validates against the official micro schemas.

use super::*;

// ---------------------------------------------------------------------------
// 9. Micro discovery
// ---------------------------------------------------------------------------

/// The official micro schemas, read at test time from the shared spec folder.
fn micro_schema_dir() -> PathBuf {
    manifest_dir().join("../shared/spec/micro-schemas")
}

/// Checks what the official schema requires, by hand: used on every reply (and the only
/// check when the schema folder is absent).
fn check_micro_reply(kind: &str, reply: &Value) {
    let name_re = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let obj = reply
        .as_object()
        .unwrap_or_else(|| panic!("{kind}: not an object"));
    assert_eq!(
        reply["type"],
        format!("io.nats.micro.v1.{kind}_response"),
        "{kind}: type"
    );
    assert!(reply["name"].as_str().is_some_and(name_re), "{kind}: name");
    assert!(
        reply["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{kind}: id"
    );
    let version = reply["version"].as_str().unwrap_or_default();
    let core: Vec<&str> = version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .collect();
    assert!(
        core.len() == 3
            && core.iter().all(|p| !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))),
        "{kind}: version {version:?} is not SemVer"
    );
    let string_map = |v: Option<&Value>, what: &str| match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => assert!(
            m.values().all(Value::is_string),
            "{kind}: {what} values must be strings"
        ),
        Some(other) => panic!("{kind}: {what} is {other}"),
    };
    string_map(obj.get("metadata"), "metadata");
    match kind {
        "ping" => {}
        "info" => {
            assert!(reply["description"].is_string(), "info: description");
            let endpoints = reply["endpoints"].as_array().expect("info: endpoints");
            for e in endpoints {
                assert!(e["name"].as_str().is_some_and(name_re), "endpoint name {e}");
                assert!(
                    e["subject"].as_str().is_some_and(|s| !s.is_empty()),
                    "endpoint subject {e}"
                );
                string_map(e.get("metadata"), "endpoint metadata");
                if let Some(q) = e.get("queue_group") {
                    assert!(q.is_string(), "queue_group {e}");
                }
            }
        }
        "stats" => {
            let started = reply["started"].as_str().expect("stats: started");
            // RFC 3339: date, `T`, time, and a zone.
            assert!(
                started.len() >= 20
                    && started.as_bytes()[4] == b'-'
                    && started.as_bytes()[10] == b'T'
                    && (started.ends_with('Z') || started[19..].contains(['+', '-'])),
                "stats: started {started:?} is not RFC 3339"
            );
            let endpoints = reply["endpoints"].as_array().expect("stats: endpoints");
            for e in endpoints {
                assert!(e["name"].as_str().is_some_and(name_re), "endpoint name {e}");
                assert!(e["subject"].as_str().is_some_and(|s| !s.is_empty()));
                for n in [
                    "num_requests",
                    "num_errors",
                    "processing_time",
                    "average_processing_time",
                ] {
                    assert!(e[n].is_i64() || e[n].is_u64(), "stats: {n} in {e}");
                }
                assert!(e["last_error"].is_string(), "stats: last_error in {e}");
            }
        }
        other => panic!("unknown reply kind {other}"),
    }
}

/// Validates a discovery reply: the official schema when the folder is there, and the
/// hand-written required-field check always.
fn validate_micro_reply(kind: &str, reply: &Value) {
    let path = micro_schema_dir().join(format!("{kind}_response.json"));
    if micro_schema_dir().is_dir() {
        assert_valid(&compile_schema(&path), reply, &format!("$SRV.{kind}"));
    } else {
        eprintln!(
            "{} is absent: checking the required fields by hand only",
            micro_schema_dir().display()
        );
    }
    check_micro_reply(kind, reply);
}

#[test]
fn micro_reply_check_catches_bad_replies() {
    // The hand-written fallback is real: it refuses what the schemas refuse.
    let good_info = json!({
        "type": "io.nats.micro.v1.info_response", "name": "svc", "id": "abc",
        "version": "0.1.0", "description": "",
        "endpoints": [{"name": "lattice", "subject": "a.b", "metadata": {"k": "v"}}]
    });
    check_micro_reply("info", &good_info);
    let broken = [
        (
            "endpoints",
            json!([{"name": "wasmcloud-provision-lattice-*", "subject": "a"}]),
        ),
        ("version", json!("1.0")),
        ("name", json!("a.b")),
        ("type", json!("io.nats.micro.v1.ping_response")),
        ("metadata", json!({"k": 1})),
    ];
    for (field, value) in broken {
        let mut bad = good_info.clone();
        bad[field] = value;
        let caught = std::panic::catch_unwind(|| check_micro_reply("info", &bad)).is_err();
        assert!(caught, "a bad {field} passed the fallback check");
        if micro_schema_dir().is_dir() {
            let schema = compile_schema(&micro_schema_dir().join("info_response.json"));
            assert!(
                !schema.is_valid(&bad),
                "a bad {field} passed the official schema"
            );
        }
    }
    let mut stats = json!({
        "type": "io.nats.micro.v1.stats_response", "name": "svc", "id": "abc",
        "version": "0.1.0", "started": "2024-01-01T00:00:00.123456789Z",
        "endpoints": [{"name": "e", "subject": "s", "num_requests": 1, "num_errors": 0,
            "last_error": "", "processing_time": 5, "average_processing_time": 5}]
    });
    check_micro_reply("stats", &stats);
    stats["endpoints"][0]
        .as_object_mut()
        .expect("object")
        .remove("last_error");
    assert!(std::panic::catch_unwind(|| check_micro_reply("stats", &stats)).is_err());
}

#[tokio::test]
async fn micro_discovery_validates_against_the_official_schemas() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;

    // Some traffic first, so that STATS has figures.
    call(&nc, "wasmcloud.provision.lattice", "stats").await.ok();
    call(&nc, "wasmcloud.provision.lattice", "stats").await.ok();
    call(&nc, "wasmcloud.provision.lattice", "a.b")
        .await
        .error(400);
    call(&nc, "wasmcloud.provision.lattice", "[]")
        .await
        .error(400);
    call(&nc, "wasmcloud.provision.wadm", "nope")
        .await
        .error(400);
    call(
        &nc,
        "wasmcloud.provision.status",
        r#"{"lattice":"stats","wadm":true}"#,
    )
    .await
    .ok();

    let name = "wasmcloud-provisioner";
    let mut id = String::new();
    for kind in ["ping", "info", "stats"] {
        let verb = kind.to_uppercase();
        let mut subjects = vec![format!("$SRV.{verb}"), format!("$SRV.{verb}.{name}")];
        if !id.is_empty() {
            subjects.push(format!("$SRV.{verb}.{name}.{id}"));
        }
        for subject in subjects {
            let replies = discovery(&nc, &subject).await;
            assert_eq!(replies.len(), 1, "{subject}: one instance runs");
            let reply = &replies[0];
            validate_micro_reply(kind, reply);
            assert_eq!(reply["name"], name, "{subject}");
            assert_eq!(reply["version"], env!("CARGO_PKG_VERSION"));
            if id.is_empty() {
                id = reply["id"].as_str().expect("id").to_string();
            }
            assert_eq!(reply["id"], id.as_str(), "{subject}");
        }
    }

    let info = &discovery(&nc, &format!("$SRV.INFO.{name}")).await[0];
    let metadata = info["metadata"].as_object().expect("service metadata");
    assert_eq!(
        metadata.get("subjects"),
        Some(&json!("wasmcloud.provision.>"))
    );
    assert_eq!(metadata.get("replicas"), Some(&json!("1")));
    assert!(
        info["description"]
            .as_str()
            .is_some_and(|d| d.contains("least privilege")),
        "{info}"
    );
    let endpoints = info["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), ENDPOINTS.len());
    let mut names = BTreeSet::new();
    for e in endpoints {
        let n = e["name"].as_str().expect("explicit name");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{n}"
        );
        assert!(names.insert(n.to_string()), "duplicate endpoint name {n}");
        assert_eq!(e["queue_group"], "q", "{e}");
        for key in ["request_schema", "response_schema"] {
            let file = e["metadata"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{n}: metadata.{key} missing: {e}"));
            assert!(
                manifest_dir().join(file).is_file(),
                "{n}: metadata.{key} names {file}, which does not exist"
            );
        }
        let spec = ENDPOINTS
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("unknown endpoint {n}"));
        assert_eq!(e["subject"], spec.subject);
    }
    let registered: BTreeSet<String> = ENDPOINTS.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, registered);
    for required in ["lattice", "lattice_scoped", "wadm", "status"] {
        assert!(names.contains(required), "{required} is not registered");
    }

    let stats = &discovery(&nc, &format!("$SRV.STATS.{name}")).await[0];
    let by_name = |n: &str| {
        stats["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing from STATS"))
            .clone()
    };
    let lattice = by_name("lattice");
    assert_eq!(lattice["num_requests"], 4, "{lattice}");
    assert_eq!(lattice["data"]["resources"]["created"], 2, "{lattice}");
    assert_eq!(lattice["data"]["resources"]["exists"], 2, "{lattice}");
    assert_eq!(lattice["data"]["errors"]["400"], 2, "{lattice}");
    assert!(
        lattice["data"]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("400:")),
        "{lattice}"
    );
    let wadm = by_name("wadm");
    assert_eq!(wadm["data"]["errors"]["400"], 1, "{wadm}");
    let status = by_name("status");
    assert_eq!(status["data"]["resources"]["exists"], 2, "{status}");
    assert_eq!(status["data"]["resources"]["would_create"], 8, "{status}");
    assert!(
        status["data"]["errors"]
            .as_object()
            .is_some_and(|e| e.is_empty()),
        "{status}"
    );
    service.shutdown().await.expect("serve() returns Ok");
}
