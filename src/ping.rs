//! `wasmcloud-provisioner ping`: a liveness check that asks the service itself.
//!
//! A Kubernetes liveness probe of one pod must learn whether **that pod's** process still
//! serves, not whether some instance does: `$SRV.PING.wasmcloud-provisioner` is answered by
//! every instance, so a wedged pod would pass as long as its sibling lives. Each instance
//! has an id (the Services API's, chosen at start), so `serve --id-file <file>` writes its id
//! to a file once every endpoint is registered, and `ping --self-file <file>` in the same
//! pod sends `$SRV.PING.wasmcloud-provisioner.<id>`: only that process can answer, through
//! the NATS server, so an answer proves that the process runs, its runtime schedules work
//! and its service connection is up. (Not more: the endpoints are one queue group, so no
//! provisioning request can be addressed to one instance.)
//! Without `--self-file` (or `--id`), any instance's answer counts.
//!
//! The file is written whole (a temporary file renamed over it) and removed when `serve`
//! stops, so a probe never reads half an id or pings a process that has exited.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{self, Resolved};
use crate::config_error::ConfigError;
use crate::subjects::SERVICE_NAME;

/// Longest id accepted from a file or flag: the Services API's ids are 22-character NUIDs.
const MAX_ID_LEN: usize = 64;

/// `ping`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PingArgs {
    /// The file `serve --id-file` wrote: ping that instance only
    #[arg(long, conflicts_with = "id")]
    pub self_file: Option<std::path::PathBuf>,
    /// Ping the instance with this id only (as `nats micro ls` shows it)
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds to wait for an answer, connecting included
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// Print the PING reply as JSON
    #[arg(long)]
    pub json: bool,
}

/// Checks an instance id before it becomes part of a subject: a file's content is input.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ConfigError::Invalid(format!(
            "an instance id is 1 to {MAX_ID_LEN} characters; got {}",
            id.len()
        )));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        let shown: String = id.chars().take(MAX_ID_LEN).collect();
        return Err(ConfigError::Invalid(format!(
            "instance id {shown:?} has characters outside A-Z, a-z, 0-9, `_` and `-`"
        )));
    }
    Ok(())
}

/// Writes `id` to `path` whole: a temporary file beside it, renamed over it.
pub fn write_id_file(path: &Path, id: &str) -> Result<(), ConfigError> {
    validate_id(id)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            ConfigError::File(format!(
                "cannot write the instance id file {}: {e} (the directory must exist and be \
                 writable: on a read-only root filesystem mount an emptyDir there)",
                path.display()
            ))
        })
}

/// Reads and checks the id `serve --id-file` wrote.
pub fn read_id_file(path: &Path) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::File(format!(
            "cannot read the instance id file {}: {e} (is `serve --id-file {}` running, and \
             has it registered yet?)",
            path.display(),
            path.display()
        ))
    })?;
    // Not a regular file (`/dev/zero`, a FIFO) reports length 0: without this check it
    // was read forever, and the liveness probe hung instead of failing.
    if !meta.is_file() || meta.len() > 1024 {
        return Err(ConfigError::Invalid(format!(
            "the instance id file {} is {}: it is not one `serve` wrote",
            path.display(),
            if meta.is_file() {
                format!("{} bytes", meta.len())
            } else {
                "not a regular file".to_string()
            }
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| {
                ConfigError::File(format!(
                    "cannot read the instance id file {}: {e}",
                    path.display()
                ))
            })?,
            1025,
        ),
        &mut text,
    )
    .map_err(|e| {
        ConfigError::File(format!(
            "cannot read the instance id file {}: {e}",
            path.display()
        ))
    })?;
    let id = text.trim();
    validate_id(id).map_err(|e| e.within(format!("the instance id file {}", path.display())))?;
    Ok(id.to_string())
}

/// Removes the id file at shutdown, if it still names `id` (another process may have
/// started since and written its own).
pub fn remove_id_file(path: &Path, id: &str) {
    if std::fs::read_to_string(path).is_ok_and(|t| t.trim() == id) {
        let _ = std::fs::remove_file(path);
    }
}

/// Runs `ping`: exit code 0 when the instance (or any instance) answered in time.
pub async fn run(resolved: &Resolved, args: PingArgs) -> Result<u8, ConfigError> {
    let id = match (&args.self_file, &args.id) {
        (Some(file), _) => Some(read_id_file(file)?),
        (None, Some(id)) => {
            validate_id(id)?;
            Some(id.clone())
        }
        (None, None) => None,
    };
    let subject = match &id {
        Some(id) => format!("$SRV.PING.{SERVICE_NAME}.{id}"),
        None => format!("$SRV.PING.{SERVICE_NAME}"),
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let started = Instant::now();
    let reply = tokio::time::timeout(timeout, ping(resolved, &subject))
        .await
        .map_err(|_| {
            ConfigError::Connect(format!(
                "no answer on {subject} at {} within {} s: {}",
                resolved.servers,
                timeout.as_secs(),
                match &id {
                    Some(_) => "this instance is not serving (or NATS is unreachable)",
                    None => "no instance is serving (or NATS is unreachable)",
                }
            ))
        })??;
    if reply["name"] != SERVICE_NAME || id.as_ref().is_some_and(|id| reply["id"] != *id) {
        return Err(ConfigError::Invalid(format!(
            "{subject} was answered by {} {}, not by {SERVICE_NAME}{}",
            reply["name"],
            reply["id"],
            id.map(|i| format!(" {i}")).unwrap_or_default()
        )));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else {
        println!(
            "{SERVICE_NAME} {} (version {}) answered in {} ms",
            reply["id"].as_str().unwrap_or("?"),
            reply["version"].as_str().unwrap_or("?"),
            started.elapsed().as_millis()
        );
    }
    Ok(0)
}

async fn ping(resolved: &Resolved, subject: &str) -> Result<Value, ConfigError> {
    let client = config::connect(resolved, "wasmcloud-provisioner-ping", None).await?;
    // No responders comes back at once; keep asking until the caller's timeout, since a
    // service that is reconnecting answers a moment later.
    loop {
        match client.request(subject.to_string(), "".into()).await {
            Ok(reply) => {
                return serde_json::from_slice(&reply.payload).map_err(|e| {
                    ConfigError::Connect(format!("the PING reply on {subject} is not JSON: {e}"))
                })
            }
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(ConfigError::Connect(format!(
                    "the PING on {subject} failed: {e}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_files_are_checked_before_they_become_subjects() {
        assert!(validate_id("Yb8JyKqHdNzL3TMwQ6bG1x").is_ok());
        for bad in ["", "a.b", "a b", "*", ">", &"x".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        write_id_file(&path, "abc").unwrap();
        assert_eq!(read_id_file(&path).unwrap(), "abc");
        std::fs::write(&path, "a.>\n").unwrap();
        assert!(read_id_file(&path).is_err());
        std::fs::write(&path, "abc\n").unwrap();
        remove_id_file(&path, "other");
        assert!(path.exists(), "another instance's file stays");
        remove_id_file(&path, "abc");
        assert!(!path.exists());
        let err = read_id_file(&path).unwrap_err();
        assert!(err.to_string().contains("--id-file"), "{err}");
        // A device reports length 0; it is refused, not read forever.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_id_file(&zero).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
