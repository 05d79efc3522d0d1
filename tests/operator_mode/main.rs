//! The operator's experience, against real nats-servers and the real binary:
//! - operator mode: JWTs minted with `wasmcloud_provisioner::creds` (operator, accounts,
//!   and users from the `creds` command), a `resolver: MEMORY` server; the host's minted
//!   creds do the host's work and are refused stream create and delete;
//! - observability: `$SRV.STATS` data, JSON logs carrying the request span, and audit
//!   events (schema-valid, naming the requester through `Nats-Request-Info`);
//! - connecting like natscli: a selected context with TLS (client certificate) and a
//!   token, flags winning over it, and errors that say what to check;
//! - the config file: the documented example passes `config check`; `--help`,
//!   `--version`, exit codes; the `nsc` rendering of a template.

#[path = "../common/mod.rs"]
mod common;

mod connecting;
mod observability;
mod operator;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use nkeys::KeyPair;
use serde_json::{json, Value};

use common::actions;
use common::cli::{expect_code, lossy as text, output as run, Served};
use common::provisioner::wait_discoverable;
use common::provisioner_command_with_config_home as cli;
use common::reply::call;
use common::schema::{assert_valid, project_schema};
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
use wasmcloud_provisioner::{clock, creds};

/// Failsafe for waits on replies and events; never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// A reply: its `Nats-Service-Error-Code` and its JSON body.
async fn request_json(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
) -> (Option<String>, Value) {
    let reply = call(client, subject, body).await;
    (reply.error_code.map(|c| c.to_string()), reply.body)
}

/// The next audit event; its subject ends with its action.
async fn next_event(events: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an audit event arrives")
        .expect("subscription open");
    let event: Value = serde_json::from_slice(&message.payload).expect("event JSON");
    assert_eq!(
        message.subject.as_str(),
        format!(
            "wasmcloud.provision.events.{}",
            event["action"].as_str().unwrap_or("?")
        )
    );
    event
}

const PASSWORD: &str = "s3cret";
