//! The `.creds` file: its text, and writing it readable by its owner only.

use crate::config_error::ConfigError;
use std::io::Write;
use std::path::Path;

/// The text of a `.creds` file, byte for byte what nats-io/jwt's `FormatUserConfig`
/// (and so `nsc generate creds`) writes.
pub fn format_creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// Writes a `.creds` file readable by its owner only, atomically.
///
/// The file is written to a new temporary file in the same directory (created exclusively,
/// mode 0600, so no other user can open it even for a moment) and then moved into place:
/// - with `overwrite`, by `rename`, which replaces whatever is at `path` (a file of any
///   mode, or a symbolic link: the link itself is replaced, never the file it points to);
/// - without it, by `link`, which refuses an existing `path` of any kind (a dangling
///   symbolic link included), so an existing secret is never replaced by accident.
///
/// Either the old file or the complete new one is at `path`, never a truncated or
/// world-readable mix; on an error the temporary file is removed.
pub fn write_creds(path: &Path, contents: &str, overwrite: bool) -> Result<(), ConfigError> {
    let exists_error = || {
        ConfigError::File(format!(
            "{} exists; give --force to replace it, or another --out",
            path.display()
        ))
    };
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists_error());
    }
    let file_name = path.file_name().ok_or_else(|| {
        ConfigError::File(format!("--out {} does not name a file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (temp, mut file) = create_temp_file(dir, file_name)?;
    // From here on, every error removes the temporary file.
    let result = (|| {
        let written = file
            .write_all(contents.as_bytes())
            .and_then(|()| file.sync_all());
        written.map_err(|e| ConfigError::File(format!("cannot write {}: {e}", temp.display())))?;
        drop(file);
        if overwrite {
            std::fs::rename(&temp, path)
                .map_err(|e| ConfigError::File(format!("cannot replace {}: {e}", path.display())))
        } else {
            std::fs::hard_link(&temp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists_error()
                } else {
                    ConfigError::File(format!("cannot write {}: {e}", path.display()))
                }
            })
        }
    })();
    // After a rename there is nothing left to remove; after a link, the second name goes.
    let _ = std::fs::remove_file(&temp);
    result?;
    // The new directory entry survives a crash (best effort: not every filesystem lets a
    // directory be synced).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new, empty file next to the destination, created exclusively (`O_CREAT|O_EXCL`, which
/// also refuses to follow a symbolic link planted at its name) with mode 0600.
fn create_temp_file(
    dir: &Path,
    file_name: &std::ffi::OsStr,
) -> Result<(std::path::PathBuf, std::fs::File), ConfigError> {
    let mut last_error = None;
    for _ in 0..8 {
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.tmp", nuid::next()));
        let temp = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&temp) {
            Ok(file) => {
                // The umask can only take bits away; this makes it exactly 0600.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                        let _ = std::fs::remove_file(&temp);
                        return Err(ConfigError::File(format!(
                            "cannot restrict {}: {e}",
                            temp.display()
                        )));
                    }
                }
                return Ok((temp, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(ConfigError::File(format!(
                    "cannot create a file in {} for the new credentials: {e}",
                    dir.display()
                )))
            }
        }
    }
    Err(ConfigError::File(format!(
        "cannot create a file in {} for the new credentials: {}",
        dir.display(),
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )))
}
