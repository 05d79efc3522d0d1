//! Interrupted backups, natscli interop, the `backup` user and hostile backups.

use super::*;

/// The folders in `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// Starts `backup` of lattice `big` and returns once its data file has bytes in it.
fn start_backup_and_wait_for_data(url: &str, out: &Path) -> std::process::Child {
    let parent = out.parent().unwrap();
    let mut child = common::provisioner_command()
        .args([
            "--server",
            url,
            "backup",
            "--lattice",
            "big",
            "--js-timeout",
            "2",
            "--out",
            path(out),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start backup");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let writing = named(parent, ".b.partial-").into_iter().any(|p| {
            std::fs::metadata(p.join("KV_LATTICEDATA_big").join("stream.tar.s2"))
                .is_ok_and(|m| m.len() > 0)
        });
        if writing {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the backup ended ({status}) before it could be interrupted: give it more data");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup wrote no data in 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test]
async fn an_interrupted_backup_leaves_no_folder_that_claims_to_be_complete() {
    let mut server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    common::fill_kv_bucket(&client, "LATTICEDATA_big", 48).await;
    common::fill_kv_bucket(&client, "CONFIGDATA_big", 1).await;
    let dir = tempfile::tempdir().unwrap();

    // The process killed mid-way: no folder at --out; the leftover is marked unfinished
    // and restore refuses it.
    let out = dir.path().join("b");
    let mut child = start_backup_and_wait_for_data(&url, &out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed backup left {}", out.display());
    let leftovers = named(dir.path(), ".b.partial-");
    assert_eq!(leftovers.len(), 1);
    assert!(leftovers[0].join("BACKUP-INCOMPLETE").exists());
    assert!(!leftovers[0].join("backup-manifest.json").exists());
    let o = cli(&url, None, &["restore", "--from", path(&leftovers[0])]);
    fails_with(&o, "unfinished backup");
    std::fs::remove_dir_all(&leftovers[0]).unwrap();

    // The server stopped mid-way: the backup fails, says so, and removes what it wrote.
    let child = start_backup_and_wait_for_data(&url, &out);
    server.kill();
    let started = std::time::Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("incomplete"), "{err}");
    assert!(!out.exists());
    assert!(named(dir.path(), ".b.partial-").is_empty());
}

#[tokio::test]
async fn natscli_layout_restores_and_ours_restores_through_a_natscli_style_client() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let j = js(&client, None);
    fill(&j, "LATTICEDATA_io", 1, SMALL).await;
    fill(&j, "CONFIGDATA_io", 1, SMALL).await;
    let streams = ["KV_LATTICEDATA_io", "KV_CONFIGDATA_io"];
    let mut records = Vec::new();
    for s in streams {
        records.push(record(&client, None, s).await);
    }

    // natscli's `nats account backup` layout, written by the independent client.
    let theirs = dir.path().join("theirs");
    for s in streams {
        natscli_style::backup(&client, "$JS.API", s, &theirs.join(s)).await;
    }
    for s in streams {
        delete(&client, None, s).await;
    }
    ok(cli(&url, None, &["restore", "--from", path(&theirs)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }

    // Ours, restored stream by stream by the natscli-style client.
    let ours = dir.path().join("ours");
    ok(cli(
        &url,
        None,
        &["backup", "--lattice", "io", "--out", path(&ours)],
    ));
    for s in streams {
        delete(&client, None, s).await;
    }
    for s in streams {
        natscli_style::restore(&client, "$JS.API", &ours.join(s)).await;
    }
    for r in &records {
        assert_same(&client, None, r).await;
    }
}

/// A server whose account has an unrestricted `admin` and a `backup` user holding the
/// `backup` role's template for lattice `perm`.
fn server_with_backup_user(domain: Option<&str>) -> NatsServer {
    use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
    let block = permissions::template(
        Role::Backup,
        &TemplateOptions {
            lattices: vec!["perm".into()],
            js_domain: domain.map(String::from),
        },
    )
    .expect("backup template")
    .to_conf();
    NatsServer::start_with(ServerOptions {
        js_domain: domain.map(String::from),
        extra_config: format!(
            "accounts {{\n  BACKUPS {{\n    jetstream: enabled\n    users: [\n      {{ user: \
             admin, password: admin }}\n      {{\n        user: backup\n        password: \
             backup\n{block}      }}\n    ]\n  }}\n}}\n"
        ),
        ..Default::default()
    })
}

#[tokio::test]
async fn the_backup_user_can_back_up_and_cannot_restore_create_update_delete_or_purge() {
    let server = server_with_backup_user(None);
    let url = server.url();
    let admin = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into()),
    )
    .await;
    let j = js(&admin, None);
    fill(&j, "LATTICEDATA_perm", 1, SMALL).await;
    fill(&j, "CONFIGDATA_perm", 1, SMALL).await;
    let before = record(&admin, None, "KV_CONFIGDATA_perm").await;
    let as_backup = |args: &[&str]| {
        let mut c = common::provisioner_command();
        c.args(["--server", &url, "--user", "backup", "--password", "backup"]);
        c.args(args).output().expect("run the provisioner")
    };

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nightly");
    ok(as_backup(&[
        "backup",
        "--lattice",
        "perm",
        "--out",
        path(&out),
    ]));
    assert!(out.join("backup-manifest.json").exists());
    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:#?}");

    // Restore as the backup user: refused by the server, and nothing appears.
    delete(&admin, None, "KV_LATTICEDATA_perm").await;
    let o = as_backup(&["restore", "--from", path(&out), "--js-timeout", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!stream_exists(&admin, "KV_LATTICEDATA_perm").await);

    // Create, update, delete, purge and restore requests straight to the API: each is
    // a publish violation, and nothing changes.
    let backup = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("backup".into(), "backup".into()),
    )
    .await;
    let config = before.config.to_string();
    let attempts = [
        (
            "STREAM.CREATE.KV_LATTICEDATA_perm",
            config.replace("CONFIGDATA", "LATTICEDATA"),
        ),
        ("STREAM.UPDATE.KV_CONFIGDATA_perm", config.clone()),
        ("STREAM.PURGE.KV_CONFIGDATA_perm", String::new()),
        ("STREAM.DELETE.KV_CONFIGDATA_perm", String::new()),
        (
            "STREAM.RESTORE.KV_LATTICEDATA_perm",
            format!("{{\"config\":{config}}}"),
        ),
    ];
    for (op, body) in &attempts {
        let subject = format!("$JS.API.{op}");
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            backup.request(subject.clone(), body.clone().into()),
        )
        .await;
        if let Ok(Ok(m)) = answer {
            panic!("{subject} was answered: {:?}", m.payload);
        }
        assert!(
            common::wait_for_log(
                || server.log(),
                Duration::from_secs(10),
                |log| { log.contains(&format!("Publish Violation - Subject \"{subject}\"")) }
            ),
            "no violation logged for {subject}"
        );
    }
    assert!(!stream_exists(&admin, "KV_LATTICEDATA_perm").await);
    assert_same(&admin, None, &before).await;

    // The admin restores what the backup user wrote.
    ok(cli(
        &url,
        None,
        &[
            "--user",
            "admin",
            "--password",
            "admin",
            "restore",
            "--from",
            path(&out),
            "--skip-existing",
        ],
    ));
    assert!(stream_exists(&admin, "KV_LATTICEDATA_perm").await);
}

#[tokio::test]
async fn the_backup_user_backs_up_in_a_jetstream_domain() {
    let server = server_with_backup_user(Some("hub"));
    let url = server.url();
    let admin = common::connect_with(
        &url,
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into()),
    )
    .await;
    let j = js(&admin, Some("hub"));
    fill(&j, "LATTICEDATA_perm", 1, SMALL).await;
    fill(&j, "CONFIGDATA_perm", 1, SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nightly");
    let o = common::provisioner_command()
        .args([
            "--server",
            &url,
            "--user",
            "backup",
            "--password",
            "backup",
            "--js-domain",
            "hub",
            "backup",
            "--lattice",
            "perm",
            "--out",
            path(&out),
        ])
        .output()
        .unwrap();
    ok(o);
    let violations = common::permission_violations(&server.log());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn creds_role_backup_mints_a_user_with_exactly_the_backup_template() {
    use base64::Engine;
    use wasmcloud_provisioner::permissions::{self, Role, TemplateOptions};
    let dir = tempfile::tempdir().unwrap();
    let account = nkeys::KeyPair::new_account();
    let seed_file = dir.path().join("account.nk");
    std::fs::write(&seed_file, account.seed().unwrap()).unwrap();
    let creds = dir.path().join("backup.creds");
    let o = common::provisioner_command()
        .args([
            "creds",
            "--role",
            "backup",
            "--lattice",
            "perm",
            "--account-seed",
            path(&seed_file),
            "--out",
            path(&creds),
        ])
        .output()
        .unwrap();
    let o = ok(o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("user wasmcloud-provisioner-backup"),
        "{}",
        text(&o)
    );
    let file = std::fs::read_to_string(&creds).unwrap();
    let jwt = file
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT in the creds file");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("claims"))
            .unwrap(),
    )
    .unwrap();
    let template = permissions::template(
        Role::Backup,
        &TemplateOptions {
            lattices: vec!["perm".into()],
            js_domain: None,
        },
    )
    .unwrap();
    let p = &template.permissions;
    assert_eq!(
        claims["nats"]["pub"]["allow"],
        serde_json::json!(p.publish.allow)
    );
    assert_eq!(
        claims["nats"]["pub"]["deny"],
        serde_json::json!(p.publish.deny)
    );
    assert_eq!(
        claims["nats"]["sub"]["allow"],
        serde_json::json!(p.subscribe.allow)
    );
    assert!(claims["nats"].get("resp").is_none(), "no allow_responses");
}
