//! `creds` and the files it reads and writes, through the command line: the output is
//! written to a new 0600 file and renamed into place (never through a symbolic link, never
//! left world-readable), and a hostile seed file is an error naming the file, not a panic.
//! No NATS server is involved: `creds` works offline.

#![cfg(unix)]

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use nkeys::KeyPair;

fn account_seed_file(dir: &Path) -> (PathBuf, String) {
    let account = KeyPair::new_account();
    let path = dir.join("account.nk");
    std::fs::write(&path, format!("{}\n", account.seed().expect("seed"))).expect("write seed");
    (path, account.seed().expect("seed"))
}

fn creds(dir: &Path, seed: &Path, out: &Path, force: bool) -> Output {
    let mut c = common::provisioner_command_with_config_home(&dir.join("xdg"));
    c.args([
        "creds",
        "--role",
        "host",
        "--lattice",
        "default",
        "--account-seed",
    ])
    .arg(seed)
    .arg("--out")
    .arg(out);
    if force {
        c.arg("--force");
    }
    c.output().expect("run wasmcloud-provisioner creds")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Names in `dir` other than the ones the test made.
fn leftovers(dir: &Path, expected: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}

#[test]
fn force_over_a_world_readable_file_leaves_a_0600_file_with_the_new_credentials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (seed, _) = account_seed_file(dir.path());
    let out = dir.path().join("host.creds");
    std::fs::write(&out, "old credentials\n").expect("write old file");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let result = creds(dir.path(), &seed, &out, true);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(mode(&out), 0o600, "the seed must not stay world-readable");
    let text = std::fs::read_to_string(&out).expect("read creds");
    assert!(text.starts_with("-----BEGIN NATS USER JWT-----"), "{text}");
    assert!(!text.contains("old credentials"));
    assert!(
        leftovers(dir.path(), &["account.nk", "host.creds", "xdg"]).is_empty(),
        "temporary files left behind"
    );
}

#[test]
fn force_over_a_symlink_replaces_the_link_and_never_writes_its_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (seed, _) = account_seed_file(dir.path());
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").expect("write victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = dir.path().join("host.creds");
    symlink(&victim, &out).expect("symlink");

    // Without --force the link is an existing path like any other.
    let refused = creds(dir.path(), &seed, &out, false);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );

    let result = creds(dir.path(), &seed, &out, true);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert_eq!(mode(&victim), 0o644, "the link's target is untouched");
    let meta = std::fs::symlink_metadata(&out).expect("metadata");
    assert!(meta.file_type().is_file(), "the link itself was replaced");
    assert_eq!(mode(&out), 0o600);
    assert!(std::fs::read_to_string(&out)
        .expect("creds")
        .contains("BEGIN USER NKEY SEED"));
}

#[test]
fn a_dangling_symlink_is_refused_without_force_and_nothing_is_created_through_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (seed, _) = account_seed_file(dir.path());
    let target = dir.path().join("not-yet");
    let out = dir.path().join("host.creds");
    symlink(&target, &out).expect("symlink");
    let refused = creds(dir.path(), &seed, &out, false);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(!target.exists(), "a file was created through the link");
}

#[test]
fn a_failed_write_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (seed, _) = account_seed_file(dir.path());
    // A directory at the output path: the final rename fails after the temporary file was
    // written.
    let out = dir.path().join("host.creds");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join("keep"), "x").expect("write");
    let result = creds(dir.path(), &seed, &out, true);
    assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
    assert!(
        stderr(&result).contains("host.creds"),
        "{}",
        stderr(&result)
    );
    assert!(
        leftovers(dir.path(), &["account.nk", "host.creds", "xdg"]).is_empty(),
        "temporary files left behind: {:?}",
        leftovers(dir.path(), &["account.nk", "host.creds", "xdg"])
    );
    assert!(out.join("keep").exists());
}

#[test]
fn a_seed_file_with_bytes_that_are_not_text_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, real_seed) = account_seed_file(dir.path());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Not UTF-8 at all, inside what looks like a seed.
        (
            "latin1.nk",
            [b"S\xff".as_slice(), real_seed.as_bytes()].concat(),
        ),
        // UTF-8, but a multi-byte character where the seed's prefix would be.
        (
            "accent.nk",
            format!("S\u{e9}{}\n", &real_seed[2..]).into_bytes(),
        ),
        ("nul.nk", [real_seed.as_bytes(), b"\0\n"].concat()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write seed file");
        let out = dir.path().join(format!("{name}.creds"));
        let result = creds(dir.path(), &path, &out, false);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the error names the file: {err}"
        );
        assert!(
            !err.contains(&real_seed[2..20]),
            "{name}: the error must not print the seed: {err}"
        );
        assert!(!out.exists(), "{name}: no creds written");
    }
}
