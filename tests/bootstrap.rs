//! `bootstrap` and `ping`, run as the real binary against a real nats-server, the way an
//! init container, an `ExecStartPre=` line or a liveness probe runs them.
//!
//! What is proven here:
//! - `bootstrap host` started before the provisioner waits (no responders, retried) and
//!   exits 0 once the provisioner serves, with the lattice's buckets created; so does one
//!   started before NATS itself accepts connections;
//! - with no provisioner at all it gives up after `--timeout`, naming the subject and the
//!   server; a 503 (JetStream off) is retried until then; a 403 (a lattice outside
//!   `--allow-lattice`) fails at once;
//! - `ping --self-file` answers for the instance that wrote the file and for no other; the
//!   file is gone once `serve` stopped.

mod common;

use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::Value;

use common::provisioner;
use common::{NatsServer, ServerOptions};
use wasmcloud_provisioner::settings::Settings;

/// Failsafe for a process expected to finish; never a timing assertion by itself.
const EXIT_FAILSAFE: Duration = Duration::from_secs(90);

/// The binary with `-s <url>` and `args`, output captured.
fn spawn(url: &str, args: &[&str]) -> Child {
    common::provisioner_command()
        .arg("-s")
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmcloud-provisioner")
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// From the call to `finish`, not from the spawn.
    waited: Duration,
}

/// Waits for `child` to exit (failsafe [`EXIT_FAILSAFE`]) and collects its output.
async fn finish(mut child: Child) -> Finished {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("poll the child").is_some() {
            break;
        }
        if started.elapsed() > EXIT_FAILSAFE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "still running after {EXIT_FAILSAFE:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    let out = child.wait_with_output().expect("collect output");
    Finished {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        waited,
    }
}

/// Asserts that `child` is still running after `after` (it is waiting, not failing).
async fn still_running(child: &mut Child, after: Duration, what: &str) {
    tokio::time::sleep(after).await;
    assert!(
        child.try_wait().expect("poll the child").is_none(),
        "{what} exited instead of waiting"
    );
}

async fn stream_exists(url: &str, name: &str) -> bool {
    let js = jetstream::new(common::connect(url).await);
    js.get_stream(name).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_started_before_the_provisioner_succeeds_once_it_serves() {
    let server = NatsServer::start();
    let url = server.url();
    let mut child = spawn(
        &url,
        &[
            "bootstrap",
            "host",
            "--lattice",
            "early",
            "--timeout",
            "60",
            "--json",
        ],
    );
    still_running(&mut child, Duration::from_millis(1500), "bootstrap host").await;
    assert!(!stream_exists(&url, "KV_LATTICEDATA_early").await);

    let service = provisioner::spawn(&url, Settings::default()).await;
    let done = finish(child).await;
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("no responders"),
        "it said why it waited: {}",
        done.stderr
    );
    let reply: Value = serde_json::from_str(&done.stdout).expect("--json prints the reply");
    assert_eq!(reply["lattice"], "early");
    assert_eq!(reply["signed"], true, "signed with its (fresh) host key");
    assert_eq!(common::actions(&reply), ["created", "created"]);
    assert!(stream_exists(&url, "KV_LATTICEDATA_early").await);
    assert!(stream_exists(&url, "KV_CONFIGDATA_early").await);

    // With the provisioner up: at once, and the plain output says what exists.
    let done = finish(spawn(&url, &["bootstrap", "wadm", "--timeout", "30"])).await;
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stdout
            .starts_with("wasmcloud.provision.wadm: 8 resources ready (8 created) after 1 attempt"),
        "{}",
        done.stdout
    );
    service.shutdown().await.expect("serve() returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_started_before_nats_connects_once_it_is_up() {
    let mut server = NatsServer::start();
    let url = server.url();
    server.stop();
    let seed_dir = tempfile::tempdir().expect("temp dir");
    let seed_file = seed_dir.path().join("host.nk");
    let key = nkeys::KeyPair::new_server();
    std::fs::write(&seed_file, format!("{}\n", key.seed().expect("seed"))).expect("write seed");
    let mut child = spawn(
        &url,
        &[
            "bootstrap",
            "host",
            "--lattice",
            "later",
            "--host-seed",
            seed_file.to_str().expect("utf-8 path"),
            "--json",
        ],
    );
    still_running(&mut child, Duration::from_millis(1500), "bootstrap host").await;
    server.start_again();
    let service = provisioner::spawn(&url, Settings::default()).await;
    let done = finish(child).await;
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("could not connect"),
        "it said why it waited: {}",
        done.stderr
    );
    let reply: Value = serde_json::from_str(&done.stdout).expect("--json prints the reply");
    assert_eq!(
        reply["host_id"],
        key.public_key(),
        "the seed's key names the host"
    );
    service.shutdown().await.expect("serve() returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_without_a_provisioner_gives_up_after_the_timeout() {
    let server = NatsServer::start();
    let url = server.url();
    let done = finish(spawn(&url, &["bootstrap", "wadm", "--timeout", "3"])).await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.waited >= Duration::from_secs(3),
        "it waited for the whole timeout, {:?}",
        done.waited
    );
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: gave up after 3 s"), "{last}");
    assert!(last.contains("wasmcloud.provision.wadm"), "{last}");
    assert!(last.contains(&url), "it names the server: {last}");
    assert!(last.contains("no responders"), "{last}");
}

/// `--timeout` beyond what a deadline can hold panicked (an `Instant` overflow), and 0
/// gave up before the first attempt: both are refused as usage errors (exit 1), nothing
/// is sent.
#[tokio::test]
async fn out_of_range_timeouts_are_usage_errors_not_panics() {
    for t in ["18446744073709551615", "604801", "0"] {
        let done = finish(spawn(
            "nats://127.0.0.1:1",
            &["bootstrap", "wadm", "--timeout", t],
        ))
        .await;
        assert_eq!(
            done.status.code(),
            Some(1),
            "--timeout {t}: {}",
            done.stderr
        );
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
        assert!(done.stderr.contains("1..=604800"), "{}", done.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_until_the_timeout() {
    let server = NatsServer::start_with(ServerOptions {
        jetstream: false,
        ..ServerOptions::default()
    });
    let url = server.url();
    let service = provisioner::spawn(&url, Settings::default()).await;
    let done = finish(spawn(&url, &["bootstrap", "wadm", "--timeout", "3"])).await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("waiting for the provisioner (attempt 2): the provisioner answered 503"),
        "JetStream off is retried: {}",
        done.stderr
    );
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: gave up after 3 s"), "{last}");
    assert!(last.contains("answered 503"), "{last}");
    service.shutdown().await.expect("serve() returns Ok");
}

/// `serve` as the binary, with `--id-file`; returns once the id file exists.
async fn serve(url: &str, id_file: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["serve", "--id-file", id_file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let mut child = spawn(url, &args);
    let deadline = Instant::now() + common::START_TIMEOUT;
    while !id_file.exists() {
        if let Some(status) = child.try_wait().expect("poll serve") {
            panic!("serve exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "serve wrote no id file in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

async fn terminate(child: Child) -> Finished {
    assert!(common::cli::sigterm(child.id()));
    finish(child).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_fails_at_once() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = serve(&url, &dir.path().join("id"), &["--allow-lattice", "prod-*"]).await;
    let done = finish(spawn(
        &url,
        &[
            "bootstrap",
            "host",
            "--lattice",
            "staging",
            "--timeout",
            "60",
        ],
    ))
    .await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.waited < Duration::from_secs(30),
        "a 403 is not retried until the 60 s timeout: {:?}",
        done.waited
    );
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: wasmcloud.provision.host.staging answered 403: "),
        "{last}"
    );
    assert!(
        !done.stderr.contains("waiting"),
        "no retry: {}",
        done.stderr
    );
    assert!(!stream_exists(&url, "KV_LATTICEDATA_staging").await);
    // An allowed lattice, by the same means.
    let done = finish(spawn(&url, &["bootstrap", "host", "--lattice", "prod-1"])).await;
    assert!(done.status.success(), "{}", done.stderr);
    assert!(terminate(serve).await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_for_the_instance_that_wrote_the_id_file_only() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let id_file = dir.path().join("id");
    let id_path = id_file.to_str().expect("utf-8 path");
    let first = serve(&url, &id_file, &[]).await;
    let id = std::fs::read_to_string(&id_file).expect("id file");
    let id = id.trim().to_string();

    let done = finish(spawn(&url, &["ping", "--self-file", id_path, "--json"])).await;
    assert!(done.status.success(), "{}", done.stderr);
    let reply: Value = serde_json::from_str(&done.stdout).expect("--json prints the reply");
    assert_eq!(reply["id"], id.as_str());
    assert_eq!(reply["type"], "io.nats.micro.v1.ping_response");
    // Any instance: answered by the one there is.
    let done = finish(spawn(&url, &["ping"])).await;
    assert!(done.status.success(), "{}", done.stderr);

    // Another instance's id gets no answer, while this instance still serves.
    let done = finish(spawn(
        &url,
        &["ping", "--id", "NoSuchInstance0000000", "--timeout", "2"],
    ))
    .await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stderr.contains(&format!(
            "no answer on $SRV.PING.wasmcloud-provisioner.NoSuchInstance0000000 at {url} within 2 s"
        )),
        "{}",
        done.stderr
    );

    // A second instance in the same queue group does not answer for the first one once
    // that one stopped: the probe of the stopped pod fails although the service lives.
    let other_file = dir.path().join("other-id");
    let second = serve(&url, &other_file, &[]).await;
    assert!(terminate(first).await.status.success());
    assert!(!id_file.exists(), "serve removes its id file when it stops");
    std::fs::write(&id_file, format!("{id}\n")).expect("restore the stale id");
    let done = finish(spawn(
        &url,
        &["ping", "--self-file", id_path, "--timeout", "2"],
    ))
    .await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    let done = finish(spawn(&url, &["ping"])).await;
    assert!(
        done.status.success(),
        "the second instance answers a plain ping"
    );
    assert!(terminate(second).await.status.success());
}
