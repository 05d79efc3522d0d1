//! `restore` of a whole folder: what exists is looked up first and nothing is restored
//! over it; each stream then goes through [`super::restore`]'s upload.

use serde::Serialize;
use serde_json::Value;

use super::manifest::{self, FolderStream};
use super::progress::Progress;
use super::{restore as upload, stream_info, Api};

/// What restore does (or did, or would do) with one stream.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreItem {
    pub stream: String,
    /// `restored`, `would_restore` (dry run) or `skipped_existing`.
    pub action: &'static str,
    pub messages: u64,
    pub replicas: u64,
    /// The existing stream's message count and creation time, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<Value>,
}

/// How a restore runs.
pub struct RestoreOptions {
    pub dry_run: bool,
    /// `--replicas`: 1, 3 or 5 replaces each stream's `num_replicas`.
    pub replicas: Option<u64>,
    pub skip_existing: bool,
    pub json: bool,
}

/// A stream that exists already, as the refusal names it.
struct Existing {
    stream: String,
    messages: u64,
    created: String,
}

/// Restores a checked folder. Looks every target up first: if any exists (and
/// `--skip-existing` is not given) nothing is restored. Calls `restored` after each
/// stream that was restored, with the server's answer (for audit events).
pub async fn restore(
    api: &Api,
    folder: &manifest::Folder,
    options: &RestoreOptions,
    restored: &mut (dyn FnMut(&FolderStream, &Value) + Send),
) -> Result<Vec<RestoreItem>, String> {
    if let Some(r) = options.replicas {
        if ![1, 3, 5].contains(&r) {
            return Err(format!(
                "--replicas {r}: use 1, 3 or 5 (JetStream replicas are odd, at most 5)"
            ));
        }
    }
    let existing = look_up_existing(api, folder).await?;
    if !existing.is_empty() && !options.skip_existing {
        return Err(refusal(&existing));
    }
    let mut items = skipped_items(folder, &existing, options);
    let todo: Vec<&FolderStream> = folder
        .streams
        .iter()
        .filter(|s| !existing.iter().any(|e| e.stream == s.stream))
        .collect();
    if options.dry_run {
        items.extend(todo.into_iter().map(|s| RestoreItem {
            stream: s.stream.clone(),
            action: "would_restore",
            messages: s.messages,
            replicas: replicas_of(&metadata_for(s, options)),
            existing: None,
        }));
        return Ok(items);
    }
    upload_all(api, &todo, options, restored, &mut items).await?;
    Ok(items)
}

/// The folder's streams that exist on the server, all looked up at once.
async fn look_up_existing(api: &Api, folder: &manifest::Folder) -> Result<Vec<Existing>, String> {
    let lookups = folder
        .streams
        .iter()
        .map(|s| stream_info(api, &s.stream, format!("check whether {} exists", s.stream)));
    let answers = futures::future::join_all(lookups).await;
    let mut existing = Vec::new();
    for (s, info) in folder.streams.iter().zip(answers) {
        if let Some(info) = info? {
            existing.push(Existing {
                stream: s.stream.clone(),
                messages: info["state"]["messages"].as_u64().unwrap_or(0),
                created: info["created"].as_str().unwrap_or("unknown").to_string(),
            });
        }
    }
    Ok(existing)
}

/// The restore request's body for a stream: its `backup.json`, with `--replicas` applied.
fn metadata_for(s: &FolderStream, options: &RestoreOptions) -> Value {
    let mut m = s.metadata.clone();
    if let Some(r) = options.replicas {
        m["config"]["num_replicas"] = Value::from(r);
    }
    m
}

fn replicas_of(metadata: &Value) -> u64 {
    metadata["config"]["num_replicas"].as_u64().unwrap_or(1)
}

/// The `skipped_existing` items (with `--skip-existing`), in the lookup's order.
fn skipped_items(
    folder: &manifest::Folder,
    existing: &[Existing],
    options: &RestoreOptions,
) -> Vec<RestoreItem> {
    existing
        .iter()
        .map(|e| {
            let replicas = folder
                .streams
                .iter()
                .find(|s| s.stream == e.stream)
                .map(|s| replicas_of(&metadata_for(s, options)))
                .unwrap_or(1);
            RestoreItem {
                stream: e.stream.clone(),
                action: "skipped_existing",
                messages: e.messages,
                replicas,
                existing: Some(serde_json::json!({ "messages": e.messages, "created": e.created })),
            }
        })
        .collect()
}

/// Uploads `todo` one stream after the other, with progress, appending a `restored`
/// item for each. On a failure the error says which streams were restored before it.
async fn upload_all(
    api: &Api,
    todo: &[&FolderStream],
    options: &RestoreOptions,
    restored: &mut (dyn FnMut(&FolderStream, &Value) + Send),
    items: &mut Vec<RestoreItem>,
) -> Result<(), String> {
    let total: u64 = todo.iter().map(|s| s.data_bytes).sum();
    let progress = Progress::new("restore", total, options.json);
    for (i, s) in todo.iter().enumerate() {
        progress.stream(&s.stream, i + 1, todo.len());
        let m = metadata_for(s, options);
        let mut on_bytes = |n: u64| progress.add(n);
        let answer = upload::restore_from_file(
            api,
            &s.stream,
            &m,
            &s.data_path,
            s.sha256.as_deref(),
            &mut on_bytes,
        )
        .await
        .map_err(|e| {
            progress.finish();
            with_restored_so_far(e, items)
        })?;
        let messages = answer["state"]["messages"].as_u64().unwrap_or(s.messages);
        let replicas = replicas_of(&answer);
        progress.line(&format!(
            "restored {}: {messages} messages, {replicas} replica(s)",
            s.stream
        ));
        restored(s, &answer);
        items.push(RestoreItem {
            stream: s.stream.clone(),
            action: "restored",
            messages,
            replicas,
            existing: None,
        });
    }
    progress.finish();
    Ok(())
}

/// An upload's error, plus the streams restored before it and the next step.
fn with_restored_so_far(e: String, items: &[RestoreItem]) -> String {
    let done: Vec<&str> = items
        .iter()
        .filter(|i| i.action == "restored")
        .map(|i| i.stream.as_str())
        .collect();
    if done.is_empty() {
        e
    } else {
        format!(
            "{e}\nrestored before the failure: {} (run restore again with \
             --skip-existing to restore the rest)",
            done.join(", ")
        )
    }
}

/// Why restore stops when targets exist, and what to do next.
fn refusal(existing: &[Existing]) -> String {
    let mut m = String::from(
        "nothing was restored: these streams exist, and restore never overwrites, deletes or \
         purges a stream:\n",
    );
    for e in existing {
        m.push_str(&format!(
            "  {}: {} messages, created {}\n",
            e.stream, e.messages, e.created
        ));
    }
    m.push_str(
        "The likeliest cause: the bucket was lost and a wasmCloud host's (or wadm's) start \
         recreated it empty. Next: stop or scale down wadm and the lattice's hosts, check \
         that these streams hold nothing you need (`nats stream info <stream>`), remove them \
         as an admin (`nats stream rm <stream>`), then run restore again; or add \
         --skip-existing to restore only the streams that are missing.",
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_each_stream_and_the_next_step() {
        let m = refusal(&[Existing {
            stream: "KV_CONFIGDATA_default".into(),
            messages: 0,
            created: "2026-01-01T00:00:00Z".into(),
        }]);
        for words in [
            "KV_CONFIGDATA_default: 0 messages, created 2026-01-01T00:00:00Z",
            "recreated it empty",
            "--skip-existing",
            "nothing was restored",
        ] {
            assert!(m.contains(words), "{words}: {m}");
        }
    }
}
