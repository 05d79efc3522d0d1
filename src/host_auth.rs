//! Who a host is and whether it may bootstrap: host keys, signatures, trusted keys and the
//! lattices each is bound to (the `serve` flags `--require-signed-hosts`,
//! `--trusted-host-key`, `--trusted-host-keys-file`, `--host-signature-max-age`).
//!
//! Below the endpoints and the policy, so that `endpoints/host.rs` (the wire), `policy`
//! (the lattice rules) and `client` (the host's side: signing) share one definition
//! without importing each other.
//!
//! ## Proof of possession
//! With `serve --require-signed-hosts` (implied by `--trusted-host-key`), a request must
//! carry header [`SIGNATURE_HEADER`]: the Ed25519 signature of the **exact body bytes** by
//! the host's nkey (the seed behind `host_id`), base64url without padding. The body must
//! then also carry `issued_at` (Unix seconds) within `--host-signature-max-age` of the
//! service's clock and, on the scoped subject, name its `lattice`, since the signature
//! covers the body only. A signature that is present is always checked, required or not.
//!
//! Replay: a captured signed request can be sent again until `issued_at` is too old. That
//! is bounded but not prevented: a replay only repeats the same idempotent ensure of the
//! same lattice for the same host (the service never deletes anything), so the window
//! limits what a captured request is worth instead of tracking nonces across instances.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::error::{ErrorKind, ProvisionError};
use crate::names;
use crate::request::HostRequest;

use crate::subjects::SIGNATURE_HEADER;

/// Host bootstrap flags (for `serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HostAuthArgs {
    /// Host bootstrap requests must be signed by the host's key (header
    /// Wasmcloud-Host-Signature, a fresh `issued_at`); 403 otherwise
    #[arg(long)]
    pub require_signed_hosts: bool,
    /// Accept host bootstrap requests only from this host public key (N…; repeatable;
    /// implies --require-signed-hosts). `N…=tenant-a,tenant-a-*` binds the key to the
    /// lattices matching those globs: it cannot bootstrap any other lattice
    #[arg(long = "trusted-host-key")]
    pub trusted_host_keys: Vec<String>,
    /// File of trusted host public keys, one per line (`N…` or `N…=glob,glob` as for
    /// --trusted-host-key), `#` comments (implies --require-signed-hosts)
    #[arg(long)]
    pub trusted_host_keys_file: Option<PathBuf>,
    /// Largest age in seconds of a signed request's `issued_at` (at most 30 s ahead of
    /// the service's clock is accepted) [default: 300]
    #[arg(long)]
    pub host_signature_max_age: Option<u64>,
}

/// The default of `--host-signature-max-age`.
pub const DEFAULT_HOST_SIGNATURE_MAX_AGE: u64 = 300;

/// `[hosts]` in the config file: the host bootstrap flags of `serve`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileHosts {
    /// `--require-signed-hosts`.
    pub require_signed: bool,
    /// `--trusted-host-key`, each `N…` or `N…=glob,glob`.
    pub trusted_keys: Vec<String>,
    /// `--trusted-host-keys-file`.
    pub trusted_keys_file: Option<PathBuf>,
    /// `--host-signature-max-age`, seconds.
    pub signature_max_age: Option<u64>,
}

impl HostAuthArgs {
    /// The flags where given, the config file's `[hosts]` otherwise (per setting; a
    /// signature required by either is required).
    pub fn or_file(&self, file: &FileHosts) -> HostAuthArgs {
        HostAuthArgs {
            require_signed_hosts: self.require_signed_hosts || file.require_signed,
            trusted_host_keys: if self.trusted_host_keys.is_empty() {
                file.trusted_keys.clone()
            } else {
                self.trusted_host_keys.clone()
            },
            trusted_host_keys_file: self
                .trusted_host_keys_file
                .clone()
                .or(file.trusted_keys_file.clone()),
            host_signature_max_age: self.host_signature_max_age.or(file.signature_max_age),
        }
    }
}

/// Who may bootstrap a host.
#[derive(Debug, Clone)]
pub struct HostAuth {
    /// Requests must carry a valid signature by `host_id` and a fresh `issued_at`.
    pub require_signed: bool,
    /// When set, only these host public keys are served (signatures are then required).
    pub trusted: Option<HashSet<String>>,
    /// Largest distance between `issued_at` and the service's clock.
    pub max_age: Duration,
    /// Trusted keys bound to lattices: a key listed here may bootstrap only lattices
    /// matching one of its globs (a key trusted for tenant A cannot bootstrap tenant B).
    /// Keys not listed are bound to nothing and may bootstrap any served lattice.
    pub lattices: HashMap<String, Vec<String>>,
}

impl Default for HostAuth {
    fn default() -> Self {
        HostAuth {
            require_signed: false,
            trusted: None,
            max_age: Duration::from_secs(300),
            lattices: HashMap::new(),
        }
    }
}

/// How far ahead of the service's clock a signed request's `issued_at` may be: clock skew
/// between well-run machines, far less than the max age (a request issued in the future
/// could otherwise be replayed for its lead plus the max age).
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(30);

/// Checks that `host_id` is an nkey server public key (`N…`, with a valid checksum).
pub fn validate_host_id(host_id: &str) -> Result<(), ProvisionError> {
    let shown: String = host_id.chars().take(60).collect();
    let kp = nkeys::KeyPair::from_public_key(host_id).map_err(|e| {
        ProvisionError::bad_request(format!(
            "host_id {shown:?} is not a valid nkey public key ({e}): send the host's server \
             public key, 56 characters starting with N (the host ID the host logs at start)"
        ))
    })?;
    if kp.key_pair_type() != nkeys::KeyPairType::Server {
        return Err(ProvisionError::bad_request(format!(
            "host_id {shown:?} is a {:?} key, not a server key: send the host's server public \
             key (it starts with N)",
            kp.key_pair_type()
        )));
    }
    Ok(())
}

/// Signs a request body with a host's key: the [`SIGNATURE_HEADER`] value.
pub fn sign(host_key: &nkeys::KeyPair, body: &[u8]) -> Result<String, String> {
    let signature = host_key
        .sign(body)
        .map_err(|e| format!("cannot sign with the host key (is it a seed?): {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
}

fn forbidden(message: String) -> ProvisionError {
    ProvisionError::new(ErrorKind::Forbidden, message)
}

/// Applies the service's host policy: whether a signature is needed and valid, whether the
/// key is trusted and the request fresh. Returns whether the request was signed.
pub fn authenticate(
    auth: &HostAuth,
    request: &HostRequest,
    body: &[u8],
    signature: Option<&str>,
    now: SystemTime,
) -> Result<bool, ProvisionError> {
    if let Some(trusted) = &auth.trusted {
        if !trusted.contains(&request.host_id) {
            return Err(forbidden(format!(
                "host {} is not among this provisioner's trusted host keys: ask its operator \
                 to add the key with --trusted-host-key or to --trusted-host-keys-file",
                request.host_id
            )));
        }
    }
    let Some(signature) = signature else {
        if auth.require_signed {
            return Err(forbidden(format!(
                "this provisioner requires signed host requests: sign the exact body bytes \
                 with the host's nkey seed and send the signature, base64url-encoded, in the \
                 {SIGNATURE_HEADER} header (with `issued_at` in the body)"
            )));
        }
        return Ok(false);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.trim().trim_end_matches('='))
        .map_err(|e| {
            forbidden(format!(
                "the {SIGNATURE_HEADER} header is not base64url ({e}): send the Ed25519 \
                 signature of the body encoded as base64url"
            ))
        })?;
    let key = nkeys::KeyPair::from_public_key(&request.host_id)
        .map_err(|e| ProvisionError::bad_request(format!("host_id is not a public key: {e}")))?;
    key.verify(body, &bytes).map_err(|_| {
        forbidden(format!(
            "the {SIGNATURE_HEADER} signature does not verify against host_id {} over the \
             request body: sign the exact body bytes that are sent, with the seed of that host \
             key",
            request.host_id
        ))
    })?;
    let Some(issued_at) = request.issued_at else {
        return Err(forbidden(
            "a signed host request must carry `issued_at` (Unix seconds) in the body, so that \
             it cannot be replayed later"
                .into(),
        ));
    };
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    // A request from the future would stay valid for its lead plus the whole max age:
    // only a small clock skew is tolerated ahead.
    let ahead = issued_at.saturating_sub(now_secs);
    let allowed_ahead = MAX_CLOCK_AHEAD.min(auth.max_age).as_secs() as i64;
    if ahead > allowed_ahead {
        return Err(forbidden(format!(
            "the signed request's issued_at is {ahead} s ahead of the provisioner's clock; at \
             most {allowed_ahead} s of clock skew is accepted: sign with the current time, and \
             check the host's clock (NTP)"
        )));
    }
    let skew = now_secs.saturating_sub(issued_at).unsigned_abs();
    if skew > auth.max_age.as_secs() {
        return Err(forbidden(format!(
            "the signed request's issued_at is {skew} s away from the provisioner's clock; the \
             limit is {} s: send a freshly signed request, and check the host's clock (NTP)",
            auth.max_age.as_secs()
        )));
    }
    Ok(true)
}

/// One trusted key entry: `N…` (any lattice) or `N…=glob,glob` (those lattices only).
fn parse_trusted(entry: &str, origin: &str) -> Result<(String, Option<Vec<String>>), String> {
    let (key, globs) = match entry.split_once('=') {
        Some((key, globs)) => (key.trim(), Some(globs)),
        None => (entry.trim(), None),
    };
    validate_host_id(key).map_err(|e| format!("{origin}: {}", e.message))?;
    let Some(globs) = globs else {
        return Ok((key.to_string(), None));
    };
    let globs: Vec<String> = globs
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    if globs.is_empty() {
        return Err(format!(
            "{origin}: `{key}=` binds the key to no lattice: list lattice globs after `=` \
             (e.g. {key}=tenant-a-*), or drop the `=` to trust it for every lattice"
        ));
    }
    for g in &globs {
        names::validate_glob(g, &format!("{origin}: lattice glob"))?;
    }
    Ok((key.to_string(), Some(globs)))
}

impl HostAuth {
    /// Reads the flags and the key file; every key is checked to be a server public key.
    pub fn from_args(args: &HostAuthArgs) -> Result<Self, String> {
        let mut keys: Vec<(String, String)> = args
            .trusted_host_keys
            .iter()
            .map(|k| (k.trim().to_string(), "--trusted-host-key".to_string()))
            .collect();
        let mut lattices: HashMap<String, Vec<String>> = HashMap::new();
        let mut unbound: HashSet<String> = HashSet::new();
        if let Some(path) = &args.trusted_host_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read trusted host keys file {}: {e}", path.display())
            })?;
            for (i, line) in text.lines().enumerate() {
                let key = line.split('#').next().unwrap_or_default().trim();
                if !key.is_empty() {
                    keys.push((key.to_string(), format!("{}:{}", path.display(), i + 1)));
                }
            }
        }
        let mut trusted = HashSet::new();
        for (entry, origin) in keys {
            let (key, globs) = parse_trusted(&entry, &origin)?;
            // A key both bound and unbound is ambiguous: refuse rather than guess.
            let clash = match &globs {
                Some(_) => unbound.contains(&key),
                None => lattices.contains_key(&key),
            };
            if clash {
                return Err(format!(
                    "{origin}: host key {key} is listed both with and without lattices: \
                     list it once, with `=glob,…` to bind it or without to trust it everywhere"
                ));
            }
            match globs {
                Some(globs) => lattices.entry(key.clone()).or_default().extend(globs),
                None => {
                    unbound.insert(key.clone());
                }
            }
            trusted.insert(key);
        }
        let pinned = args.trusted_host_keys_file.is_some() || !trusted.is_empty();
        if args.trusted_host_keys_file.is_some() && trusted.is_empty() {
            return Err(
                "the trusted host keys file lists no key: no host could bootstrap; add the \
                 hosts' public keys (N…), one per line"
                    .into(),
            );
        }
        Ok(HostAuth {
            require_signed: args.require_signed_hosts || pinned,
            trusted: pinned.then_some(trusted),
            max_age: Duration::from_secs(
                args.host_signature_max_age
                    .unwrap_or(DEFAULT_HOST_SIGNATURE_MAX_AGE),
            ),
            lattices,
        })
    }

    /// 403 when the host key is bound to lattices and this one matches none of them. The
    /// message does not list the key's globs (the operator's policy; they are logged).
    pub fn check_lattice(&self, host_id: &str, lattice: &str) -> Result<(), ProvisionError> {
        let Some(globs) = self.lattices.get(host_id) else {
            return Ok(());
        };
        if globs.iter().any(|g| names::glob_match(g, lattice)) {
            return Ok(());
        }
        tracing::info!(
            host_id,
            lattice,
            bound_to = %globs.join(","),
            "refused: the host key is not bound to this lattice"
        );
        Err(ProvisionError::new(
            ErrorKind::Forbidden,
            format!(
                "host {host_id} is not trusted for lattice `{lattice}`: ask this provisioner's \
                 operator to bind the key to it (--trusted-host-key {host_id}=<lattice glob>)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests;
