//! Test bed shared by all integration tests: real `nats-server` processes.
//!
//! Every `tests/*.rs` file that needs a server does `mod common;` and then e.g.
//!
//! ```ignore
//! let server = common::NatsServer::start();            // single node, JetStream on
//! let client = common::connect(&server.url()).await;
//! let cluster = common::NatsCluster::start(3);         // 3-node JetStream cluster
//! let client = common::connect(&cluster.client_url_all()).await;
//! ```
//!
//! The binary comes from `NATS_SERVER_BIN`, or `<repo>/.tools/bin/nats-server`
//! (installed by `make nats-server`). A missing binary is a hard failure: tests
//! are never skipped silently.
//!
//! The harness is synchronous (it only spawns processes and polls sockets), so
//! it can be used from `#[test]` and `#[tokio::test]` alike. Calls like
//! [`NatsCluster::stop_node`] block the calling thread for up to a few seconds;
//! inside a current-thread tokio runtime this just pauses the client's
//! background tasks, which then reconnect.
//!
//! Readiness: every server runs with an HTTP monitoring listener on a random
//! port, and start-up waits until the client port accepts TCP *and*
//! `GET /healthz` answers 200. With JetStream on, nats-server 2.12 only answers
//! 200 once JetStream is up and (clustered) once the node has contact with a
//! meta leader; for clusters we additionally check `/jsz` for a non-empty
//! `meta_cluster.leader` on every running node.
//!
//! Set `NATS_TEST_KEEP_DIRS=1` to keep the temporary directories (configs,
//! logs, stores) of every server for post-mortem inspection, and
//! `NATS_TEST_DEBUG=1` to print each readiness state change (with
//! `--nocapture`).
#![allow(dead_code)]

/// The provisioner service run in-process (`provisioner::spawn`).
pub mod api_audit;
pub mod leaf;
pub mod provisioner;

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a (re)start may take before the harness gives up with a panic.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop (SIGTERM) may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Oldest supported server: 2.9 (Debian's package) lacks subject transforms.
const MIN_VERSION: (u32, u32) = (2, 10);
const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Binary discovery
// ---------------------------------------------------------------------------

/// Path of the nats-server binary to test against.
///
/// `NATS_SERVER_BIN` if set, else `<CARGO_MANIFEST_DIR>/.tools/bin/nats-server`.
/// Panics (never skips) when the binary is missing or older than 2.10.
pub fn nats_server_bin() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(locate_and_check_binary).clone()
}

/// The `--version` output of the binary under test, e.g. `nats-server: v2.12.8`.
pub fn nats_server_version() -> String {
    let bin = nats_server_bin();
    version_output(&bin).expect("nats-server --version")
}

fn locate_and_check_binary() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (bin, source) = match std::env::var_os("NATS_SERVER_BIN") {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            let p = if p.is_relative() {
                manifest_dir.join(p)
            } else {
                p
            };
            (p, "NATS_SERVER_BIN")
        }
        _ => (
            manifest_dir.join(".tools").join("bin").join("nats-server"),
            "default location",
        ),
    };
    if !bin.is_file() {
        panic!(
            "\n\n*** nats-server binary not found at {} ({source}).\n\
             *** Integration tests need a real nats-server >= {}.{}.\n\
             *** Run `make nats-server` in {} (installs the pinned version into .tools/bin),\n\
             *** or point NATS_SERVER_BIN at a nats-server binary.\n\n",
            bin.display(),
            MIN_VERSION.0,
            MIN_VERSION.1,
            manifest_dir.display(),
        );
    }
    let out = version_output(&bin).unwrap_or_else(|e| {
        panic!(
            "\n\n*** could not run `{} --version`: {e}\n*** Run `make nats-server` to (re)install it.\n\n",
            bin.display()
        )
    });
    let version = parse_version(&out).unwrap_or_else(|| {
        panic!(
            "could not parse nats-server version from {:?} ({})",
            out,
            bin.display()
        )
    });
    if (version.0, version.1) < MIN_VERSION {
        panic!(
            "\n\n*** {} is {out:?}, but tests need nats-server >= {}.{} \
             (older servers lack e.g. subject transforms).\n\
             *** Run `make nats-server` and/or unset NATS_SERVER_BIN.\n\n",
            bin.display(),
            MIN_VERSION.0,
            MIN_VERSION.1,
        );
    }
    bin
}

fn version_output(bin: &Path) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exit status {}", out.status));
    }
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(s.trim().to_string())
}

/// Parses `nats-server: v2.12.8` (also tolerates `-beta.1` style suffixes).
fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let v = s.rsplit('v').next()?.trim();
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Returns a currently bindable TCP port on 127.0.0.1 that this process has
/// not handed out before.
///
/// Ports are taken from *below* the kernel's ephemeral range, so outgoing
/// connections (clients, routes) never sit on a port a stopped node wants
/// back on restart. Starts at a random offset so concurrent test processes
/// rarely collide; a collision shows up as "address already in use" and
/// fresh starts retry with new ports.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));

    let (lo, hi) = port_pool();
    if hi > lo + 1000 {
        let span = u32::from(hi - lo);
        let next = NEXT.get_or_init(|| AtomicU32::new(random_u32() % span));
        for _ in 0..span {
            let port = lo + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
            let mut used = used.lock().unwrap();
            if used.contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                used.insert(port);
                return port;
            }
        }
    }
    // Fallback: let the OS pick.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if used.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// `[10000, start of ephemeral range)`.
fn port_pool() -> (u16, u16) {
    let ephemeral_lo = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (10000, ephemeral_lo)
}

fn random_u32() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

// ---------------------------------------------------------------------------
// Tiny HTTP client for the monitoring endpoints
// ---------------------------------------------------------------------------

/// `GET http://127.0.0.1:<port><path>` with HTTP/1.0; returns (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(250)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_string()))
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

// ---------------------------------------------------------------------------
// One nats-server process
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: Option<u16>,
    jetstream: bool,
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    store_dir: PathBuf,
    child: Option<Child>,
}

/// What a readiness wait requires beyond "client port open + /healthz 200".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// `/healthz` (full JetStream health, incl. meta leader contact when clustered).
    Healthy,
    /// `/healthz` and a non-empty `meta_cluster.leader` in `/jsz`.
    HealthyWithMetaLeader,
    /// Only `/healthz?js-enabled-only=true` (node cannot reach a quorum yet).
    JsEnabledOnly,
}

impl Node {
    fn new(dir: PathBuf, name: &str, jetstream: bool, cluster_port: Option<u16>) -> Node {
        fs::create_dir_all(&dir).expect("create node dir");
        Node {
            name: name.to_string(),
            port: free_port(),
            monitor_port: free_port(),
            cluster_port,
            jetstream,
            config_path: dir.join("nats-server.conf"),
            log_path: dir.join("nats-server.log"),
            store_dir: dir.join("jetstream"),
            dir,
            child: None,
        }
    }

    fn write_config(&self, text: &str) {
        fs::write(&self.config_path, text).expect("write nats-server config");
    }

    fn base_config(&self, js_domain: Option<&str>) -> String {
        let mut c = String::new();
        c.push_str(&format!("server_name: {:?}\n", self.name));
        c.push_str(&format!("listen: \"127.0.0.1:{}\"\n", self.port));
        c.push_str(&format!("http: \"127.0.0.1:{}\"\n", self.monitor_port));
        c.push_str("logtime: true\n");
        if self.jetstream {
            c.push_str("jetstream {\n");
            c.push_str(&format!(
                "  store_dir: {:?}\n",
                self.store_dir.to_string_lossy()
            ));
            if let Some(d) = js_domain {
                c.push_str(&format!("  domain: {d:?}\n"));
            }
            c.push_str("}\n");
        }
        c
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open nats-server log");
        let log2 = log.try_clone().expect("clone log handle");
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", nats_server_bin().display()));
        self.child = Some(child);
    }

    fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    /// Polls until ready; Err(reason) on early exit or timeout.
    fn wait_ready(&mut self, deadline: Instant, ready: Ready) -> Result<(), String> {
        let healthz = if ready == Ready::JsEnabledOnly && self.jetstream {
            "/healthz?js-enabled-only=true"
        } else {
            "/healthz"
        };
        let debug = std::env::var_os("NATS_TEST_DEBUG").is_some();
        let started = Instant::now();
        let mut previous = String::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("{} exited during start-up: {status}", self.name));
                }
            } else {
                return Err(format!("{} is not running", self.name));
            }
            let last = match self.probe(healthz, ready) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if debug && last != previous {
                eprintln!(
                    "[harness {:>6.2?}] {}: {last}",
                    started.elapsed(),
                    self.name
                );
                previous = last.clone();
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} not ready in time; last check: {last}",
                    self.name
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn probe(&self, healthz: &str, ready: Ready) -> Result<(), String> {
        if !port_accepts(self.port) {
            return Err(format!("client port {} not accepting", self.port));
        }
        match http_get(self.monitor_port, healthz) {
            Some((200, _)) => {}
            Some((code, body)) => return Err(format!("{healthz} -> {code} {}", body.trim())),
            None => return Err(format!("{healthz} -> no HTTP answer")),
        }
        if ready == Ready::HealthyWithMetaLeader && self.jetstream {
            let leader = meta_leader(self.monitor_port);
            if leader.is_empty() {
                return Err("/jsz: no meta_cluster.leader yet".into());
            }
        }
        Ok(())
    }

    /// Graceful stop (SIGTERM, the server steps down from leaderships), then
    /// SIGKILL if it takes longer than STOP_TIMEOUT.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("{}: did not exit on SIGTERM, killing", self.name);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Immediate SIGKILL (crash simulation; no leadership hand-off).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn failure_report(&self) -> String {
        format!(
            "--- {} config ({}) ---\n{}\n--- {} log ({}) ---\n{}\n--- end {} ---",
            self.name,
            self.config_path.display(),
            fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.name,
            self.log_path.display(),
            self.log_tail(200),
            self.name,
        )
    }

    fn addr_in_use(&self) -> bool {
        self.log().contains("address already in use")
    }
}

fn meta_leader(monitor_port: u16) -> String {
    http_get(monitor_port, "/jsz")
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| {
            v.pointer("/meta_cluster/leader")
                .and_then(|l| l.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
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

fn new_tempdir(prefix: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    if std::env::var_os("NATS_TEST_KEEP_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("NATS_TEST_KEEP_DIRS: keeping {}", dir.path().display());
    }
    dir
}

const START_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------
// Single server
// ---------------------------------------------------------------------------

/// Knobs for [`NatsServer::start_with`]. `Default` = JetStream on, no domain.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub jetstream: bool,
    /// `jetstream { domain: ... }`.
    pub js_domain: Option<String>,
    /// Raw nats-server config text appended to the generated config, e.g.
    /// `accounts { ... }` or `authorization { ... }` blocks.
    pub extra_config: String,
    /// The HTTP monitoring listener is always enabled (readiness is detected
    /// via `/healthz`), so this flag is informational; `monitor_url()` always
    /// works.
    pub monitoring: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            jetstream: true,
            js_domain: None,
            extra_config: String::new(),
            monitoring: true,
        }
    }
}

/// A single nats-server on 127.0.0.1 with random ports and a temporary store.
/// Killed on drop (the temp dir with config, log and store is removed).
pub struct NatsServer {
    node: Node,
    opts: ServerOptions,
    // Declared last: dropped after the process is killed in Drop.
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// JetStream-enabled server.
    pub fn start() -> NatsServer {
        NatsServer::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> NatsServer {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = new_tempdir("nats-test-");
            let mut node = Node::new(dir.path().join("n1"), "n1", opts.jetstream, None);
            let mut config = node.base_config(opts.js_domain.as_deref());
            config.push('\n');
            config.push_str(&opts.extra_config);
            config.push('\n');
            node.write_config(&config);
            node.spawn();
            match node.wait_ready(Instant::now() + START_TIMEOUT, Ready::Healthy) {
                Ok(()) => {
                    return NatsServer {
                        node,
                        opts,
                        _dir: dir,
                    }
                }
                Err(why) => {
                    node.kill();
                    if node.addr_in_use() && attempt < START_ATTEMPTS {
                        eprintln!("nats-server port clash, retrying with new ports");
                        continue;
                    }
                    panic!(
                        "nats-server failed to start: {why}\n{}",
                        node.failure_report()
                    );
                }
            }
        }
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.node.port)
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// `http://127.0.0.1:MONITOR_PORT` (always enabled).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.node.monitor_port)
    }

    pub fn monitor_port(&self) -> u16 {
        self.node.monitor_port
    }

    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// JetStream store directory (kept across `restart`).
    pub fn store_dir(&self) -> PathBuf {
        self.node.store_dir.clone()
    }

    pub fn config_path(&self) -> PathBuf {
        self.node.config_path.clone()
    }

    pub fn log_path(&self) -> PathBuf {
        self.node.log_path.clone()
    }

    /// Everything the server wrote to stdout/stderr so far (all runs).
    pub fn log(&self) -> String {
        self.node.log()
    }

    pub fn is_running(&mut self) -> bool {
        self.node.is_running()
    }

    /// Graceful stop (SIGTERM; SIGKILL after 10 s). No-op when stopped.
    pub fn stop(&mut self) {
        self.node.stop();
    }

    /// SIGKILL, no graceful shutdown.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Stops (if running) and starts again on the same ports with the same
    /// store directory; waits until healthy.
    pub fn restart(&mut self) {
        self.node.stop();
        self.start_again();
    }

    /// Starts a stopped server again (same ports, same store).
    pub fn start_again(&mut self) {
        if self.node.is_running() {
            return;
        }
        self.node.spawn();
        if let Err(why) = self
            .node
            .wait_ready(Instant::now() + START_TIMEOUT, Ready::Healthy)
        {
            self.node.kill();
            panic!(
                "nats-server failed to restart: {why}\n{}",
                self.node.failure_report()
            );
        }
    }

    /// GET a monitoring endpoint, e.g. `/jsz?accounts=true`; returns (status, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.node.monitor_port, path)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.node.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- nats-server log tail ({}) ---\n{}\n--- end ---",
                self.node.log_path.display(),
                self.node.log_tail(40)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Log helpers
// ---------------------------------------------------------------------------

/// Permission-violation lines of a server log.
///
/// NOTE the wording: nats-server 2.12 *logs* `... - "$G/user:NAME" - Publish
/// Violation - Subject "foo"` (or `Subscription Violation`), while the
/// *client* receives `-ERR 'Permissions Violation for Publish to "foo"'`.
/// Grepping a server log for "Permissions Violation" finds nothing.
pub fn permission_violations(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains("Publish Violation - Subject")
                || l.contains("Subscription Violation - Subject")
                || l.contains("Permissions Violation")
        })
        .map(str::to_string)
        .collect()
}

/// Polls `log` until `pred` holds or `timeout` passes; returns whether it held.
/// (Violations are logged asynchronously, after the client call returned.)
pub fn wait_for_log(
    log: impl Fn() -> String,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred(&log()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Connection timeout used by [`connect`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url`, which may be a comma-separated list of server URLs
/// (e.g. [`NatsCluster::client_url_all`]). Panics on failure.
pub async fn connect(url: &str) -> async_nats::Client {
    connect_with(url, async_nats::ConnectOptions::new()).await
}

/// Like [`connect`] with caller-supplied options (credentials, name, ...);
/// the connection timeout is set to [`CONNECT_TIMEOUT`].
pub async fn connect_with(url: &str, opts: async_nats::ConnectOptions) -> async_nats::Client {
    try_connect_with(url, opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Fallible variant of [`connect_with`], for tests expecting a refusal
/// (e.g. authorization violations).
pub async fn try_connect_with(
    url: &str,
    opts: async_nats::ConnectOptions,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let addrs: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse()
                .unwrap_or_else(|e| panic!("bad NATS url {u:?}: {e}"))
        })
        .collect();
    opts.connection_timeout(CONNECT_TIMEOUT)
        .connect(addrs)
        .await
}

/// The provisioner binary with an environment of its own: no NATS, provisioner or log
/// variables from the caller, and natscli's config directory pointed at `config_home`, so
/// a context selected on the machine running the tests is never picked up.
pub fn provisioner_command_with_config_home(config_home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wasmcloud-provisioner"));
    for (k, _) in std::env::vars() {
        if k.starts_with("NATS_") || k.starts_with("WASMCLOUD_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", config_home)
        .stdin(std::process::Stdio::null());
    c
}

/// [`provisioner_command_with_config_home`] with a config home that holds nothing.
pub fn provisioner_command() -> std::process::Command {
    provisioner_command_with_config_home(
        &std::env::temp_dir().join("wasmcloud-provisioner-tests-no-config-home"),
    )
}

/// The `action` of every resource in a provisioning reply, in order.
pub fn actions(body: &serde_json::Value) -> Vec<String> {
    body["resources"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["action"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A connection resolved from these flags only: no config file, no natscli context of the
/// machine running the tests.
pub fn resolved(
    connect: &wasmcloud_provisioner::config::ConnectArgs,
) -> wasmcloud_provisioner::config::Resolved {
    wasmcloud_provisioner::config::combine(
        connect,
        &wasmcloud_provisioner::config::SettingsArgs::default(),
        wasmcloud_provisioner::config::FileConfig::default(),
        None,
    )
    .expect("resolve the connection")
}

/// Retries an async operation until it succeeds or `timeout` passes.
pub async fn eventually<T, E: std::fmt::Debug, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: still failing after {timeout:?}: {e:?}"),
        }
    }
}

/// Creates KV bucket `bucket` (defaults) and fills it with `mib` MiB of incompressible
/// 64 KiB values (keys `k0`, `k1`, …), for backup tests and the backup bench.
pub async fn fill_kv_bucket(client: &async_nats::Client, bucket: &str, mib: usize) {
    let js = async_nats::jetstream::new(client.clone());
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: bucket.to_string(),
        ..Default::default()
    })
    .await
    .expect("create bucket");
    // xorshift: values that compression cannot shrink, the same every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut acks = Vec::new();
    for i in 0..mib * 16 {
        let value: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        acks.push(
            js.publish(format!("$KV.{bucket}.k{i}"), value.into())
                .await
                .expect("publish"),
        );
    }
    for a in acks {
        a.await.expect("ack");
    }
}
