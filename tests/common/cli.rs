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
