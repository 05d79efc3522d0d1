//! The wasmCloud production platform (the `wasmcloud-platform` Helm chart), proven against
//! real servers with users that carry exactly the generated templates:
//!
//! - the Kubernetes operator (wasmcloud-operator 0.4.x, wadm-operator 0.5.1) binds the
//!   stream the provisioner created and its own consumer, exactly as it does it
//!   (`get_or_create_stream` / `get_or_create_consumer`), receives wadm's events, and can
//!   change no stream;
//! - a host behind a leaf node (the operator's sidecar: JetStream domain `leaf`, no
//!   credentials for the host, the remote authenticated on the hub in domain `default`)
//!   does all its work through the leaf with the `--via-leaf` template — bootstrap, KV
//!   bind, watches through a burst of several MB, put/get/purge, events, control requests
//!   answered on the leaf — and cannot create, change, delete or purge a stream. Refusals
//!   through a leaf are silent (the leaf drops what its user may not send), so the test
//!   checks that the work succeeds and, for refusals, what an admin sees. The template
//!   without `--via-leaf` is shown to lose control replies and stall a watch;
//! - the chart's one secret for the leaf links and the operator: both workloads with the
//!   union of the two templates (`--role host --role operator`);
//! - the operator's stream on the command line (`apply`/`plan --operator`, drift) and as
//!   `serve`'s default (`WASMCLOUD_PROVISIONER_OPERATOR`).

#[path = "../common/mod.rs"]
mod common;

mod behind_leaf;
mod commands;
mod operator;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, Context};
use futures::StreamExt;
use serde_json::Value;

use common::cli::Served;
use common::leaf::{self, LeafOptions, LeafServer};
use common::provisioner::Options;
use common::reply::call;
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::catalog::{self, Operator};
use wasmcloud_provisioner::client::request_bootstrap;
use wasmcloud_provisioner::permissions::{self, PlatformOptions, Role, TemplateOptions};
use wasmcloud_provisioner::subjects::SERVICE_NAME;

const PASSWORD: &str = "platform";
const ACCOUNT: &str = "WASMCLOUD";
/// How long a refused JetStream call may wait for the answer that never comes.
const REFUSED_TIMEOUT: Duration = Duration::from_secs(2);
/// How long JetStream work that must succeed may take (generous: a loaded CI runner).
const WORK_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The test bed
// ---------------------------------------------------------------------------

fn options(lattices: &[&str], js_domain: Option<&str>) -> TemplateOptions {
    TemplateOptions {
        lattices: lattices.iter().map(|l| l.to_string()).collect(),
        js_domain: js_domain.map(str::to_string),
    }
}

/// A role's `conf` block, as `wasmcloud-provisioner permissions` prints it.
fn conf(role: Role, options: &TemplateOptions, platform: PlatformOptions) -> String {
    permissions::template_for(role, options, platform)
        .expect("template")
        .to_conf()
}

/// One account with these users (an empty block: no restrictions).
fn accounts(users: &[(&str, String)]) -> String {
    let mut c = format!("accounts {{\n  {ACCOUNT} {{\n    jetstream: enabled\n    users: [\n");
    for (name, block) in users {
        c.push_str(&format!(
            "      {{\n        user: {name:?}\n        password: {PASSWORD:?}\n{block}      }}\n"
        ));
    }
    c.push_str("    ]\n  }\n}\n");
    c
}

async fn connect_as(url: &str, user: &str) -> async_nats::Client {
    common::connect_as_user(url, user, PASSWORD, Duration::from_secs(3)).await
}

fn js_of(client: &async_nats::Client, domain: Option<&str>) -> Context {
    let mut js = match domain {
        Some(d) => jetstream::with_domain(client.clone(), d),
        None => jetstream::new(client.clone()),
    };
    js.set_timeout(WORK_TIMEOUT);
    js
}

/// The same context for calls that must be refused: they time out sooner.
fn refusing(js: &Context) -> Context {
    let mut js = js.clone();
    js.set_timeout(REFUSED_TIMEOUT);
    js
}

/// A provisioning reply matches `schemas/provision_response.json`.
fn assert_reply_schema(body: &Value) {
    let validator = common::schema::project_schema("provision_response.json");
    assert!(
        validator.is_valid(body),
        "not as schemas/provision_response.json: {body}"
    );
}

/// `name → action` of a provisioning reply.
fn actions_by_name(body: &Value) -> Vec<(String, String)> {
    body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r["action"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// What the operator of each version names its stream, consumers and descriptions
/// (`shared/spec/resources.md` §6, read from wasmcloud-operator v0.4.2 / v0.5.1).
struct OperatorNames {
    version: Operator,
    stream: &'static str,
    consumer_prefix: &'static str,
    description: &'static str,
    consumer_description: &'static str,
}

const OPERATORS: [OperatorNames; 2] = [
    OperatorNames {
        version: Operator::V0_4,
        stream: "wasmcloud_operator_events",
        consumer_prefix: "wasmcloud_operator_service",
        description: "Stream for wadm events consumed by the wasmCloud K8s Operator",
        consumer_description: "Consumer created by the wasmCloud K8s Operator to watch for new service endpoints in wadm manifests",
    },
    OperatorNames {
        version: Operator::V0_5,
        stream: "wadm_operator_events",
        consumer_prefix: "wadm_operator_service",
        description: "Stream for wadm events consumed by the wadm K8s Operator",
        consumer_description: "Consumer created by the wadm K8s Operator to watch for new service endpoints in wadm manifests",
    },
];

impl OperatorNames {
    /// The stream config the operator passes to `get_or_create_stream`.
    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.to_string(),
            description: Some(self.description.to_string()),
            max_age: Duration::from_secs(70),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            allow_rollup: false,
            num_replicas: 1,
            mirror: Some(stream::Source {
                name: "wadm_events".to_string(),
                subject_transforms: vec![stream::SubjectTransform {
                    source: "wadm.evt.*.>".to_string(),
                    destination: format!("{}.{{{{wildcard(1)}}}}.>", self.stream),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn consumer_name(&self, lattice: &str) -> String {
        format!("{}-{lattice}", self.consumer_prefix)
    }

    /// The consumer config the operator passes to `get_or_create_consumer`.
    fn consumer_config(&self, lattice: &str) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.consumer_name(lattice)),
            description: Some(self.consumer_description.to_string()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            max_deliver: 3,
            deliver_policy: consumer::DeliverPolicy::All,
            filter_subject: format!("{}.{lattice}.>", self.stream),
            ..Default::default()
        }
    }

    fn user(&self) -> String {
        format!("operator-{}", self.version.as_str().replace('.', ""))
    }
}
