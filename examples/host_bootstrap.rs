//! A least-privilege wasmCloud host's first start, as its start-up wrapper would do it:
//!
//! 1. connect with the host's user (permissions from `wasmcloud-provisioner permissions
//!    --role host --lattice <l>`: it may not create, change or delete any stream);
//! 2. send the bootstrap request, signed with the host's key, on
//!    `wasmcloud.provision.host.<lattice>`: the provisioner ensures the lattice's buckets and
//!    answers their names and the JetStream domain;
//! 3. bind and use the buckets exactly as the host does (`get_key_value`, `watch_all`,
//!    `put`, `get`, `purge`), and see that creating a stream is refused.
//!
//! With `examples/nats-server.conf` and a running provisioner:
//!
//! ```sh
//! NATS_USER=host NATS_PASSWORD=$HOST_PASSWORD cargo run --example host_bootstrap
//! ```
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`), `NATS_USER` / `NATS_PASSWORD`,
//! `WASMCLOUD_LATTICE` (default `default`), `WASMCLOUD_HOST_SEED` (the host's server nkey
//! seed, `SN…`; a fresh key is made when absent).

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;

use wasmcloud_provisioner::client::request_bootstrap;

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let url = env("NATS_URL", "nats://127.0.0.1:4222");
    let lattice = env("WASMCLOUD_LATTICE", "default");
    let key = match std::env::var("WASMCLOUD_HOST_SEED") {
        Ok(seed) => nkeys::KeyPair::from_seed(seed.trim())?,
        Err(_) => nkeys::KeyPair::new_server(),
    };
    let mut options = async_nats::ConnectOptions::new().name("host-bootstrap-example");
    if let (Ok(user), Ok(password)) = (std::env::var("NATS_USER"), std::env::var("NATS_PASSWORD")) {
        options = options.user_and_password(user, password);
    }
    let client = options.connect(url.as_str()).await?;

    // 2. The bootstrap: one request; the reply says what to bind.
    let reply = request_bootstrap(&client, &key, &lattice, Some("1.9.2")).await?;
    println!(
        "host {} bootstrapped lattice {} (signed: {}, JetStream domain: {})",
        reply.host_id,
        reply.lattice,
        reply.signed,
        reply.js_domain.as_deref().unwrap_or("none")
    );
    for r in &reply.resources {
        println!(
            "  {:<24} {}",
            r["name"].as_str().unwrap_or("?"),
            r["action"]
        );
    }

    // 3. Bind and use the buckets as the host does.
    let js = match &reply.js_domain {
        Some(domain) => jetstream::with_domain(client.clone(), domain),
        None => jetstream::new(client.clone()),
    };
    let bucket = |key: &str| {
        reply
            .buckets
            .get(key)
            .cloned()
            .ok_or_else(|| format!("the reply names no `{key}` bucket"))
    };
    let config = js.get_key_value(bucket("configdata")?).await?;
    let data = js.get_key_value(bucket("latticedata")?).await?;
    let mut watch = config.watch_all().await?;
    config
        .put("example-config", r#"{"greeting":"hello"}"#.into())
        .await?;
    if let Ok(Some(Ok(entry))) = tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
        println!("watch saw {} = {:?}", entry.key, entry.value);
    }
    data.put("example-host", key.public_key().into()).await?;
    println!(
        "get example-host = {:?}",
        data.get("example-host").await?.map(|v| v.len())
    );
    data.purge("example-host").await?;
    config.purge("example-config").await?;

    // What the host may no longer do: create (or change, or delete) a stream.
    let mut limited = js.clone();
    limited.set_timeout(Duration::from_secs(2));
    match limited
        .create_stream(jetstream::stream::Config {
            name: "example_not_allowed".into(),
            subjects: vec!["example.not.allowed".into()],
            ..Default::default()
        })
        .await
    {
        Ok(_) => println!("note: this user may create streams; it is not least-privilege"),
        Err(e) => println!("creating a stream is refused, as it should be: {e}"),
    }
    client.flush().await?;
    Ok(())
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}
