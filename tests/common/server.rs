//! A single nats-server ([`NatsServer`]).

use std::path::PathBuf;
use std::time::Instant;

use super::node::{new_tempdir, Node, Ready, START_ATTEMPTS};
use super::{http_get, START_TIMEOUT};

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
