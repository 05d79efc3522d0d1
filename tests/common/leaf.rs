//! A leaf node in front of a hub, as the wasmCloud Kubernetes operator runs one beside each
//! host: its own JetStream domain, no authentication for local clients, and one remote
//! connection to the hub that authenticates as a user of the hub.
//!
//! ```ignore
//! let leaf_port = common::free_port();
//! let hub = common::NatsServer::start_with(ServerOptions {
//!     js_domain: Some("default".into()),
//!     extra_config: format!("{}\n{accounts}", common::leaf::hub_listener(leaf_port)),
//!     ..ServerOptions::default()
//! });
//! let leaf = common::leaf::LeafServer::start(LeafOptions::new(leaf_port, "leaf-user", "pw"));
//! let host = common::connect(&leaf.url()).await;   // no credentials, as the host
//! ```
//!
//! Start-up waits until the leaf answers `/healthz` and lists its connection to the hub in
//! `/leafz`. Interest (subscriptions) crosses the link asynchronously after that: a test
//! that needs a subscription on one side to be known on the other waits for it (e.g. by
//! retrying a request).

use std::time::Instant;

use super::node::{new_tempdir, Node, Ready, START_ATTEMPTS};
use super::{http_get, START_TIMEOUT};

/// The hub's side: a `leafnodes` block listening on `port`. Leaf connections then
/// authenticate against the hub's ordinary users (accounts' `users`), whose permissions
/// the hub applies to the leaf connection.
pub fn hub_listener(port: u16) -> String {
    format!("leafnodes {{\n  listen: \"127.0.0.1:{port}\"\n}}\n")
}

/// How a [`LeafServer`] is set up.
#[derive(Clone, Debug)]
pub struct LeafOptions {
    /// The hub's leaf node port ([`hub_listener`]).
    pub hub_leaf_port: u16,
    /// The hub user the remote connection authenticates as.
    pub user: String,
    pub password: String,
    /// The leaf's own JetStream domain (`leaf`, as the operator's sidecar has it).
    pub js_domain: String,
}

impl LeafOptions {
    pub fn new(hub_leaf_port: u16, user: &str, password: &str) -> Self {
        LeafOptions {
            hub_leaf_port,
            user: user.to_string(),
            password: password.to_string(),
            js_domain: "leaf".to_string(),
        }
    }
}

/// A leaf nats-server with JetStream in its own domain; killed on drop.
pub struct LeafServer {
    node: Node,
    // Declared last: dropped after the process is killed in Drop.
    _dir: tempfile::TempDir,
}

impl LeafServer {
    /// Starts the leaf and waits until its remote connection to the hub is up.
    pub fn start(opts: LeafOptions) -> LeafServer {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = new_tempdir("nats-leaf-");
            let mut node = Node::new(dir.path().join("leaf"), "leaf", true, None);
            let mut config = node.base_config(Some(&opts.js_domain));
            // User and password go in the URL, percent-encoding not needed for the test's
            // plain names.
            config.push_str(&format!(
                "leafnodes {{\n  reconnect: 1\n  remotes: [\n    {{ url: \"nats://{}:{}@127.0.0.1:{}\" }}\n  ]\n}}\n",
                opts.user, opts.password, opts.hub_leaf_port
            ));
            node.write_config(&config);
            node.spawn();
            let deadline = Instant::now() + START_TIMEOUT;
            let ready = node
                .wait_ready(deadline, Ready::Healthy)
                .and_then(|()| wait_connected(&node, deadline));
            match ready {
                Ok(()) => return LeafServer { node, _dir: dir },
                Err(why) => {
                    node.kill();
                    if node.addr_in_use() && attempt < START_ATTEMPTS {
                        eprintln!("leaf nats-server port clash, retrying with new ports");
                        continue;
                    }
                    panic!(
                        "leaf nats-server failed to start: {why}\n{}",
                        node.failure_report()
                    );
                }
            }
        }
    }

    /// `nats://127.0.0.1:PORT`: where the host connects, without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.node.port)
    }

    /// Everything the leaf wrote so far.
    pub fn log(&self) -> String {
        self.node.log()
    }
}

/// Polls the leaf's `/leafz` until it lists a connection.
fn wait_connected(node: &Node, deadline: Instant) -> Result<(), String> {
    loop {
        let leafs = http_get(node.monitor_port, "/leafz")
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| v["leafnodes"].as_u64())
            .unwrap_or(0);
        if leafs > 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(
                "the leaf's remote connection to the hub is not up (see /leafz; \
                        an authentication error shows in the log)"
                    .into(),
            );
        }
        std::thread::sleep(super::POLL);
    }
}

impl Drop for LeafServer {
    fn drop(&mut self) {
        self.node.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- leaf nats-server log tail ---\n{}\n--- end ---",
                self.node.log_tail(40)
            );
        }
    }
}
