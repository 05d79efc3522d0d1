//! What a failed JetStream call means for the operator: the ADR-32 kind of the reply and
//! the next step, for every error the provisioner's three calls meet (codes as async-nats
//! names them in [`ErrorCode`]).

use async_nats::jetstream::ErrorCode;

use super::{Call, JsError, NOT_CLUSTERED_HINT};
use crate::error::{ErrorKind, ProvisionError};

/// What to change when a storage limit refuses a stream: where the limits are set.
const RAISE_STORAGE: &str =
    "raise the limit (an account's `jetstream { max_file, max_mem }` in the server config, \
     or `nsc edit account --js-disk-storage / --js-mem-storage` in operator mode; a server's \
     `jetstream { max_file_store, max_memory_store }`), free space by removing streams you \
     no longer need, or give the provisioner's resources a smaller max_bytes (--max-bytes or \
     `max_bytes` in its config file; at least 1 MiB). Every replica of a stream counts";

impl JsError {
    /// Turns the error of `call` into an operator-facing reply error.
    pub fn explain(&self, call: Call<'_>, domain: Option<&str>) -> ProvisionError {
        let action = &call.action();
        let subject = &call.subject();
        let where_js = match domain {
            Some(d) => format!("JetStream domain `{d}`"),
            None => "JetStream".to_string(),
        };
        match self {
            JsError::NoResponders => ProvisionError::unavailable(format!(
                "{where_js} is not available to the provisioner's account (no responders on \
                 {subject}): enable JetStream on the server (`-js` or a `jetstream {{}}` block) \
                 and for the account, and check --js-domain"
            )),
            JsError::TimedOut => timed_out(&call, &where_js),
            JsError::Other(msg) => {
                ProvisionError::unavailable(format!("could not {action}: {msg}"))
            }
            JsError::Api {
                code,
                err_code,
                description,
            } => {
                let (kind, hint) = quorum(ErrorCode(*err_code), description)
                    .or_else(|| limits(ErrorCode(*err_code)))
                    .unwrap_or_else(|| other(*err_code, *code, description, subject));
                ProvisionError::new(
                    kind,
                    format!(
                        "could not {action}: {description} (JetStream error {err_code}): {hint}"
                    ),
                )
            }
        }
    }
}

/// No answer in time: for a change, its outcome is open (and repeating it is safe).
fn timed_out(call: &Call<'_>, where_js: &str) -> ProvisionError {
    let (action, subject) = (call.action(), call.subject());
    let silent = format!(
        "JetStream may have no quorum (check that a majority of the cluster's JetStream \
         servers is up and `nats server report jetstream` shows a meta leader), or the \
         provisioner's user may not publish to `{subject}` (check the server log for a \
         permissions violation)"
    );
    ProvisionError::unavailable(if call.changes() {
        // A replicated stream answers its create or update only once its Raft group has a
        // leader; when the first election misfires, nats-server holds the next one after an
        // election timeout of 4 to 9 s. The change then still completes.
        format!(
            "{where_js} did not answer in time to {action}; it may still complete, and \
             repeating the request is safe (it finds the stream and reports it). A replicated \
             stream answers only once it has a leader, which can take about 10 s when its \
             first election fails: if this recurs, raise --js-timeout. If it stays silent, \
             {silent}"
        )
    } else {
        format!("{where_js} did not answer in time to {action}: {silent}")
    })
}

/// JetStream (or the stream's group) is off, has no quorum, or is too small.
fn quorum(code: ErrorCode, description: &str) -> Option<(ErrorKind, String)> {
    let (kind, hint) = match code {
        ErrorCode::CLUSTER_NOT_AVAILABLE => (
            ErrorKind::Unavailable,
            "JetStream has no quorum (no meta leader): bring a majority of the cluster's \
             JetStream servers back, then retry",
        ),
        ErrorCode::JETSTREAM_NOT_ENABLED | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT => (
            ErrorKind::Unavailable,
            "enable JetStream on the server and for the provisioner's account",
        ),
        ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED => (ErrorKind::Conflict, NOT_CLUSTERED_HINT),
        // Placement counts offline servers as candidates but needs a majority of the
        // replicas online: "peer offline" means quorum, not cluster size.
        ErrorCode::CLUSTER_NO_PEERS if description.contains("offline") => (
            ErrorKind::Unavailable,
            "JetStream has no quorum for this stream: fewer than a majority of the servers it \
             would be placed on are up (or, in a cluster that has just started, have reported \
             in yet); bring the cluster's JetStream servers back, then retry",
        ),
        ErrorCode::STREAM_OFFLINE => (
            ErrorKind::Unavailable,
            "every JetStream server holding this stream is down, so JetStream has no quorum \
             for it: bring those servers back, then retry",
        ),
        ErrorCode::CLUSTER_NO_PEERS => (
            ErrorKind::Conflict,
            "the cluster has too few JetStream servers (matching the placement) for the \
             replicas asked for: lower the replicas, relax the placement, or add servers",
        ),
        _ => return None,
    };
    Some((kind, hint.to_string()))
}

/// The account's or server's limits leave no room, or constrain the stream's size.
fn limits(code: ErrorCode) -> Option<(ErrorKind, String)> {
    let room = |what: &str| {
        (
            ErrorKind::InsufficientStorage,
            format!("{what}: {RAISE_STORAGE}"),
        )
    };
    Some(match code {
        ErrorCode::STORAGE_RESOURCES_EXCEEDED | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED => room(
            "the account's JetStream file storage limit has no room left for this stream's \
             max_bytes",
        ),
        ErrorCode::MEMORY_RESOURCES_EXCEEDED => room(
            "the account's JetStream memory limit has no room left for this stream's max_bytes",
        ),
        ErrorCode::INSUFFICIENT_RESOURCES => {
            room("the JetStream server (or cluster) has no room left for this stream")
        }
        ErrorCode::MAXIMUM_STREAMS_LIMIT => (
            ErrorKind::InsufficientStorage,
            "the account has as many streams as its JetStream limit allows: raise \
             `max_streams` (`jetstream { max_streams }` of the account, or `nsc edit account \
             --js-streams`); every lattice needs 2 streams, wadm 6 and 2 buckets"
                .to_string(),
        ),
        ErrorCode::STREAM_MAX_BYTES_REQUIRED => (
            ErrorKind::Conflict,
            "the account requires every stream to have a size limit (`max_bytes_required`): \
             set one for the provisioner's resources with --max-bytes or `max_bytes` in its \
             config file (at least 1 MiB), or lift the requirement"
                .to_string(),
        ),
        ErrorCode::STREAM_MAX_STREAM_BYTES_EXCEEDED => (
            ErrorKind::Conflict,
            "the stream's max_bytes is larger than the account allows for one stream \
             (`disk_max_stream_bytes` / `mem_max_stream_bytes`, or `nsc edit account \
             --js-max-disk-stream / --js-max-mem-stream`): lower --max-bytes (or `max_bytes` \
             in the config file), or raise the account's per-stream maximum"
                .to_string(),
        ),
        ErrorCode::NO_LIMITS => (
            ErrorKind::Conflict,
            "the account has JetStream limits for other replica counts only (tiered limits): \
             add a tier for this stream's replicas to the account, or ask for replicas it has \
             a tier for"
                .to_string(),
        ),
        _ => return None,
    })
}

/// Conflicts with other streams, permissions, and what nobody expected.
fn other(err_code: u64, code: u64, description: &str, subject: &str) -> (ErrorKind, String) {
    match ErrorCode(err_code) {
        ErrorCode::STREAM_SUBJECT_OVERLAP => (
            ErrorKind::Conflict,
            "another stream already captures these subjects: find it with `nats stream ls` \
             and remove the overlap by hand"
                .to_string(),
        ),
        ErrorCode::STREAM_NAME_EXIST => (
            ErrorKind::Conflict,
            "a stream of this name exists with another config; run `plan` to see how it \
             differs"
                .to_string(),
        ),
        _ if code == 503 => (
            ErrorKind::Unavailable,
            "JetStream is temporarily unavailable; retry".to_string(),
        ),
        _ if code == 403 || description.contains("permission") => (
            ErrorKind::Forbidden,
            format!("grant the provisioner's user publish on `{subject}`"),
        ),
        _ => (
            ErrorKind::Internal,
            "unexpected JetStream error; see the server log".to_string(),
        ),
    }
}
