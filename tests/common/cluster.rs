//! An n-node JetStream cluster ([`NatsCluster`]).

use std::time::{Duration, Instant};

use super::node::{meta_leader, new_tempdir, Node, Ready, START_ATTEMPTS};
use super::{free_port, http_get, POLL, START_TIMEOUT};

/// Knobs for [`NatsCluster::start_with`]; JetStream is always on.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// `jetstream { domain: ... }` on every node.
    pub js_domain: Option<String>,
    /// Raw config text appended to every node's config.
    pub extra_config: String,
    /// `server_tags` per node: entry `i` goes to node `i` (server `n{i+1}`); nodes
    /// without an entry get none. For JetStream placement tests.
    pub server_tags: Vec<Vec<String>>,
}

/// An n-node JetStream cluster (`c1`, servers `n1..nN`) on 127.0.0.1.
/// Node indexes are 0-based: `url(0)` is server `n1`.
pub struct NatsCluster {
    nodes: Vec<Node>,
    opts: ClusterOptions,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start(n: usize) -> NatsCluster {
        NatsCluster::start_with(n, ClusterOptions::default())
    }

    pub fn start_with(n: usize, opts: ClusterOptions) -> NatsCluster {
        assert!(n >= 1, "a cluster needs at least one node");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = new_tempdir("nats-cluster-");
            let mut nodes: Vec<Node> = (1..=n)
                .map(|i| {
                    let name = format!("n{i}");
                    Node::new(dir.path().join(&name), &name, true, Some(free_port()))
                })
                .collect();
            let routes: Vec<String> = nodes
                .iter()
                .map(|nd| format!("\"nats-route://127.0.0.1:{}\"", nd.cluster_port.unwrap()))
                .collect();
            for (i, node) in nodes.iter().enumerate() {
                let mut config = node.base_config(opts.js_domain.as_deref());
                if let Some(tags) = opts.server_tags.get(i).filter(|t| !t.is_empty()) {
                    let quoted: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
                    config.push_str(&format!("server_tags: [{}]\n", quoted.join(", ")));
                }
                let others: Vec<&str> = routes
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, r)| r.as_str())
                    .collect();
                config.push_str(&format!(
                    "cluster {{\n  name: \"c1\"\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                    node.cluster_port.unwrap(),
                    others.join(", ")
                ));
                config.push('\n');
                config.push_str(&opts.extra_config);
                config.push('\n');
                node.write_config(&config);
            }
            for node in nodes.iter_mut() {
                node.spawn();
            }
            let mut cluster = NatsCluster {
                nodes,
                opts: opts.clone(),
                _dir: dir,
            };
            match cluster.try_wait_healthy(Instant::now() + START_TIMEOUT) {
                Ok(()) => return cluster,
                Err(why) => {
                    for node in cluster.nodes.iter_mut() {
                        node.kill();
                    }
                    let clash = cluster.nodes.iter().any(Node::addr_in_use);
                    if clash && attempt < START_ATTEMPTS {
                        eprintln!("nats cluster port clash, retrying with new ports");
                        continue;
                    }
                    panic!(
                        "nats cluster failed to start: {why}\n{}",
                        cluster.failure_report()
                    );
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// Client URLs of all nodes (running or not).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }

    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// All client URLs comma-separated; [`connect`] splits them (plain
    /// `async_nats::connect` does not accept comma-separated lists).
    pub fn client_url_all(&self) -> String {
        self.urls().join(",")
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].monitor_port)
    }

    pub fn server_name(&self, i: usize) -> String {
        self.nodes[i].name.clone()
    }

    pub fn log(&self, i: usize) -> String {
        self.nodes[i].log()
    }

    /// All node logs concatenated (handy for `contains` checks).
    pub fn all_logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("=== {} ===\n{}", n.name, n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// GET a monitoring endpoint of node `i`; returns (status, body).
    pub fn http_get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        http_get(self.nodes[i].monitor_port, path)
    }

    /// Server name of the JetStream meta leader as seen by the first running
    /// node ("" if none known).
    pub fn meta_leader(&mut self) -> String {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_running() {
                return meta_leader(self.nodes[i].monitor_port);
            }
        }
        String::new()
    }

    /// Graceful stop of node `i` (leaderships are handed off). When a quorum
    /// remains, waits until the remaining nodes are healthy with a meta leader.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].stop();
        self.wait_healthy_if_quorum();
    }

    /// SIGKILL node `i` (crash; no hand-off). Does not wait for re-election:
    /// call [`NatsCluster::wait_healthy`] if the test needs a leader again.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts a stopped node again with the same ports and store. If a quorum
    /// is running afterwards, waits until every running node is healthy and
    /// agrees there is a meta leader; otherwise only until the node is up
    /// with JetStream enabled.
    pub fn start_node(&mut self, i: usize) {
        if self.nodes[i].is_running() {
            return;
        }
        self.nodes[i].spawn();
        if self.has_quorum() {
            if let Err(why) = self.try_wait_healthy(Instant::now() + START_TIMEOUT) {
                panic!(
                    "node {} did not rejoin: {why}\n{}",
                    self.nodes[i].name,
                    self.failure_report()
                );
            }
        } else if let Err(why) =
            self.nodes[i].wait_ready(Instant::now() + START_TIMEOUT, Ready::JsEnabledOnly)
        {
            panic!(
                "node {} did not start: {why}\n{}",
                self.nodes[i].name,
                self.failure_report()
            );
        }
    }

    /// Waits until every running node answers `/healthz` 200 and reports a
    /// meta leader. Panics after [`START_TIMEOUT`].
    pub fn wait_healthy(&mut self) {
        if let Err(why) = self.try_wait_healthy(Instant::now() + START_TIMEOUT) {
            panic!("nats cluster not healthy: {why}\n{}", self.failure_report());
        }
    }

    fn has_quorum(&mut self) -> bool {
        let n = self.nodes.len();
        let running = (0..n).filter(|&i| self.nodes[i].is_running()).count();
        running > n / 2
    }

    fn wait_healthy_if_quorum(&mut self) {
        if self.has_quorum() {
            self.wait_healthy();
        }
    }

    fn try_wait_healthy(&mut self, deadline: Instant) -> Result<(), String> {
        for node in self.nodes.iter_mut() {
            if node.child.is_some() {
                node.wait_ready(deadline, Ready::HealthyWithMetaLeader)?;
            }
        }
        self.wait_route_mesh_settled(deadline)
    }

    /// Waits until every running node has routes to every other running node and no
    /// route has come or gone for [`ROUTE_MESH_SETTLE`].
    ///
    /// Why healthy is not enough: nodes that start together dial each other before
    /// all of them listen, and retry a refused route after 1 s. When such a retry
    /// registers a peer's first pooled route connection again, nats-server (2.12.8,
    /// `route.go`) stores that peer's node info anew with no JetStream stats, and
    /// placement (`selectPeerGroup`) treats a peer without stats as offline until its
    /// next statsz arrives. An R3 create in that window is refused with 10005 "no
    /// suitable peers for placement, peer offline" — seen as a 503 from the service in
    /// `r1_to_r3_upgrade_keeps_10000_keys_history_and_every_other_setting` on a loaded
    /// box, although `/healthz` was green and an R3 probe had just succeeded.
    fn wait_route_mesh_settled(&mut self, deadline: Instant) -> Result<(), String> {
        let mut last: Option<(Vec<NodeRoutes>, Instant)> = None;
        loop {
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_running())
                .collect();
            let names: Vec<String> = running
                .iter()
                .map(|&i| self.nodes[i].name.clone())
                .collect();
            let mut snapshot = Vec::new();
            let mut missing = None;
            for &i in &running {
                let routes = route_table(self.nodes[i].monitor_port);
                let me = &self.nodes[i].name;
                if let Some(gap) = names
                    .iter()
                    .find(|n| *n != me && !routes.iter().any(|(r, _)| r == *n))
                {
                    missing = Some(format!("{me} has no route to {gap} yet"));
                }
                snapshot.push((me.clone(), routes));
            }
            let why = match (&missing, &last) {
                (Some(m), _) => m.clone(),
                (None, Some((previous, since))) if *previous == snapshot => {
                    if since.elapsed() >= ROUTE_MESH_SETTLE {
                        return Ok(());
                    }
                    "routes complete, settling".to_string()
                }
                (None, _) => {
                    last = Some((snapshot, Instant::now()));
                    "routes changed".to_string()
                }
            };
            if missing.is_some() {
                last = None;
            }
            if Instant::now() >= deadline {
                return Err(format!("the route mesh did not settle: {why}"));
            }
            std::thread::sleep(POLL);
        }
    }

    fn failure_report(&self) -> String {
        self.nodes
            .iter()
            .map(Node::failure_report)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            node.kill();
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "--- {} log tail ({}) ---\n{}\n--- end ---",
                    node.name,
                    node.log_path.display(),
                    node.log_tail(40)
                );
            }
        }
    }
}

/// How long the route mesh must stay unchanged before a cluster counts as formed:
/// longer than nats-server's 1 s retry of a refused route.
const ROUTE_MESH_SETTLE: Duration = Duration::from_millis(1500);

/// A node's name and its routes, as [`route_table`] gives them.
type NodeRoutes = (String, Vec<(String, u64)>);

/// A node's routes as (remote server name, route id), sorted; empty if `/routez` does
/// not answer. Route ids change when a route is dropped and made again.
fn route_table(monitor_port: u16) -> Vec<(String, u64)> {
    let mut routes: Vec<(String, u64)> = http_get(monitor_port, "/routez")
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v.get("routes").and_then(|r| r.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["remote_name"].as_str().unwrap_or_default().to_string(),
                r["rid"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    routes.sort();
    routes
}
