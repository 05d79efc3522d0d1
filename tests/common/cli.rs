//! The real binary, run once per command: with an environment of its own (see
//! [`super::provisioner_command`]), its output taken apart the same way everywhere.
//!
//! ```ignore
//! let o = common::cli::run_against(&url, &["apply", "--lattice", "prod"]);
//! assert_eq!(o.status.code(), Some(1), "{}", text(&o));
//! ```

use std::process::Output;

/// Runs `command` (one made by [`super::provisioner_command`] and its flags).
pub fn output(mut command: std::process::Command) -> Output {
    command.output().expect("run wasmcloud-provisioner")
}

/// Text a command printed.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the binary with `args`; panics only when it cannot be started.
pub fn run(args: &[&str]) -> Output {
    super::provisioner_command()
        .args(args)
        .output()
        .expect("run wasmcloud-provisioner")
}

/// Runs the binary with `--server url` before `args`.
pub fn run_against(url: &str, args: &[&str]) -> Output {
    super::provisioner_command()
        .arg("--server")
        .arg(url)
        .args(args)
        .output()
        .expect("run wasmcloud-provisioner")
}

/// The exit code and everything the command printed, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

pub fn stdout(o: &Output) -> String {
    lossy(&o.stdout)
}

pub fn stderr(o: &Output) -> String {
    lossy(&o.stderr)
}

/// `(exit code, stdout, stderr)`.
pub fn parts(o: &Output) -> (Option<i32>, String, String) {
    (o.status.code(), stdout(o), stderr(o))
}

/// Asserts an exit code, showing everything the command printed when it differs.
pub fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", text(out));
}

/// `wasmcloud-provisioner serve` (the real binary) in the background: stdout discarded,
/// stderr (the logs) into `log` when given; killed on drop, also when an assertion fails.
pub struct Served {
    child: std::process::Child,
    log: Option<std::path::PathBuf>,
}

impl Served {
    /// Spawns `command` (the binary with its flags, `serve` included) without waiting.
    pub fn spawn(mut command: std::process::Command, log: Option<&std::path::Path>) -> Served {
        let stderr = match log {
            Some(path) => {
                std::process::Stdio::from(std::fs::File::create(path).expect("create the log file"))
            }
            None => std::process::Stdio::null(),
        };
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start wasmcloud-provisioner serve");
        Served {
            child,
            log: log.map(std::path::Path::to_path_buf),
        }
    }

    /// [`Served::spawn`], then waits until `observer` (allowed to send `$SRV.INFO`) sees
    /// one more instance with every endpoint registered.
    pub async fn start(
        command: std::process::Command,
        log: Option<&std::path::Path>,
        observer: &async_nats::Client,
    ) -> Served {
        let before = super::provisioner::ready_instances(observer).await;
        let mut served = Served::spawn(command, log);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while super::provisioner::ready_instances(observer).await <= before {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("serve exited while starting: {status}\n{}", served.logs());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not register all its endpoints in time\n{}",
                served.logs()
            );
        }
        served
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The logs so far ("" without a log file).
    pub fn logs(&self) -> String {
        self.log
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// SIGTERM, waits up to 30 s for the drain, then kills; the logs.
    pub fn stop(&mut self) -> String {
        sigterm(self.pid());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to process `pid` (as an operator's `kill` or systemd does); whether
/// `kill` succeeded.
pub fn sigterm(pid: u32) -> bool {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Asserts that the command failed with exit 1 and said `says` on stderr, showing
/// everything it printed when not.
pub fn fails_with(o: &Output, says: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert!(stderr(o).contains(says), "{}", text(o));
}

/// Asserts that the command failed with exit 1 and that stderr says every one of `words`.
pub fn fails_saying(o: &Output, words: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    let err = stderr(o);
    for w in words {
        assert!(err.contains(w), "{w}: {err}");
    }
}

/// Asserts that the command succeeded, showing its stderr when not.
pub fn succeeded(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

/// The text between the first `start` and the following `end` (both included): a part of
/// a command's printed output (e.g. an `accounts { … }` block of `permissions`).
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"));
    let len = text[at..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?} in:\n{text}"));
    &text[at..at + len + end.len()]
}

/// The parts of `permissions --role provisioner --tenant-account …`'s `conf` output: the
/// provisioner's own permissions, the `accounts { … }` block (without its end marker) and
/// the tenant user's permissions.
pub fn tenant_blocks(text: &str) -> (&str, &str, &str) {
    let prov_user = between(text, "permissions: {", "\n}\n");
    let accounts = between(text, "accounts {", "}\n# end accounts");
    let accounts = &accounts[..accounts.len() - "# end accounts".len()];
    let tenant_user = between(
        &text[text.find("# end accounts").expect("the end marker")..],
        "permissions: {",
        "\n}\n",
    );
    (prov_user, accounts, tenant_user)
}
