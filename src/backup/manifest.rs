//! The backup folder: natscli's layout plus a manifest of our own, and the checks
//! `restore` makes on a folder before it sends anything.
//!
//! Layout (as `nats account backup` writes it, so natscli restores what we write and we
//! restore what natscli wrote):
//!
//! ```text
//! <dir>/backup-manifest.json        ours: versions, domain, time, per-stream checksums
//! <dir>/<stream>/backup.json        {"config", "state"} as the snapshot reply gave them
//! <dir>/<stream>/stream.tar.s2      the chunks as received (the server's archive, opaque)
//! ```
//!
//! While a backup runs, its folder has a temporary name beside the target and holds
//! [`INCOMPLETE_MARKER`]; it gets its final name only once every stream ended complete.
//! `restore` refuses a folder holding the marker, so a leftover of a killed run is never
//! mistaken for a backup, even if someone renames it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::api::valid_stream_name;

/// Our manifest's file name, beside the stream folders.
pub const MANIFEST_FILE: &str = "backup-manifest.json";
/// The snapshot reply's config and state, per stream (natscli's name).
pub const METADATA_FILE: &str = "backup.json";
/// The stream's data, per stream (natscli's name).
pub const DATA_FILE: &str = "stream.tar.s2";
/// Present while a backup is being written; a folder holding it is not a backup.
pub const INCOMPLETE_MARKER: &str = "BACKUP-INCOMPLETE";
/// Largest manifest or `backup.json` read: far above any real one (a stream config and
/// state are a few KiB; the server refuses a restore request above its max payload), so
/// a hostile folder cannot make `restore` read gigabytes into memory.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a small JSON file of the folder, refusing one larger than [`MAX_JSON_BYTES`] and
/// anything that is not a regular file. The size is also bounded while reading: a
/// character device or a FIFO (`backup.json -> /dev/zero`) reports length 0 and would
/// otherwise be read forever, or block.
fn read_small(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = meta.len();
    if !meta.is_file() || len > MAX_JSON_BYTES {
        return Err(format!(
            "{} is {}: too large or not a regular file to be a backup's metadata; this is not \
             a backup folder",
            path.display(),
            if meta.is_file() {
                format!("{len} bytes")
            } else {
                "not a file".to_string()
            }
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_JSON_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_JSON_BYTES {
        return Err(format!(
            "{} grew beyond {MAX_JSON_BYTES} bytes while it was read; this is not a backup \
             folder",
            path.display()
        ));
    }
    Ok(text)
}

/// The `format` of our manifest; bumped when a field changes meaning.
pub const FORMAT: &str = "wasmcloud-provisioner/backup/v1";

/// `backup-manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub tool: Tool,
    pub server: Server,
    /// The JetStream domain the streams were read from (`null`: none).
    pub js_domain: Option<String>,
    /// When the backup started and finished (RFC 3339, UTC). Each stream is consistent
    /// on its own; there is no point in time across streams.
    pub started: String,
    pub finished: String,
    pub streams: Vec<StreamEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The server the backup was taken from (its `INFO` on connect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub version: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// One stream of the backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// The JetStream stream (`KV_CONFIGDATA_default`); also its folder's name.
    pub stream: String,
    /// Bucket or stream name as users know it (`CONFIGDATA_default`).
    pub name: String,
    /// `kv` or `stream`.
    pub kind: String,
    /// The catalog row (`configdata`), when the stream is one of the catalog's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_key: Option<String>,
    /// The stream's state in the snapshot reply.
    pub messages: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Bytes the stream held (uncompressed, as the server counts them).
    pub bytes: u64,
    /// Size of `stream.tar.s2`, and its SHA-256 (lower-case hex).
    pub data_bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One stream of a folder to restore, checked.
#[derive(Debug, Clone)]
pub struct FolderStream {
    pub stream: String,
    /// `backup.json`: the body of the restore request.
    pub metadata: Value,
    pub data_path: PathBuf,
    pub data_bytes: u64,
    /// From our manifest; `None` for a natscli folder (nothing to check against).
    pub sha256: Option<String>,
    pub messages: u64,
}

/// A folder ready to restore: every file checked as far as the folder allows.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    /// `None` for a folder natscli wrote.
    pub manifest: Option<Manifest>,
    pub streams: Vec<FolderStream>,
}

/// SHA-256 of a file, read in 1 MiB blocks (bounded memory, few system calls), as
/// lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks a folder for `restore`, before anything is sent: with our manifest,
/// every listed stream's files exist, `backup.json` names the stream, and the data file
/// has the recorded size and SHA-256, and no stream folder is unlisted; without it (a
/// natscli backup: one `<stream>/` per stream, or the two files of `nats stream backup`
/// directly in the folder), `backup.json` parses, names its folder's stream, and the data
/// file is not empty.
pub fn read_folder(dir: &Path) -> Result<Folder, String> {
    check_finished_folder(dir)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    if manifest_path.exists() {
        read_our_folder(dir, &manifest_path)
    } else {
        read_natscli_folder(dir)
    }
}

/// `dir` is a folder and not the leftover of an interrupted backup.
fn check_finished_folder(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let meta =
        std::fs::metadata(dir).map_err(|e| format!("cannot read backup folder {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!(
            "{shown} is not a folder: give the folder `backup` wrote"
        ));
    }
    if dir.join(INCOMPLETE_MARKER).exists() {
        return Err(format!(
            "{shown} is an unfinished backup (it holds {INCOMPLETE_MARKER}: the run that wrote \
             it was interrupted or failed); restore from a complete backup instead"
        ));
    }
    Ok(())
}

/// A folder with our manifest: the manifest is ours and of this format, every listed
/// stream is there and intact, and nothing unlisted is.
fn read_our_folder(dir: &Path, manifest_path: &Path) -> Result<Folder, String> {
    let shown = dir.display();
    let manifest = read_manifest(manifest_path)?;
    let mut streams: Vec<FolderStream> = Vec::new();
    for entry in &manifest.streams {
        // Listed twice, the second restore would fail on the first's stream with a
        // message blaming a host or wadm, after the first was restored.
        if streams.iter().any(|s| s.stream == entry.stream) {
            return Err(format!(
                "{} lists {} twice: the manifest was changed after the backup; nothing \
                 was restored",
                manifest_path.display(),
                entry.stream
            ));
        }
        streams.push(check_listed_stream(dir, entry)?);
    }
    for sub in subfolders(dir)? {
        if !manifest.streams.iter().any(|e| e.stream == sub) {
            return Err(format!(
                "{shown}/{sub} is not listed in {MANIFEST_FILE}: the folder was changed \
                 after the backup; remove what does not belong to it"
            ));
        }
    }
    if streams.is_empty() {
        return Err(format!("{shown}: the manifest lists no stream"));
    }
    Ok(Folder {
        dir: dir.to_path_buf(),
        manifest: Some(manifest),
        streams,
    })
}

/// Parses `backup-manifest.json`, refusing another tool's file or another format.
fn read_manifest(manifest_path: &Path) -> Result<Manifest, String> {
    let text = read_small(manifest_path)?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a wasmcloud-provisioner backup manifest: {e}",
            manifest_path.display()
        )
    })?;
    if manifest.format != FORMAT {
        return Err(format!(
            "{} has format {:?}; this version reads {FORMAT:?}: use the \
             wasmcloud-provisioner version that wrote it",
            manifest_path.display(),
            manifest.format
        ));
    }
    Ok(manifest)
}

/// One stream the manifest lists: its files check out, and its data file has the
/// recorded size and SHA-256.
fn check_listed_stream(dir: &Path, entry: &StreamEntry) -> Result<FolderStream, String> {
    let s = check_stream(dir, &dir.join(&entry.stream), &entry.stream)?;
    if s.data_bytes != entry.data_bytes {
        return Err(format!(
            "{}: {} bytes, the manifest recorded {}: the file was truncated or changed \
             after the backup; nothing was restored",
            s.data_path.display(),
            s.data_bytes,
            entry.data_bytes
        ));
    }
    let sum = sha256_file(&s.data_path)
        .map_err(|e| format!("cannot read {}: {e}", s.data_path.display()))?;
    if !sum.eq_ignore_ascii_case(&entry.sha256) {
        return Err(format!(
            "{}: SHA-256 {sum} does not match the manifest's {}: the file is corrupted \
             or not the one backed up; nothing was restored",
            s.data_path.display(),
            entry.sha256
        ));
    }
    Ok(FolderStream {
        sha256: Some(sum),
        messages: entry.messages,
        ..s
    })
}

/// A natscli folder: `nats stream backup` (the two files directly in `dir`) or
/// `nats account backup` (one `<stream>/` per stream).
fn read_natscli_folder(dir: &Path) -> Result<Folder, String> {
    let streams = if dir.join(METADATA_FILE).exists() {
        let name = stream_name_of(&dir.join(METADATA_FILE))?;
        vec![check_stream(dir, dir, &name)?]
    } else {
        let mut streams = Vec::new();
        for sub in subfolders(dir)? {
            streams.push(check_stream(dir, &dir.join(&sub), &sub)?);
        }
        streams
    };
    if streams.is_empty() {
        return Err(format!(
            "{} holds no backup: neither {MANIFEST_FILE} nor a <stream>/{METADATA_FILE}",
            dir.display()
        ));
    }
    Ok(Folder {
        dir: dir.to_path_buf(),
        manifest: None,
        streams,
    })
}

/// The folder names directly under `dir`, sorted (hidden ones skipped).
fn subfolders(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn stream_name_of(metadata_path: &Path) -> Result<String, String> {
    let v = read_metadata(metadata_path)?;
    Ok(v["config"]["name"].as_str().unwrap_or_default().to_string())
}

fn read_metadata(path: &Path) -> Result<Value, String> {
    let text = read_small(path)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    if !v["config"].is_object() {
        return Err(format!(
            "{} has no stream `config`: it is not a JetStream backup",
            path.display()
        ));
    }
    Ok(v)
}

/// Checks one stream folder: a valid name, `backup.json` naming it, a non-empty data
/// file, and a stored config that is not memory storage.
fn check_stream(root: &Path, folder: &Path, stream: &str) -> Result<FolderStream, String> {
    if !valid_stream_name(stream) {
        return Err(format!(
            "{}: {stream:?} is not a valid stream name (no `.`, `*`, `>`, `/`, spaces); this \
             is not a backup folder",
            root.display()
        ));
    }
    let metadata_path = folder.join(METADATA_FILE);
    let metadata = read_metadata(&metadata_path)?;
    let named = metadata["config"]["name"].as_str().unwrap_or_default();
    if named != stream {
        return Err(format!(
            "{} is for stream {named:?}, but its folder is {stream:?}: a restore cannot rename \
             a stream; put each backup.json in the folder of its own stream",
            metadata_path.display()
        ));
    }
    let data_path = folder.join(DATA_FILE);
    let data = std::fs::metadata(&data_path)
        .map_err(|e| format!("cannot read {}: {e}", data_path.display()))?;
    if !data.is_file() || data.len() == 0 {
        return Err(format!(
            "{} is empty or not a file: the backup of {stream} is incomplete",
            data_path.display()
        ));
    }
    Ok(FolderStream {
        stream: stream.to_string(),
        messages: metadata["state"]["messages"].as_u64().unwrap_or(0),
        metadata,
        data_path,
        data_bytes: data.len(),
        sha256: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_metadata_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join(MANIFEST_FILE)).unwrap();
        f.set_len(MAX_JSON_BYTES + 1).unwrap();
        let err = read_folder(dir.path()).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn a_metadata_file_that_is_a_device_is_refused_without_reading_it() {
        // Without the check this reads /dev/zero until memory runs out.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(MANIFEST_FILE)).unwrap();
        let err = read_folder(dir.path()).unwrap_err();
        assert!(err.contains("not a file"), "{err}");
        let natscli = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", natscli.path().join(METADATA_FILE)).unwrap();
        let err = read_folder(natscli.path()).unwrap_err();
        assert!(err.contains("not a file"), "{err}");
    }

    #[test]
    fn a_stream_listed_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("KV_X");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join(METADATA_FILE), r#"{"config":{"name":"KV_X"}}"#).unwrap();
        std::fs::write(folder.join(DATA_FILE), b"data").unwrap();
        let entry = StreamEntry {
            stream: "KV_X".into(),
            name: "X".into(),
            kind: "kv".into(),
            catalog_key: None,
            messages: 1,
            first_seq: 1,
            last_seq: 1,
            bytes: 4,
            data_bytes: 4,
            sha256: sha256_file(&folder.join(DATA_FILE)).unwrap(),
        };
        let mut manifest = Manifest {
            format: FORMAT.into(),
            tool: Tool {
                name: "t".into(),
                version: "0".into(),
            },
            server: Server {
                version: "2.12.8".into(),
                name: "n".into(),
                cluster: None,
            },
            js_domain: None,
            started: String::new(),
            finished: String::new(),
            streams: vec![entry.clone()],
        };
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest.to_json()).unwrap();
        assert_eq!(read_folder(dir.path()).unwrap().streams.len(), 1);
        manifest.streams.push(entry);
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest.to_json()).unwrap();
        let err = read_folder(dir.path()).unwrap_err();
        assert!(err.contains("lists KV_X twice"), "{err}");
    }

    #[test]
    fn a_folder_without_a_backup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_folder(dir.path()).unwrap_err();
        assert!(err.contains("holds no backup"), "{err}");
        std::fs::write(dir.path().join(INCOMPLETE_MARKER), "").unwrap();
        let err = read_folder(dir.path()).unwrap_err();
        assert!(err.contains("unfinished backup"), "{err}");
    }
}
