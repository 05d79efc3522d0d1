//! Least privilege under attack, against a real nats-server (issue 10): reserved lattice
//! names refused at every entry point, refusals that reveal neither other tenants nor the
//! operator's policy, the operator's replicas as a floor, and signed host requests that
//! cannot come from the future or bootstrap a lattice their key is not bound to.

#[path = "../common/mod.rs"]
mod common;

mod requests;
mod reserved;
mod shared_account;

use std::time::Duration;

use async_nats::HeaderMap;
use serde_json::{json, Value};

use common::cli::Served;
use common::provisioner::Options;
use common::reply::{call, call_with, client as test_client};
use common::{now_secs, stream_names, NatsServer, ServerOptions};
use wasmcloud_provisioner::client::request_bootstrap;
use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::host_auth::{sign, HostAuth, HostAuthArgs};
use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
use wasmcloud_provisioner::policy::LatticePolicy;
use wasmcloud_provisioner::settings::Settings;
use wasmcloud_provisioner::subjects::SIGNATURE_HEADER;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

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
