//! The `backup` and `restore` commands: arguments, connection, output and audit events.
//! Kept here so that `main.rs` only dispatches.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::api::Api;
use super::manifest::{self, FolderStream, Manifest};
use super::{BackupOptions, RestoreOptions};
use crate::audit::{self, AuditEvent, AuditPublisher, BackupRef, Instance};
use crate::catalog::Kind;
use crate::config::{self, Resolved};
use crate::config_error::ConfigError;
use crate::origin::Origin;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// Lattice whose buckets to back up: LATTICEDATA_<l> and CONFIGDATA_<l> (repeatable)
    #[arg(long = "lattice", short = 'l')]
    pub lattices: Vec<String>,
    /// Also wadm's application manifests (wadm_manifests)
    #[arg(long)]
    pub wadm: bool,
    /// Also what wadm rebuilds itself: wadm_state and wadm's streams (implies --wadm)
    #[arg(long)]
    pub all: bool,
    /// The folder to create (it must not exist). Written beside it under a temporary
    /// name and renamed when every stream is complete. `{utc}` in it is replaced by the
    /// start time (2026-01-31T023000Z), for scheduled runs without a shell
    #[arg(long)]
    pub out: PathBuf,
    /// Print the manifest as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a JetStream API answer; a snapshot that sends nothing for
    /// three times as long is given up
    #[arg(long, default_value_t = 5)]
    pub js_timeout: u64,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A folder written by `backup` (or by `nats account backup` / `nats stream backup`)
    #[arg(long)]
    pub from: PathBuf,
    /// Check the folder and the server, say what would be restored, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restore only the streams that do not exist; leave existing ones untouched
    #[arg(long)]
    pub skip_existing: bool,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a JetStream API answer and for each chunk's ack
    #[arg(long, default_value_t = 5)]
    pub js_timeout: u64,
}

/// `backup`: exit 0 when the folder is complete; any failure leaves no folder at `--out`.
pub async fn run_backup(resolved: &Resolved, args: BackupArgs) -> Result<u8, ConfigError> {
    let streams = super::selection(&args.lattices, args.wadm, args.all)?;
    let args = BackupArgs {
        out: expand_out(&args.out, time::OffsetDateTime::now_utc())?,
        ..args
    };
    if args.js_timeout == 0 {
        return Err(ConfigError::Invalid(
            "--js-timeout must be at least 1 second".into(),
        ));
    }
    let client = config::connect(resolved, "wasmcloud-provisioner-backup", None).await?;
    let timeout = Duration::from_secs(args.js_timeout);
    let api = Api::new(client.clone(), resolved.js_domain.clone(), timeout);
    let options = BackupOptions {
        idle: timeout * 3,
        json: args.json,
    };
    let manifest = super::backup(&api, &streams, &args.out, &options).await?;
    let audit = AuditPublisher::start(
        client.clone(),
        Instance::new("wasmcloud-provisioner-cli"),
        resolved.js_domain.clone(),
    );
    let origin = Origin::cli("backup");
    for entry in &manifest.streams {
        let config = read_config(&args.out.join(&entry.stream));
        audit.publish(AuditEvent::backup_event(
            "backed_up",
            audit::ResourceRef {
                name: entry.name.clone(),
                kind: kind_of(&entry.kind),
                stream: entry.stream.clone(),
            },
            &config,
            audit.instance(),
            resolved.js_domain.as_deref(),
            Some(origin.clone()),
            BackupRef {
                folder: args.out.display().to_string(),
                messages: entry.messages,
                last_seq: entry.last_seq,
                data_bytes: entry.data_bytes,
                sha256: Some(entry.sha256.clone()),
            },
        ));
    }
    audit.close(Duration::from_secs(5)).await;
    let _ = client.flush().await;
    if args.json {
        println!("{}", manifest.to_json());
    } else {
        println!("{}", summary(&manifest, &args.out));
    }
    Ok(0)
}

/// `{utc}` in `--out` becomes the time, so that a CronJob or a systemd timer names each
/// night's folder without a shell (`date`). Only that placeholder; the path must stay
/// valid UTF-8 for it to be replaced.
fn expand_out(out: &std::path::Path, now: time::OffsetDateTime) -> Result<PathBuf, ConfigError> {
    const PLACEHOLDER: &str = "{utc}";
    let Some(text) = out.to_str() else {
        return Ok(out.to_path_buf());
    };
    if !text.contains(PLACEHOLDER) {
        return Ok(out.to_path_buf());
    }
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    Ok(PathBuf::from(text.replace(PLACEHOLDER, &stamp)))
}

fn summary(m: &Manifest, out: &std::path::Path) -> String {
    let bytes: u64 = m.streams.iter().map(|s| s.data_bytes).sum();
    format!(
        "backup complete: {} stream(s), {} in {} (restore with `wasmcloud-provisioner restore \
         --from {}`)",
        m.streams.len(),
        super::progress::human(bytes),
        out.display(),
        out.display()
    )
}

fn read_config(stream_dir: &std::path::Path) -> Value {
    std::fs::read_to_string(stream_dir.join(manifest::METADATA_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| v["config"].clone())
        .unwrap_or(Value::Null)
}

fn kind_of(kind: &str) -> Kind {
    if kind == "kv" {
        Kind::Kv
    } else {
        Kind::Stream
    }
}

/// The name users know a stream by: a KV bucket's without `KV_`.
fn resource_of(stream: &str, config: &Value) -> audit::ResourceRef {
    let is_kv = stream.starts_with("KV_")
        && config["subjects"].as_array().is_some_and(|s| {
            s.iter()
                .any(|x| x.as_str().is_some_and(|x| x.starts_with("$KV.")))
        });
    audit::ResourceRef {
        name: if is_kv {
            stream.trim_start_matches("KV_").to_string()
        } else {
            stream.to_string()
        },
        kind: if is_kv { Kind::Kv } else { Kind::Stream },
        stream: stream.to_string(),
    }
}

/// `restore`: exit 0 when everything asked was restored (or would be, with --dry-run);
/// 1 when the folder fails its checks, a target exists (without --skip-existing), or the
/// server refuses. `replicas` is the global `--replicas` (or
/// `WASMCLOUD_PROVISIONER_REPLICAS`): given, it replaces each stream's backed-up number.
/// Only the flag and its variable count, not the config file: a restore keeps what was
/// backed up unless asked on the command line.
pub async fn run_restore(
    resolved: &Resolved,
    args: RestoreArgs,
    replicas: Option<usize>,
) -> Result<u8, ConfigError> {
    let replicas = restore_replicas(&args, replicas)?;
    // Every file is checked before the first byte goes to the server.
    let folder = manifest::read_folder(&args.from)?;
    super::vet::check_folder(&folder, &resolved.settings)?;
    if let Some(m) = &folder.manifest {
        if m.js_domain != resolved.js_domain {
            tracing::warn!(
                backed_up_from = ?m.js_domain,
                restoring_to = ?resolved.js_domain,
                "restoring into another JetStream domain than the backup's"
            );
        }
    }
    let client = config::connect(resolved, "wasmcloud-provisioner-restore", None).await?;
    let api = Api::new(
        client.clone(),
        resolved.js_domain.clone(),
        Duration::from_secs(args.js_timeout),
    );
    let options = RestoreOptions {
        dry_run: args.dry_run,
        replicas,
        skip_existing: args.skip_existing,
        json: args.json,
    };
    let audit = AuditPublisher::start(
        client.clone(),
        Instance::new("wasmcloud-provisioner-cli"),
        resolved.js_domain.clone(),
    );
    let origin = Origin::cli("restore");
    let from = args.from.display().to_string();
    let mut on_restored = |s: &FolderStream, answer: &Value| {
        let config = &answer["config"];
        audit.publish(AuditEvent::backup_event(
            "restored",
            resource_of(&s.stream, config),
            config,
            audit.instance(),
            resolved.js_domain.as_deref(),
            Some(origin.clone()),
            BackupRef {
                folder: from.clone(),
                messages: answer["state"]["messages"].as_u64().unwrap_or(s.messages),
                last_seq: answer["state"]["last_seq"].as_u64().unwrap_or(0),
                data_bytes: s.data_bytes,
                sha256: s.sha256.clone(),
            },
        ));
    };
    let result = super::restore(&api, &folder, &options, &mut on_restored).await;
    audit.close(Duration::from_secs(5)).await;
    let _ = client.flush().await;
    let items = result?;
    print_restore(&args, resolved, &folder, &items);
    Ok(0)
}

/// `--js-timeout` and the global `--replicas` of a restore, checked.
fn restore_replicas(
    args: &RestoreArgs,
    replicas: Option<usize>,
) -> Result<Option<u64>, ConfigError> {
    let replicas = replicas.map(|r| r as u64);
    if args.js_timeout == 0 {
        return Err(ConfigError::Invalid(
            "--js-timeout must be at least 1 second".into(),
        ));
    }
    if let Some(r) = replicas {
        if ![1, 3, 5].contains(&r) {
            return Err(ConfigError::Invalid(format!(
                "--replicas {r}: use 1, 3 or 5 (JetStream replicas are odd, at most 5)"
            )));
        }
    }
    Ok(replicas)
}

/// What a restore did (or would do): JSON with `--json`, else a line per stream and a
/// summary with the next step.
fn print_restore(
    args: &RestoreArgs,
    resolved: &Resolved,
    folder: &manifest::Folder,
    items: &[super::RestoreItem],
) {
    if args.json {
        let body = json!({
            "from": args.from,
            "dry_run": args.dry_run,
            "js_domain": resolved.js_domain,
            "manifest": folder.manifest.is_some(),
            "streams": items,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        for i in items {
            match i.action {
                "would_restore" => println!(
                    "would restore {}: {} messages, {} replica(s)",
                    i.stream, i.messages, i.replicas
                ),
                "skipped_existing" => println!(
                    "skipped {}: it exists ({} messages); left untouched",
                    i.stream, i.messages
                ),
                _ => {}
            }
        }
        let restored = items.iter().filter(|i| i.action == "restored").count();
        if args.dry_run {
            println!("dry run: nothing was changed");
        } else {
            println!(
                "restore complete: {restored} stream(s) restored from {}; run `plan` to \
                 check them, then start wadm and the hosts",
                args.from.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_in_out_is_the_start_time() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_769_826_605).unwrap();
        assert_eq!(
            expand_out(std::path::Path::new("/b/nightly-{utc}"), at).unwrap(),
            PathBuf::from("/b/nightly-2026-01-31T023005Z")
        );
        assert_eq!(
            expand_out(std::path::Path::new("/b/x"), at).unwrap(),
            PathBuf::from("/b/x")
        );
    }
}
