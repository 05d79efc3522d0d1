//! What restore and backup refuse, and that they then change and write nothing.

use super::*;

/// Fills a lattice's two buckets with a little data and backs them up; returns the
/// records and the folder.
async fn small_backup(
    url: &str,
    client: &async_nats::Client,
    lattice: &str,
    dir: &Path,
) -> (Vec<Recorded>, std::path::PathBuf) {
    let j = js(client, None);
    let tiny = Fill {
        keys: 200,
        revised: 20,
        deleted: 5,
        purged: 5,
    };
    fill(&j, &format!("LATTICEDATA_{lattice}"), 1, tiny).await;
    fill(&j, &format!("CONFIGDATA_{lattice}"), 1, tiny).await;
    let mut records = Vec::new();
    for s in [
        format!("KV_LATTICEDATA_{lattice}"),
        format!("KV_CONFIGDATA_{lattice}"),
    ] {
        records.push(record(client, None, &s).await);
    }
    let out = dir.join(format!("backup-{lattice}"));
    let o = ok(cli(
        url,
        None,
        &["backup", "--lattice", lattice, "--out", path(&out)],
    ));
    // Not a terminal: one line per stream, then the summary.
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, r) in lines.iter().zip(&records) {
        assert!(
            line.starts_with(&format!(
                "backed up {}: {} messages",
                r.stream,
                r.messages.len()
            )),
            "{line}"
        );
    }
    assert!(
        lines[2].starts_with("backup complete: 2 stream(s)"),
        "{}",
        lines[2]
    );
    (records, out)
}

#[tokio::test]
async fn restore_refuses_existing_streams_and_changes_nothing_then_skip_existing_restores_the_rest()
{
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "ex", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    // A host's bootstrap recreates CONFIGDATA empty (as `apply` would).
    ok(cli(&url, None, &["apply", "--lattice", "ex"]));
    delete(&client, None, "KV_LATTICEDATA_ex").await;
    let refused = cli(&url, None, &["restore", "--from", path(&out)]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    for words in [
        "nothing was restored",
        "KV_CONFIGDATA_ex: 0 messages, created 20",
        "recreated it empty",
        "--skip-existing",
    ] {
        assert!(err.contains(words), "{words}: {err}");
    }
    assert!(!err.contains("KV_LATTICEDATA_ex:"), "{err}");
    // Nothing was restored, not even the missing one.
    assert!(!stream_exists(&client, "KV_LATTICEDATA_ex").await);
    // A dry run says what it would do and changes nothing.
    let dry = ok(cli(
        &url,
        None,
        &[
            "restore",
            "--from",
            path(&out),
            "--skip-existing",
            "--dry-run",
            "--json",
        ],
    ));
    let plan: Value = serde_json::from_slice(&dry.stdout).expect("dry run JSON");
    let actions: Vec<String> = plan["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"].as_str().unwrap(),
                s["stream"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "skipped_existing KV_CONFIGDATA_ex",
            "would_restore KV_LATTICEDATA_ex"
        ]
    );
    assert!(!stream_exists(&client, "KV_LATTICEDATA_ex").await);
    // --skip-existing restores the missing one and leaves the existing one untouched.
    ok(cli(
        &url,
        None,
        &["restore", "--from", path(&out), "--skip-existing"],
    ));
    assert_same(&client, None, &records[0]).await;
    let kept = js(&client, None)
        .get_stream("KV_CONFIGDATA_ex")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(kept, 0, "the existing stream was left as it was");
}

#[tokio::test]
async fn missing_and_memory_streams_are_refused_and_nothing_is_written() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    // Nothing exists yet.
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    fails_with(&o, "KV_LATTICEDATA_mem (LATTICEDATA_mem) does not exist");
    let j = js(&client, None);
    for bucket in ["LATTICEDATA_mem", "CONFIGDATA_mem"] {
        j.create_key_value(kv::Config {
            bucket: bucket.into(),
            storage: jetstream::stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect("create memory bucket");
    }
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    fails_with(&o, "memory-storage stream: JetStream cannot snapshot");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // An existing --out is refused before anything else.
    std::fs::create_dir(&out).unwrap();
    let o = cli(
        &url,
        None,
        &["backup", "--lattice", "mem", "--out", path(&out)],
    );
    fails_with(&o, "exists: backup never overwrites");
}

/// Copies a backup folder (files only, two levels).
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_folder(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn corrupted_truncated_or_foreign_files_are_refused_and_nothing_is_half_restored() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "bad", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    let data = |folder: &Path| folder.join("KV_CONFIGDATA_bad").join("stream.tar.s2");
    let nothing_restored = || async {
        for r in &records {
            assert!(
                !stream_exists(&client, &r.stream).await,
                "{} was restored",
                r.stream
            );
        }
    };
    let refused = |folder: &Path, words: &[&str]| {
        fails_saying(
            &cli(&url, None, &["restore", "--from", path(folder)]),
            words,
        );
    };

    // One flipped byte: the checksum catches it before anything is sent.
    let flipped = dir.path().join("flipped");
    copy_folder(&out, &flipped);
    let mut bytes = std::fs::read(data(&flipped)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(data(&flipped), &bytes).unwrap();
    refused(
        &flipped,
        &["SHA-256", "does not match", "nothing was restored"],
    );
    nothing_restored().await;

    // Truncated.
    let truncated = dir.path().join("truncated");
    copy_folder(&out, &truncated);
    let bytes = std::fs::read(data(&truncated)).unwrap();
    std::fs::write(data(&truncated), &bytes[..bytes.len() / 2]).unwrap();
    refused(&truncated, &["truncated", "nothing was restored"]);
    nothing_restored().await;

    // A backup.json for another stream in a stream's folder.
    let renamed = dir.path().join("renamed");
    copy_folder(&out, &renamed);
    std::fs::copy(
        renamed.join("KV_LATTICEDATA_bad").join("backup.json"),
        renamed.join("KV_CONFIGDATA_bad").join("backup.json"),
    )
    .unwrap();
    std::fs::remove_file(renamed.join("backup-manifest.json")).unwrap();
    refused(&renamed, &["is for stream \"KV_LATTICEDATA_bad\""]);
    nothing_restored().await;

    // Foreign data in natscli's layout (no manifest to check against): the server refuses
    // the archive, and the stream it was for does not exist afterwards.
    let foreign = dir.path().join("foreign");
    copy_folder(&out, &foreign);
    std::fs::remove_file(foreign.join("backup-manifest.json")).unwrap();
    std::fs::remove_dir_all(foreign.join("KV_LATTICEDATA_bad")).unwrap();
    let junk: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data(&foreign), junk).unwrap();
    refused(&foreign, &["could not restore KV_CONFIGDATA_bad"]);
    nothing_restored().await;

    // A stream folder the manifest does not list.
    let added = dir.path().join("added");
    copy_folder(&out, &added);
    copy_folder(&added.join("KV_CONFIGDATA_bad"), &added.join("KV_OTHER"));
    refused(&added, &["KV_OTHER is not listed"]);
    nothing_restored().await;

    // natscli's layout with an empty data file.
    let empty = dir.path().join("empty");
    copy_folder(&out, &empty);
    std::fs::remove_file(empty.join("backup-manifest.json")).unwrap();
    std::fs::write(data(&empty), b"").unwrap();
    refused(&empty, &["stream.tar.s2 is empty"]);
    nothing_restored().await;

    // A data file that no longer matches its checksum while it is sent: its last chunk
    // is withheld, so the server creates nothing (it is given longer than its ~5 s
    // restore stall timeout). This file is a single chunk, so nothing at all is sent.
    let api =
        wasmcloud_provisioner::backup::api::Api::new(client.clone(), None, Duration::from_secs(5));
    let folder = wasmcloud_provisioner::backup::manifest::read_folder(&out).expect("read folder");
    let s = &folder.streams[1];
    let err = wasmcloud_provisioner::backup::restore::restore_from_file(
        &api,
        &s.stream,
        &s.metadata,
        &s.data_path,
        Some("00"),
        &mut |_| {},
    )
    .await
    .expect_err("a changed file is not completed");
    assert!(err.contains("changed after it was checked"), "{err}");
    tokio::time::sleep(Duration::from_secs(7)).await;
    nothing_restored().await;

    // A hostile manifest naming a path outside the folder.
    let hostile = dir.path().join("hostile");
    copy_folder(&out, &hostile);
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(hostile.join("backup-manifest.json")).unwrap())
            .unwrap();
    m["streams"][0]["stream"] = "../flipped/KV_CONFIGDATA_bad".into();
    std::fs::write(hostile.join("backup-manifest.json"), m.to_string()).unwrap();
    refused(&hostile, &["not a valid stream name"]);
    nothing_restored().await;

    // The untouched backup still restores.
    ok(cli(&url, None, &["restore", "--from", path(&out)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }
}

/// A folder is only files: whoever can write one chooses the config `restore` creates.
/// A bucket that republishes every value, a bucket the hosts cannot use, and a stream of
/// the folder's own that records the lattice's RPC traffic are all refused before
/// anything is sent; the untouched backup then restores.
#[tokio::test]
async fn restore_refuses_hostile_configs_and_streams_the_catalog_does_not_know() {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (records, out) = small_backup(&url, &client, "vet", dir.path()).await;
    for r in &records {
        delete(&client, None, &r.stream).await;
    }
    let refused = |folder: &Path, words: &[&str]| {
        fails_saying(
            &cli(&url, None, &["restore", "--from", path(folder)]),
            words,
        );
    };
    let edit = |folder: &Path, stream: &str, change: &dyn Fn(&mut Value)| {
        let file = folder.join(stream).join("backup.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        change(&mut v["config"]);
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    };

    let leak = dir.path().join("leak");
    copy_folder(&out, &leak);
    edit(&leak, "KV_CONFIGDATA_vet", &|c| {
        c["republish"] = serde_json::json!({"src": ">", "dest": "leak.>"});
    });
    edit(&leak, "KV_LATTICEDATA_vet", &|c| {
        c["max_age"] = 60_000_000_000u64.into();
    });
    refused(
        &leak,
        &[
            "nothing was restored",
            "KV_CONFIGDATA_vet: republish",
            "KV_LATTICEDATA_vet: max_age",
        ],
    );

    // natscli's layout, with a stream of its own next to a real bucket.
    let foreign = dir.path().join("foreign");
    copy_folder(&out, &foreign);
    std::fs::remove_file(foreign.join("backup-manifest.json")).unwrap();
    std::fs::rename(foreign.join("KV_LATTICEDATA_vet"), foreign.join("RECORDER")).unwrap();
    edit(&foreign, "RECORDER", &|c| {
        c["name"] = "RECORDER".into();
        c["subjects"] = serde_json::json!(["wasmbus.rpc.>"]);
    });
    refused(&foreign, &["RECORDER: not one of the catalog's"]);
    for s in ["KV_CONFIGDATA_vet", "KV_LATTICEDATA_vet", "RECORDER"] {
        assert!(!stream_exists(&client, s).await, "{s} was created");
    }

    ok(cli(&url, None, &["restore", "--from", path(&out)]));
    for r in &records {
        assert_same(&client, None, r).await;
    }
}
