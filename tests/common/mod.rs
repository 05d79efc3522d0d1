//! Test bed shared by all integration tests: real `nats-server` processes.
//!
//! Every test binary that needs a server does `mod common;` (`tests/<name>.rs`) or
//! `#[path = "../common/mod.rs"] mod common;` (`tests/<name>/main.rs`) and then e.g.
//!
//! ```ignore
//! let server = common::NatsServer::start();            // single node, JetStream on
//! let client = common::connect(&server.url()).await;
//! let cluster = common::NatsCluster::start(3);         // 3-node JetStream cluster
//! let client = common::connect(&cluster.client_url_all()).await;
//! let service = common::provisioner::spawn(&server.url(), Settings::default()).await;
//! let reply = common::reply::call(&client, "wasmcloud.provision.lattice", "prod").await;
//! ```
//!
//! The service in-process: [`provisioner`] (with `Options` for user, policy, host auth,
//! operator, tenant accounts, timeouts, cache TTL). Its replies: [`reply`]. The real
//! binary (one-shot commands, `serve` in the background, exit checks): [`cli`].
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

pub mod api_audit;
pub mod cli;
mod cluster;
pub mod leaf;
mod node;
/// The provisioner service run in-process (`provisioner::spawn`).
pub mod provisioner;
pub mod reply;
pub mod schema;
mod server;

#[allow(unused_imports)]
pub use cluster::{ClusterOptions, NatsCluster};
#[allow(unused_imports)]
pub use server::{NatsServer, ServerOptions};

use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Connects as `user` with `password` (the connection named after the user, as server
/// logs show it); requests wait at most `request_timeout` (short where refusals, which
/// never get an answer, are expected).
pub async fn connect_as_user(
    url: &str,
    user: &str,
    password: &str,
    request_timeout: Duration,
) -> async_nats::Client {
    connect_with(
        url,
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            .name(user)
            .request_timeout(Some(request_timeout)),
    )
    .await
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

/// Every stream name of the client's account, sorted.
pub async fn stream_names(client: &async_nats::Client) -> Vec<String> {
    use futures::StreamExt;
    let js = async_nats::jetstream::new(client.clone());
    let mut names: Vec<String> = js
        .stream_names()
        .map(|n| n.expect("a name"))
        .collect()
        .await;
    names.sort();
    names
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

/// Seconds since the Unix epoch (for signed host requests).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
