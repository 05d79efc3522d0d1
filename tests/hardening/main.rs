//! Least privilege under attack, against a real nats-server (issue 10): reserved lattice
//! names refused at every entry point, refusals that reveal neither other tenants nor the
//! operator's policy, the operator's replicas as a floor, and signed host requests that
//! cannot come from the future or bootstrap a lattice their key is not bound to.

#[path = "../common/mod.rs"]
mod common;

mod requests;
mod reserved;
mod shared_account;

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use serde_json::{json, Value};

use common::provisioner::Options;
use common::reply::{call, call_with};
use common::{now_secs, NatsServer, ServerOptions};
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::endpoints::{self, host};
use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
use wasmcloud_provisioner::policy::{HostAuth, HostAuthArgs, LatticePolicy};
use wasmcloud_provisioner::service::SERVICE_NAME;
use wasmcloud_provisioner::settings::Settings;

/// Failsafe for one reply; never a timing assertion.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Every stream of the account.
async fn stream_names(client: &async_nats::Client) -> Vec<String> {
    let m = client
        .request("$JS.API.STREAM.NAMES", "{}".into())
        .await
        .expect("STREAM.NAMES");
    let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
    let mut names: Vec<String> = v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn test_client(url: &str) -> async_nats::Client {
    common::connect_with(
        url,
        async_nats::ConnectOptions::new().request_timeout(Some(REPLY_TIMEOUT)),
    )
    .await
}

fn reserve(tokens: &[&str]) -> LatticePolicy {
    LatticePolicy::new(vec![], None)
        .expect("policy")
        .with_reserved(tokens.iter().map(|t| t.to_string()).collect())
        .expect("reserved names")
}

/// Runs the binary with `env` on top of an environment of its own; returns (exit code,
/// stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = common::provisioner_command();
    c.args(args).envs(env.iter().copied());
    common::cli::parts(&c.output().expect("run the binary"))
}
