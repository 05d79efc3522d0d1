//! A least-privilege wadm's first start, as its start-up wrapper would do it:
//!
//! 1. connect with wadm's user (permissions from `wasmcloud-provisioner permissions --role
//!    wadm`: it may not create, change or delete any stream);
//! 2. ask the provisioner for wadm's buckets and streams on `wasmcloud.provision.wadm`;
//! 3. bind every one of them, create the per-lattice durable consumers wadm creates
//!    (`wadm_commands-<l>`, `wadm_event_consumer-<l>`), send a command and read it back.
//!
//! With `examples/nats-server.conf` and a running provisioner:
//!
//! ```sh
//! NATS_USER=wadm NATS_PASSWORD=$WADM_PASSWORD cargo run --example wadm_bootstrap
//! ```
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`), `NATS_USER` / `NATS_PASSWORD`,
//! `WASMCLOUD_LATTICE` (default `default`), `WASMCLOUD_JS_DOMAIN` (none by default).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use wasmcloud_provisioner::catalog::{self, Kind, Scope};

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let url = env("NATS_URL", "nats://127.0.0.1:4222");
    let lattice = env("WASMCLOUD_LATTICE", "default");
    let mut options = async_nats::ConnectOptions::new().name("wadm-bootstrap-example");
    if let (Ok(user), Ok(password)) = (std::env::var("NATS_USER"), std::env::var("NATS_PASSWORD")) {
        options = options.user_and_password(user, password);
    }
    let client = options.connect(url.as_str()).await?;

    // 2. One request for everything wadm needs.
    let reply = client
        .request("wasmcloud.provision.wadm", "".into())
        .await?;
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR_CODE))
        .map(|v| v.to_string());
    let body: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    if let Some(code) = code {
        return Err(format!(
            "the provisioner refused ({code}): {}",
            body["error"]["message"]
        )
        .into());
    }
    for r in body["resources"].as_array().into_iter().flatten() {
        println!(
            "  {:<24} {}",
            r["name"].as_str().unwrap_or("?"),
            r["action"]
        );
    }

    // 3. Bind everything, as wadm does at start.
    let js = match std::env::var("WASMCLOUD_JS_DOMAIN") {
        Ok(domain) if !domain.is_empty() => jetstream::with_domain(client.clone(), domain),
        _ => jetstream::new(client.clone()),
    };
    for row in catalog::rows(Scope::Wadm) {
        let name = row.name_for("");
        match row.kind() {
            Kind::Kv => drop(js.get_key_value(&name).await?),
            Kind::Stream => drop(js.get_stream(&name).await?),
        }
        println!("bound {name}");
    }
    let commands: consumer::PullConsumer = js
        .get_stream("wadm_commands")
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some(format!("wadm_commands-{lattice}")),
            filter_subject: format!("wadm.cmd.{lattice}"),
            ..Default::default()
        })
        .await?;
    let _events: consumer::PullConsumer = js
        .get_stream("wadm_event_consumer")
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some(format!("wadm_event_consumer-{lattice}")),
            filter_subject: format!("wadm_event_consumer.evt.{lattice}.>"),
            ..Default::default()
        })
        .await?;
    js.publish(format!("wadm.cmd.{lattice}"), r#"{"example":true}"#.into())
        .await?
        .await?;
    let mut batch = commands
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await?;
    if let Some(message) = batch.next().await {
        let message = message?;
        println!("received command on {}", message.subject);
        message.ack().await?;
    }
    client.flush().await?;
    Ok(())
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}
