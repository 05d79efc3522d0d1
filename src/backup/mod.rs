//! Backup and restore of the buckets and streams the catalog knows.
//!
//! wasmCloud's docs ask for `CONFIGDATA_<l>`, `LATTICEDATA_<l>` and `wadm_manifests` to be
//! "file backed and backed up": losing them loses every component's config and every
//! application definition. `backup` takes them with JetStream's own snapshot API and
//! writes them in natscli's layout (so `nats stream restore` can read them too), plus a
//! manifest with a checksum per stream; `restore` puts them back, never over an existing
//! stream.
//!
//! - [`snapshot`]: the snapshot protocol for one stream, streamed to a file;
//! - [`mod@restore`]: the restore protocol for one stream, streamed from a file;
//! - `restore_folder`: a whole folder, never over an existing stream;
//! - [`manifest`]: the folder layout, our manifest, and the checks before a restore;
//! - [`vet`]: the configs a restore accepts (the catalog's streams, nothing hostile);
//! - [`api`]: the raw JetStream API requests both make (async-nats has no snapshot API);
//! - [`progress`]: a bar on a terminal, a line per stream elsewhere;
//! - [`cli`]: the `backup` and `restore` commands.
//!
//! Which resources a backup takes comes from the catalog ([`crate::catalog::Backup`]).
//! A backup is written under a temporary name beside its target and renamed only when
//! every stream ended complete, so an interrupted one never looks like a backup.

pub mod api;
pub mod cli;
pub mod manifest;
pub mod progress;
pub mod restore;
mod restore_folder;
pub mod snapshot;
pub mod vet;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::catalog::Kind;
use crate::request;
use api::{describe, Api};
use manifest::{Manifest, StreamEntry};
use progress::{human, Progress};
pub use restore_folder::{restore, RestoreItem, RestoreOptions};

use crate::catalog::Selected;

/// What `backup --lattice … [--wadm] [--all]` takes: the catalog's backup set
/// ([`crate::catalog::backup_set`]), after the lattice names are checked as everywhere.
pub fn selection(lattices: &[String], wadm: bool, all: bool) -> Result<Vec<Selected>, String> {
    for l in lattices {
        request::validate_lattice(l).map_err(|e| e.message)?;
    }
    if lattices.is_empty() && !(wadm || all) {
        return Err(
            "nothing to back up: give --lattice <name> (repeatable) and/or --wadm (or --all)"
                .into(),
        );
    }
    Ok(crate::catalog::backup_set(lattices, wadm, all))
}

/// How a backup runs.
pub struct BackupOptions {
    /// How long the chunk flow may pause before a stream's snapshot is given up.
    pub idle: Duration,
    /// `--json`: stdout is reserved for the manifest.
    pub json: bool,
}

/// Backs up `streams` into the new folder `out`. Checks everything it can first (the
/// folder does not exist, every stream exists and is file-backed), then writes into a
/// temporary folder beside `out` and renames it only when every stream is complete. On
/// failure the temporary folder is removed.
pub async fn backup(
    api: &Api,
    streams: &[Selected],
    out: &Path,
    options: &BackupOptions,
) -> Result<Manifest, String> {
    let (parent, temp) = target_folders(out)?;
    let started = now_rfc3339();
    // Looked up all at once: one round trip, not one per stream.
    let lookups = streams
        .iter()
        .map(|s| stream_info(api, &s.stream, format!("look up {}", s.stream)));
    let answers = futures::future::join_all(lookups).await;
    let mut infos = Vec::new();
    for (s, info) in streams.iter().zip(answers) {
        let Some(info) = info? else {
            return Err(format!(
                "{} ({}) does not exist, so it cannot be backed up; nothing was written. \
                 Leave out what is not deployed (--wadm/--all, the --lattice), or create it \
                 with `apply`",
                s.stream, s.name
            ));
        };
        if info["config"]["storage"] == "memory" {
            return Err(format!(
                "{} ({}) is a memory-storage stream: JetStream cannot snapshot those (its data \
                 lives only in the servers' memory). wasmCloud's docs ask for these buckets to \
                 be file backed; nothing was written",
                s.stream, s.name
            ));
        }
        infos.push(info);
    }
    let total: u64 = infos
        .iter()
        .map(|i| i["state"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    std::fs::create_dir(&temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    let result = write_streams(api, streams, &temp, options, total, started).await;
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e);
        }
    };
    if let Err(e) = finish(&temp, out, &parent) {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    Ok(manifest)
}

/// `STREAM.INFO` of a stream backup or restore is about to use (`None`: it does not
/// exist); a failure says it could not `action`, and the next step.
pub(crate) async fn stream_info(
    api: &Api,
    stream: &str,
    action: String,
) -> Result<Option<Value>, String> {
    let op = format!("STREAM.INFO.{stream}");
    api.stream_info(stream)
        .await
        .map_err(|e| describe(&e, &action, &api.subject(&op), api.domain()))
}

/// The parent of `out` and the temporary folder beside it; refuses an existing `out`.
fn target_folders(out: &Path) -> Result<(PathBuf, PathBuf), String> {
    if out.symlink_metadata().is_ok() {
        return Err(format!(
            "{} exists: backup never overwrites; give a new folder (for example one named by \
             date, --out backups/$(date +%F))",
            out.display()
        ));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| format!("--out {} names no folder", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "{} does not exist: create the folder that will hold the backup first",
            parent.display()
        ));
    }
    let temp = parent.join(format!(".{name}.partial-{}", nuid::next()));
    Ok((parent, temp))
}

/// Writes the marker, each stream's snapshot in turn, the manifest, and makes them
/// durable; returns the manifest.
async fn write_streams(
    api: &Api,
    streams: &[Selected],
    temp: &Path,
    options: &BackupOptions,
    total: u64,
    started: String,
) -> Result<Manifest, String> {
    std::fs::write(
        temp.join(manifest::INCOMPLETE_MARKER),
        "This backup is being written, or its run was interrupted: it is not complete.\n\
         A complete backup has its final name and a backup-manifest.json.\n",
    )
    .map_err(|e| format!("cannot write in {}: {e}", temp.display()))?;
    let progress = Progress::new("backup", total, options.json);
    let mut entries = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        progress.stream(&s.stream, i + 1, streams.len());
        let entry = write_stream(api, s, temp, options, &progress).await?;
        progress.line(&format!(
            "backed up {}: {} messages, last sequence {}, {} stored as {}",
            entry.stream,
            entry.messages,
            entry.last_seq,
            human(entry.bytes),
            human(entry.data_bytes)
        ));
        entries.push(entry);
    }
    progress.finish();
    let manifest = manifest_of(api, started, entries);
    write_new(
        &temp.join(manifest::MANIFEST_FILE),
        manifest.to_json().as_bytes(),
    )?;
    sync_written(temp, &manifest).await?;
    Ok(manifest)
}

/// One stream's folder: the snapshot's data file and its `backup.json`; returns the
/// stream's manifest entry.
async fn write_stream(
    api: &Api,
    s: &Selected,
    temp: &Path,
    options: &BackupOptions,
    progress: &Progress,
) -> Result<StreamEntry, String> {
    let dir = temp.join(&s.stream);
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut on_bytes = |n: u64| progress.add(n);
    let snap = snapshot::snapshot_to_file(
        api,
        &s.stream,
        &dir.join(manifest::DATA_FILE),
        options.idle,
        &mut on_bytes,
    )
    .await?;
    if !snap.config.is_object() {
        return Err(format!(
            "the snapshot reply for {} carried no stream config",
            s.stream
        ));
    }
    let metadata = serde_json::json!({ "config": snap.config, "state": snap.state });
    write_new(
        &dir.join(manifest::METADATA_FILE),
        serde_json::to_string_pretty(&metadata)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let state = &snap.state;
    Ok(StreamEntry {
        stream: s.stream.clone(),
        name: s.name.clone(),
        kind: match s.row.kind() {
            Kind::Kv => "kv",
            Kind::Stream => "stream",
        }
        .to_string(),
        catalog_key: Some(s.row.key.to_string()),
        messages: state["messages"].as_u64().unwrap_or(0),
        first_seq: state["first_seq"].as_u64().unwrap_or(0),
        last_seq: state["last_seq"].as_u64().unwrap_or(0),
        bytes: state["bytes"].as_u64().unwrap_or(0),
        data_bytes: snap.data_bytes,
        sha256: snap.sha256,
    })
}

/// The manifest of a backup that started at `started` and ends now.
fn manifest_of(api: &Api, started: String, entries: Vec<StreamEntry>) -> Manifest {
    let info = api.client().server_info();
    Manifest {
        format: manifest::FORMAT.to_string(),
        tool: manifest::Tool {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        server: manifest::Server {
            version: info.version,
            name: info.server_name,
            cluster: info.cluster.filter(|c| !c.is_empty()),
        },
        js_domain: api.domain().map(String::from),
        started,
        finished: now_rfc3339(),
        streams: entries,
    }
}

/// Durable before the folder gets its final name: the data files (mostly flushed by
/// their writers already), the small files and the folders are flushed together (each
/// fsync costs milliseconds, and concurrent ones share the file system's commits).
async fn sync_written(temp: &Path, manifest: &Manifest) -> Result<(), String> {
    let mut paths = vec![temp.join(manifest::MANIFEST_FILE), temp.to_path_buf()];
    for e in &manifest.streams {
        paths.push(temp.join(&e.stream).join(manifest::DATA_FILE));
        paths.push(temp.join(&e.stream).join(manifest::METADATA_FILE));
        paths.push(temp.join(&e.stream));
    }
    let syncs = paths.into_iter().map(|p| {
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("cannot sync {}: {e}", p.display()))
        })
    });
    for done in futures::future::join_all(syncs).await {
        done.map_err(|e| format!("a file sync failed: {e}"))??;
    }
    Ok(())
}

/// Removes the marker and gives the folder its final name, then makes both durable
/// together (one flush of the folder, one of its parent, at the same time). Everything
/// else in the folder was durable before. A crash before these flushes leaves the
/// temporary name, or the final name with the marker still in it: `restore` refuses
/// both, so no folder ever claims to be complete before it is.
fn finish(temp: &Path, out: &Path, parent: &Path) -> Result<(), String> {
    std::fs::remove_file(temp.join(manifest::INCOMPLETE_MARKER))
        .map_err(|e| format!("cannot finish {}: {e}", temp.display()))?;
    // Checked again: rename(2) would replace an empty folder created meanwhile.
    if out.symlink_metadata().is_ok() {
        return Err(format!(
            "{} appeared while the backup ran: backup never overwrites; nothing was kept",
            out.display()
        ));
    }
    std::fs::rename(temp, out)
        .map_err(|e| format!("cannot rename {} to {}: {e}", temp.display(), out.display()))?;
    std::thread::scope(|s| {
        let folder = s.spawn(|| sync_dir(out));
        let names = sync_dir(parent);
        folder
            .join()
            .unwrap_or_else(|_| Err(format!("cannot sync {}", out.display())))
            .and(names)
    })
}

/// Writes a new file (never over an existing one); flushed to disk later, see
/// `write_streams`.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// fsync of a folder, so that the names in it (a new file, a rename) survive a crash.
fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CATALOG;

    fn streams(lattices: &[&str], wadm: bool, all: bool) -> Vec<String> {
        let l: Vec<String> = lattices.iter().map(|s| s.to_string()).collect();
        selection(&l, wadm, all)
            .unwrap()
            .into_iter()
            .map(|s| s.stream)
            .collect()
    }

    #[test]
    fn the_default_set_is_what_wasmcloud_asks_to_back_up() {
        assert_eq!(
            streams(&["default"], false, false),
            ["KV_LATTICEDATA_default", "KV_CONFIGDATA_default"]
        );
        assert_eq!(
            streams(&["a", "b"], true, false),
            [
                "KV_LATTICEDATA_a",
                "KV_LATTICEDATA_b",
                "KV_CONFIGDATA_a",
                "KV_CONFIGDATA_b",
                "KV_wadm_manifests"
            ]
        );
        // --all: every catalog stream but derived ones, wadm's included.
        let all = streams(&["a"], false, true);
        let want: Vec<String> = CATALOG
            .iter()
            .filter(|r| r.backup != crate::catalog::Backup::Never)
            .map(|r| r.stream_for("a"))
            .collect();
        assert_eq!(all, want);
    }

    #[test]
    fn nothing_selected_and_bad_lattices_are_refused() {
        assert!(selection(&[], false, false).is_err());
        assert!(selection(&["a.b".into()], false, false).is_err());
        assert_eq!(streams(&["x", "x"], false, false).len(), 2);
    }

    #[test]
    fn an_existing_out_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = target_folders(dir.path()).unwrap_err();
        assert!(err.contains("never overwrites"), "{err}");
        let missing_parent = dir.path().join("no/such/x");
        assert!(target_folders(&missing_parent).is_err());
        let (parent, temp) = target_folders(&dir.path().join("b1")).unwrap();
        assert_eq!(parent, dir.path());
        assert!(temp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".b1.partial-"));
    }
}
