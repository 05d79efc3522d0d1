//! Who may ask for what, beyond what NATS subject permissions already decide.
//!
//! - [`LatticePolicy`]: which lattice names this service serves (`--allow-lattice`, globs
//!   with `*` and `?`) and how many lattices it lets exist (`--max-lattices`). It is
//!   checked in [`crate::provisioner::Provisioner`], so every endpoint (`lattice`,
//!   `lattice_scoped`, `host`, `host_scoped`, `status`) and the `apply`/`plan` commands
//!   obey it alike.
//! - [`HostAuth`]: whether host bootstrap requests must be signed by the host's key, and
//!   by which keys (see `endpoints/host.rs` for the wire format).
//!
//! ## How `--max-lattices` counts
//! The cap bounds the number of lattices that **exist in JetStream**, not the number this
//! instance happens to have created: a lattice exists when any of its catalog streams
//! (`KV_LATTICEDATA_<l>`, `KV_CONFIGDATA_<l>`) exists, whoever created it. So the count is
//! the same for every instance of a queue group and survives restarts. A request for a
//! lattice that exists is always served (it creates no new lattice); a request that would
//! make lattice number `max + 1` is refused with 429. The count comes from one
//! `STREAM.NAMES` listing, made only for a lattice this instance has not yet seen exist;
//! lattices seen once are remembered, so the warm path makes no call. Within one instance
//! new lattices are admitted one at a time; two instances admitting different new lattices
//! at the same instant may overshoot the cap by one each (documented, not prevented).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::admission;
use crate::catalog::{self, Scope};
use crate::error::{ErrorKind, ProvisionError};
use crate::jsapi::Call;
use crate::reconcile::Reconciler;
use crate::settings::Settings;

/// Lattice flags (for `serve`, `apply` and `plan`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LatticePolicyArgs {
    /// Serve only lattices whose name matches this glob (`*` any run, `?` one character;
    /// repeatable or comma-separated) [default: every lattice]
    #[arg(
        long = "allow-lattice",
        env = "WASMCLOUD_PROVISIONER_ALLOW_LATTICE",
        value_delimiter = ',',
        global = true
    )]
    pub allow_lattice: Vec<String>,
    /// Refuse (429) to create a lattice once this many exist in JetStream
    #[arg(long, env = "WASMCLOUD_PROVISIONER_MAX_LATTICES", global = true)]
    pub max_lattices: Option<usize>,
}

/// Host bootstrap flags (for `serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HostAuthArgs {
    /// Host bootstrap requests must be signed by the host's key (header
    /// Wasmcloud-Host-Signature, a fresh `issued_at`); 403 otherwise
    #[arg(long)]
    pub require_signed_hosts: bool,
    /// Accept host bootstrap requests only from this host public key (N…; repeatable;
    /// implies --require-signed-hosts)
    #[arg(long = "trusted-host-key")]
    pub trusted_host_keys: Vec<String>,
    /// File of trusted host public keys, one per line, `#` comments (implies
    /// --require-signed-hosts)
    #[arg(long)]
    pub trusted_host_keys_file: Option<PathBuf>,
    /// Largest difference in seconds between a signed request's `issued_at` and the
    /// service's clock
    #[arg(long, default_value_t = 300)]
    pub host_signature_max_age: u64,
}

/// `*` matches any run of characters (also none), `?` exactly one; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and retry.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Which lattices the service serves and how many may exist.
#[derive(Debug, Default)]
pub struct LatticePolicy {
    /// Globs; empty means every lattice.
    allow: Vec<String>,
    max_lattices: Option<usize>,
    /// Lattices seen to exist (cap bookkeeping only).
    known: Mutex<HashSet<String>>,
    /// New lattices are reserved one at a time per instance (see [`crate::admission`]).
    admitting: tokio::sync::Mutex<()>,
}

/// Proof that a request's new lattices were admitted; hold it until they are created.
pub struct Admission<'a> {
    _serial: Option<tokio::sync::MutexGuard<'a, ()>>,
    /// New lattices reserved for this request: settle them once they exist
    /// ([`Admission::settle`]).
    reserved: Vec<String>,
}

impl Admission<'_> {
    /// After the lattices were created: their streams count them from now on, so their
    /// reservations go (see [`crate::admission::settle`]).
    pub async fn settle(&self, reconciler: &Arc<Reconciler>, settings: &Settings) {
        admission::settle(reconciler, settings, &self.reserved).await;
    }
}

impl LatticePolicy {
    /// Checks the globs: lattice characters plus `*` and `?`.
    pub fn new(allow: Vec<String>, max_lattices: Option<usize>) -> Result<Self, String> {
        for g in &allow {
            if g.is_empty()
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '?'))
            {
                return Err(format!(
                    "--allow-lattice {g:?} is not a lattice glob: use A-Z, a-z, 0-9, `_`, `-` \
                     and the wildcards `*` (any run) and `?` (one character)"
                ));
            }
        }
        Ok(LatticePolicy {
            allow,
            max_lattices,
            ..Default::default()
        })
    }

    pub fn from_args(args: &LatticePolicyArgs) -> Result<Self, String> {
        Self::new(args.allow_lattice.clone(), args.max_lattices)
    }

    pub fn max_lattices(&self) -> Option<usize> {
        self.max_lattices
    }

    /// 403 unless the lattice matches an allowed glob.
    pub fn check_allowed(&self, lattice: &str) -> Result<(), ProvisionError> {
        if self.allow.is_empty() || self.allow.iter().any(|g| glob_match(g, lattice)) {
            return Ok(());
        }
        Err(ProvisionError::new(
            ErrorKind::Forbidden,
            format!(
                "lattice `{lattice}` is not served here: this provisioner serves only lattices \
                 matching {}; ask its operator to add an --allow-lattice pattern",
                self.allow
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// Whether the lattices pass [`LatticePolicy::admit`] without counting: there is no
    /// cap, or this instance already knows each of them.
    pub fn admits_known(&self, lattices: &[&str]) -> bool {
        self.max_lattices.is_none() || lattices.iter().all(|l| self.is_known(l))
    }

    /// Admits the lattices of an apply under the cap: lattices whose streams exist pass
    /// (counted with a fresh `STREAM.NAMES`: this instance's memory of a lattice is no
    /// proof, its buckets may have been deleted since), new ones pass when they can be
    /// reserved within `max_lattices` (see [`crate::admission`]: the reservation is a
    /// compare-and-set in JetStream, so instances cannot both take the last place),
    /// otherwise 429. Keep the admission until the lattices are created, then call
    /// [`LatticePolicy::record`].
    pub async fn admit(
        &self,
        lattices: &[&str],
        reconciler: &Arc<Reconciler>,
        settings: &Settings,
    ) -> Result<Admission<'_>, ProvisionError> {
        let Some(max) = self.max_lattices else {
            return Ok(Admission {
                _serial: None,
                reserved: Vec::new(),
            });
        };
        let js = reconciler.js();
        let names = js
            .stream_names()
            .await
            .map_err(|e| e.explain(Call::CountLattices, js.domain()))?;
        let existing = lattices_of(&names);
        self.remember(existing.iter().map(String::as_str));
        let new: BTreeSet<&str> = lattices
            .iter()
            .copied()
            .filter(|l| !existing.contains(*l))
            .collect();
        if new.is_empty() {
            return Ok(Admission {
                _serial: None,
                reserved: Vec::new(),
            });
        }
        // The reservation's compare-and-set is what keeps the cap; taking them one at a
        // time here only spares this instance's requests from racing each other for it.
        let serial = self.admitting.lock().await;
        let existing = match admission::reserve(reconciler, settings, &new, max).await? {
            admission::Outcome::Admitted => {
                drop(serial);
                return Ok(Admission {
                    _serial: None,
                    reserved: new.iter().map(|l| l.to_string()).collect(),
                });
            }
            // What counts now: existing lattices and live reservations.
            admission::Outcome::Full { counted } => counted,
        };
        if !new.is_empty() && existing.len() + new.len() > max {
            let shown: Vec<&str> = existing.iter().take(10).map(String::as_str).collect();
            let more = if existing.len() > shown.len() {
                ", …"
            } else {
                ""
            };
            return Err(ProvisionError::new(
                ErrorKind::TooMany,
                format!(
                    "this provisioner creates at most {max} lattices and {} exist ({}{more}); \
                     creating {} would exceed that: remove lattices no longer used, or ask \
                     the operator to raise --max-lattices",
                    existing.len(),
                    shown.join(", "),
                    new.iter()
                        .map(|l| format!("`{l}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(Admission {
            _serial: Some(serial),
            reserved: Vec::new(),
        })
    }

    /// Remembers lattices that now exist.
    pub fn record(&self, lattices: &[&str]) {
        if self.max_lattices.is_some() {
            self.remember(lattices.iter().copied());
        }
    }

    fn is_known(&self, lattice: &str) -> bool {
        self.known
            .lock()
            .map(|k| k.contains(lattice))
            .unwrap_or(false)
    }

    fn remember<'a>(&self, lattices: impl Iterator<Item = &'a str>) {
        if let Ok(mut known) = self.known.lock() {
            known.extend(lattices.map(str::to_string));
        }
    }
}

/// The lattices that stream names belong to: a stream named like a lattice row's stream
/// (`KV_LATTICEDATA_<l>`) makes `<l>` exist.
pub fn lattices_of(stream_names: &[String]) -> BTreeSet<String> {
    const MARK: &str = "\u{0}";
    let patterns: Vec<(String, String)> = catalog::rows(Scope::Lattice)
        .filter_map(|r| {
            let s = r.stream_for(MARK);
            let (prefix, suffix) = s.split_once(MARK)?;
            Some((prefix.to_string(), suffix.to_string()))
        })
        .collect();
    stream_names
        .iter()
        .filter_map(|name| {
            patterns.iter().find_map(|(prefix, suffix)| {
                let l = name
                    .strip_prefix(prefix.as_str())?
                    .strip_suffix(suffix.as_str())?;
                crate::request::validate_lattice(l)
                    .is_ok()
                    .then(|| l.to_string())
            })
        })
        .collect()
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
}

impl Default for HostAuth {
    fn default() -> Self {
        HostAuth {
            require_signed: false,
            trusted: None,
            max_age: Duration::from_secs(300),
        }
    }
}

impl HostAuth {
    /// Reads the flags and the key file; every key is checked to be a server public key.
    pub fn from_args(args: &HostAuthArgs) -> Result<Self, String> {
        let mut keys: Vec<(String, String)> = args
            .trusted_host_keys
            .iter()
            .map(|k| (k.trim().to_string(), "--trusted-host-key".to_string()))
            .collect();
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
        for (key, origin) in keys {
            crate::endpoints::host::validate_host_id(&key)
                .map_err(|e| format!("{origin}: {}", e.message))?;
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
            max_age: Duration::from_secs(args.host_signature_max_age),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("tenant-*", "tenant-a"));
        assert!(glob_match("tenant-*", "tenant-"));
        assert!(!glob_match("tenant-*", "tenant"));
        assert!(!glob_match("tenant-*", "xtenant-a"));
        assert!(glob_match("t?n", "ten"));
        assert!(!glob_match("t?n", "tn"));
        assert!(glob_match("*-prod-*", "eu-prod-1"));
        assert!(!glob_match("*-prod-*", "eu-prod"));
        assert!(glob_match("a*b*c", "aXXbYYbZc"));
        assert!(!glob_match("a*b*c", "aXXbYYbZ"));
        assert!(glob_match("default", "default"));
        assert!(!glob_match("default", "Default"));
        assert!(glob_match("**a", "a"));
    }

    #[test]
    fn allowed_lattices_and_bad_globs() {
        let p = LatticePolicy::new(vec!["tenant-*".into(), "default".into()], None).unwrap();
        assert!(p.check_allowed("tenant-a").is_ok());
        assert!(p.check_allowed("default").is_ok());
        let e = p.check_allowed("other").unwrap_err();
        assert_eq!(e.code(), 403);
        assert!(e.message.contains("--allow-lattice"), "{}", e.message);
        assert!(LatticePolicy::new(vec![], None)
            .unwrap()
            .check_allowed("x")
            .is_ok());
        assert!(LatticePolicy::new(vec!["a.b".into()], None).is_err());
        assert!(LatticePolicy::new(vec!["".into()], None).is_err());
    }

    #[test]
    fn lattices_are_read_from_stream_names() {
        let names: Vec<String> = [
            "KV_LATTICEDATA_a",
            "KV_CONFIGDATA_a",
            "KV_CONFIGDATA_b",
            "KV_LATTICEDATA_",
            "KV_wadm_state",
            "wadm_events",
            "KV_LATTICEDATA_c-1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got: Vec<String> = lattices_of(&names).into_iter().collect();
        assert_eq!(got, vec!["a", "b", "c-1"]);
    }

    #[test]
    fn trusted_keys_imply_signatures_and_are_checked() {
        let kp = nkeys::KeyPair::new_server();
        let auth = HostAuth::from_args(&HostAuthArgs {
            trusted_host_keys: vec![kp.public_key()],
            host_signature_max_age: 60,
            ..Default::default()
        })
        .unwrap();
        assert!(auth.require_signed);
        assert!(auth.trusted.unwrap().contains(&kp.public_key()));
        let user = nkeys::KeyPair::new_user();
        let e = HostAuth::from_args(&HostAuthArgs {
            trusted_host_keys: vec![user.public_key()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("--trusted-host-key"), "{e}");
        let (_dir, path) = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys");
            std::fs::write(&path, format!("# hosts\n{}  # edge-1\n\n", kp.public_key())).unwrap();
            (dir, path)
        };
        let auth = HostAuth::from_args(&HostAuthArgs {
            trusted_host_keys_file: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(auth.trusted.unwrap().len(), 1);
        let open = HostAuth::from_args(&HostAuthArgs::default()).unwrap();
        assert!(!open.require_signed && open.trusted.is_none());
    }
}
