//! One nats-server process: its config, ports, start-up readiness and stop.

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, nats_server_bin, port_accepts, POLL, STOP_TIMEOUT};

#[derive(Debug)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) port: u16,
    pub(super) monitor_port: u16,
    pub(super) cluster_port: Option<u16>,
    pub(super) jetstream: bool,
    pub(super) dir: PathBuf,
    pub(super) config_path: PathBuf,
    pub(super) log_path: PathBuf,
    pub(super) store_dir: PathBuf,
    pub(super) child: Option<Child>,
}

/// What a readiness wait requires beyond "client port open + /healthz 200".
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready {
    /// `/healthz` (full JetStream health, incl. meta leader contact when clustered).
    Healthy,
    /// `/healthz` and a non-empty `meta_cluster.leader` in `/jsz`.
    HealthyWithMetaLeader,
    /// Only `/healthz?js-enabled-only=true` (node cannot reach a quorum yet).
    JsEnabledOnly,
}

impl Node {
    pub(super) fn new(
        dir: PathBuf,
        name: &str,
        jetstream: bool,
        cluster_port: Option<u16>,
    ) -> Node {
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

    pub(super) fn write_config(&self, text: &str) {
        fs::write(&self.config_path, text).expect("write nats-server config");
    }

    pub(super) fn base_config(&self, js_domain: Option<&str>) -> String {
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

    pub(super) fn spawn(&mut self) {
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

    pub(super) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    /// Polls until ready; Err(reason) on early exit or timeout.
    pub(super) fn wait_ready(&mut self, deadline: Instant, ready: Ready) -> Result<(), String> {
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

    pub(super) fn probe(&self, healthz: &str, ready: Ready) -> Result<(), String> {
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
    pub(super) fn stop(&mut self) {
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
    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(super) fn log(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }

    pub(super) fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub(super) fn failure_report(&self) -> String {
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

    pub(super) fn addr_in_use(&self) -> bool {
        self.log().contains("address already in use")
    }
}

pub(super) fn meta_leader(monitor_port: u16) -> String {
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

pub(super) fn new_tempdir(prefix: &str) -> tempfile::TempDir {
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

pub(super) const START_ATTEMPTS: usize = 3;
