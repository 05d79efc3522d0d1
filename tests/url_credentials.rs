//! Credentials in the server URL (`-s nats://user:password@host`, `nats://token@host`), as
//! natscli takes them: honoured for `plan`, `apply` and `serve` against a real nats-server
//! that requires them, and never printed: errors, logs and `config check` show
//! `nats://user:***@…`.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{NatsServer, ServerOptions};

const USER: &str = "prov";
const PASSWORD: &str = "s3cr3t-Pw";
const TOKEN: &str = "t0ken-Secret";

fn password_server() -> NatsServer {
    NatsServer::start_with(ServerOptions {
        extra_config: format!(
            "authorization {{ users = [ {{ user: {USER}, password: \"{PASSWORD}\" }} ] }}\n"
        ),
        ..Default::default()
    })
}

fn url_with(server: &NatsServer, user_info: &str) -> String {
    format!("nats://{user_info}@127.0.0.1:{}", server.port())
}

fn run(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    common::provisioner_command_with_config_home(home.path())
        .args(args)
        .output()
        .expect("run wasmcloud-provisioner")
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn plan_and_apply_authenticate_with_the_user_and_password_in_the_url() {
    let server = password_server();
    let url = url_with(&server, &format!("{USER}:{PASSWORD}"));
    let out = run(&["-s", &url, "apply", "--lattice", "urlauth"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(!all_output(&out).contains(PASSWORD), "{}", all_output(&out));
    // Everything exists now: `plan` connects and finds nothing to change.
    let out = run(&["-s", &url, "plan", "--lattice", "urlauth"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

#[test]
fn a_token_in_the_url_is_used_as_the_token() {
    let server = NatsServer::start_with(ServerOptions {
        extra_config: format!("authorization {{ token: \"{TOKEN}\" }}\n"),
        ..Default::default()
    });
    let out = run(&["-s", &url_with(&server, TOKEN), "apply", "--lattice", "tok"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(!all_output(&out).contains(TOKEN), "{}", all_output(&out));
}

#[test]
fn a_wrong_password_fails_without_printing_it() {
    let server = password_server();
    let wrong = "Wr0ng-Passw0rd";
    let out = run(&[
        "-s",
        &url_with(&server, &format!("{USER}:{wrong}")),
        "plan",
        "--lattice",
        "x",
    ]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains(wrong), "the password was printed: {text}");
    assert!(text.contains(&format!("nats://{USER}:***@")), "{text}");
    // It says which method failed: the URL's user, not "none".
    assert!(
        text.contains(&format!("user \"{USER}\" with a password")),
        "{text}"
    );
}

#[test]
fn config_check_shows_the_url_with_the_password_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("provisioner.toml");
    std::fs::write(
        &file,
        format!("[connection]\nserver = \"nats://{USER}:{PASSWORD}@127.0.0.1:4222\"\n"),
    )
    .expect("write config");
    let file = file.to_str().expect("utf-8 path");
    for json in [false, true] {
        let mut args = vec!["config", "check", file];
        if json {
            args.push("--json");
        }
        let out = run(&args);
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(
            text.contains(&format!("nats://{USER}:***@127.0.0.1:4222")),
            "{text}"
        );
    }
    // With other credentials from the same source: refused, without the secret.
    let out = run(&[
        "-s",
        &format!("nats://{USER}:{PASSWORD}@127.0.0.1:4222"),
        "--token",
        "other",
        "config",
        "check",
        file,
    ]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("more than one way"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn serve_authenticates_with_the_url_and_logs_no_password() {
    let server = password_server();
    let logs = tempfile::tempdir().expect("temp dir");
    let log_path = logs.path().join("serve.log");
    let mut child = common::provisioner_command()
        .args([
            "-s",
            &url_with(&server, &format!("{USER}:{PASSWORD}")),
            "--log-format",
            "json",
            "serve",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(&log_path).expect("log file"),
        ))
        .spawn()
        .expect("start serve");
    let client = common::connect_with(
        &server.url(),
        async_nats::ConnectOptions::new().user_and_password(USER.into(), PASSWORD.into()),
    )
    .await;
    let reply = common::eventually("the service answers", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                client.request("wasmcloud.provision.lattice.served", "".into()),
            )
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
    })
    .await;
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
    assert_eq!(common::actions(&body), ["created", "created"], "{body}");
    assert!(common::cli::sigterm(child.id()));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
}

#[test]
fn help_does_not_print_a_password_from_nats_url() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = common::provisioner_command_with_config_home(home.path())
        .env(
            "NATS_URL",
            format!("nats://{USER}:{PASSWORD}@127.0.0.1:4222"),
        )
        .args(["plan", "--help"])
        .output()
        .expect("run --help");
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("NATS_URL"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
