//! JetStream's account limits against a real nats-server: a stream the account has no
//! room for, too many streams, a required or too large `max_bytes`. Each is answered
//! with an error that names the limit and what to change (507 for a limit that leaves no
//! room, 409 for a setting the account refuses), never the 500 of a bug, and every
//! resource in the error body is named, the failed ones too.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::provisioner::{Options, RunningService};
use common::reply::call;
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::settings::Settings;

const MIB: i64 = 1024 * 1024;

/// One account per limit; each user's name is its password.
const ACCOUNTS: &str = r#"
accounts {
  FULL: { jetstream: { max_file: 3MB, max_mem: 1MB }, users: [{ user: full, password: full }] }
  FEW: { jetstream: { max_file: 100MB, max_mem: 1MB, max_streams: 1 }, users: [{ user: few, password: few }] }
  REQ: { jetstream: { max_file: 100MB, max_mem: 1MB, max_bytes_required: true }, users: [{ user: req, password: req }] }
  PER: { jetstream: { max_file: 100MB, max_mem: 1MB, disk_max_stream_bytes: 2MB }, users: [{ user: per, password: per }] }
}
"#;

/// The service, connected as `user` (in that user's account), with `max_bytes` for every
/// resource; and a client of that user.
async fn serve_as(
    url: &str,
    user: &str,
    max_bytes: Option<i64>,
) -> (RunningService, async_nats::Client) {
    let mut settings = Settings::default();
    settings.all.max_bytes = max_bytes;
    settings.validate().expect("valid settings");
    let client = common::connect_with(
        url,
        async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
            .request_timeout(Some(Duration::from_secs(60))),
    )
    .await;
    let service = Options::new()
        .user(user, user)
        .settings(settings)
        .start(url, &client)
        .await;
    (service, client)
}

/// A lattice request that must fail: (error code, error message, body).
async fn lattice(client: &async_nats::Client, lattice: &str) -> (u16, String, Value) {
    let reply = call(client, "wasmcloud.provision.lattice", lattice.to_string()).await;
    let code = reply
        .error_code
        .unwrap_or_else(|| panic!("expected an error reply, got {}", reply.raw));
    (code, reply.message().to_string(), reply.body)
}

/// Every resource in the body is named; returns (name, action) pairs.
fn outcomes(body: &Value) -> Vec<(String, String)> {
    let list = body["resources"].as_array().expect("resources");
    list.iter()
        .map(|r| {
            let name = r["name"].as_str().expect("a name").to_string();
            let stream = r["stream"].as_str().expect("a stream");
            assert_eq!(stream, format!("KV_{name}"), "{r}");
            assert_eq!(r["kind"], "kv", "{r}");
            if r["action"] == "failed" {
                assert!(r["error"]["message"].is_string(), "{r}");
            }
            (name, r["action"].as_str().unwrap_or("?").to_string())
        })
        .collect()
}

fn both_failed(lattice: &str) -> Vec<(String, String)> {
    ["LATTICEDATA", "CONFIGDATA"]
        .iter()
        .map(|b| (format!("{b}_{lattice}"), "failed".to_string()))
        .collect()
}

/// Another stream in the account, holding `max_bytes` of its storage.
async fn fill(client: &async_nats::Client, max_bytes: Option<i64>) {
    let config = serde_json::json!({
        "name": "OTHER", "subjects": ["other.>"], "max_bytes": max_bytes.unwrap_or(-1)
    });
    let m = client
        .request(
            "$JS.API.STREAM.CREATE.OTHER",
            serde_json::to_vec(&config).unwrap().into(),
        )
        .await
        .expect("JetStream answers");
    let answer: Value = serde_json::from_slice(&m.payload).expect("JSON");
    assert!(answer.get("error").is_none(), "{answer}");
}

fn assert_mentions(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "no {word:?} in: {message}");
    }
    assert!(!message.contains("unexpected"), "{message}");
}

#[tokio::test]
async fn jetstream_limits_are_named_with_what_to_change() {
    let server = NatsServer::start_with(ServerOptions {
        extra_config: ACCOUNTS.into(),
        ..Default::default()
    });
    let url = server.url();

    // No room: 3 MB of file storage, 2 MiB of it reserved by another stream, and buckets
    // of 2 MiB each (10047, which nats-server answers with code 500). The other stream
    // comes first: nats-server 2.12.8 checks an account's limits against concurrent
    // creates without serializing them, so two buckets created at once may both fit.
    let (service, client) = serve_as(&url, "full", Some(2 * MIB)).await;
    fill(&client, Some(2 * MIB)).await;
    let (code, message, body) = lattice(&client, "a").await;
    assert_eq!(code, 507, "{body}");
    assert_mentions(
        &message,
        &["max_file", "--max-bytes", "JetStream error 10047"],
    );
    assert_eq!(outcomes(&body), both_failed("a"), "{body}");
    service.stop().await;

    // One stream allowed, and another stream has it (10027).
    let (service, client) = serve_as(&url, "few", None).await;
    fill(&client, None).await;
    let (code, message, body) = lattice(&client, "b").await;
    assert_eq!(code, 507, "{body}");
    assert_mentions(&message, &["max_streams", "JetStream error 10027"]);
    assert_eq!(outcomes(&body), both_failed("b"), "{body}");
    service.stop().await;

    // The account requires max_bytes: both are refused, and the reply says how to set it.
    let (service, client) = serve_as(&url, "req", None).await;
    let (code, message, body) = lattice(&client, "c").await;
    assert_eq!(code, 409, "{body}");
    assert_mentions(
        &message,
        &["max_bytes_required", "--max-bytes", "JetStream error 10113"],
    );
    assert_eq!(outcomes(&body), both_failed("c"), "{body}");
    service.stop().await;
    // With a size limit it works.
    let (service, client) = serve_as(&url, "req", Some(8 * MIB)).await;
    let m = client
        .request("wasmcloud.provision.lattice", "c".into())
        .await
        .expect("a reply");
    assert!(m.headers.is_none(), "{:?}", m.headers);
    service.stop().await;

    // Larger than the account allows for one stream (10122).
    let (service, client) = serve_as(&url, "per", Some(4 * MIB)).await;
    let (code, message, body) = lattice(&client, "d").await;
    assert_eq!(code, 409, "{body}");
    assert_mentions(
        &message,
        &[
            "disk_max_stream_bytes",
            "--max-bytes",
            "JetStream error 10122",
        ],
    );
    assert_eq!(outcomes(&body), both_failed("d"), "{body}");
    service.stop().await;
}
