//! Who may ask for what, beyond what NATS subject permissions already decide.
//!
//! - [`LatticePolicy`]: which lattice names this service serves (`--allow-lattice`, globs
//!   with `*` and `?`) and how many lattices it lets exist (`--max-lattices`). It is
//!   checked in [`crate::provisioner::Provisioner`], so every endpoint (`lattice`,
//!   `lattice_scoped`, `host`, `host_scoped`, `status`) and the `apply`/`plan` commands
//!   obey it alike. It also holds the operator's reserved lattice names
//!   (`--reserve-lattice-name`, refused like the built-in ones of [`crate::names`]). Its
//!   refusals name neither the globs nor other tenants' lattices (those are logged).
//! - [`HostAuth`]: whether host bootstrap requests must be signed by the host's key, by
//!   which keys, and for which lattices each key may ask (see `endpoints/host.rs` for the
//!   wire format).
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

use std::collections::{BTreeSet, HashMap, HashSet};
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
    /// Refuse this lattice name (400), besides the built-in reserved ones: the first
    /// subject token of another service of yours, which a host of that lattice would
    /// capture with `<lattice>.>` (repeatable or comma-separated)
    #[arg(
        long = "reserve-lattice-name",
        env = "WASMCLOUD_PROVISIONER_RESERVE_LATTICE_NAME",
        value_delimiter = ',',
        global = true
    )]
    pub reserve_lattice_name: Vec<String>,
}

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
#[serde(deny_unknown_fields)]
pub struct FileHosts {
    /// `--require-signed-hosts`.
    #[serde(default)]
    pub require_signed: bool,
    /// `--trusted-host-key`, each `N…` or `N…=glob,glob`.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// `--trusted-host-keys-file`.
    #[serde(default)]
    pub trusted_keys_file: Option<PathBuf>,
    /// `--host-signature-max-age`, seconds.
    #[serde(default)]
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
    /// The operator's reserved names, refused like the built-in ones (`crate::names`).
    reserved: Vec<String>,
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
            validate_glob(g, "--allow-lattice")?;
        }
        Ok(LatticePolicy {
            allow,
            max_lattices,
            ..Default::default()
        })
    }

    pub fn from_args(args: &LatticePolicyArgs) -> Result<Self, String> {
        Self::new(args.allow_lattice.clone(), args.max_lattices)?
            .with_reserved(args.reserve_lattice_name.clone())
    }

    /// Adds the operator's reserved lattice names, and refuses an allow glob that could
    /// only ever match a reserved name (a glob without wildcards naming one, or one that
    /// starts with `_`): such a line serves nothing and is likely a mistake.
    pub fn with_reserved(mut self, reserved: Vec<String>) -> Result<Self, String> {
        crate::names::validate_extra(&reserved)?;
        for g in &self.allow {
            let literal = !g.contains(['*', '?']);
            let why = if g.starts_with('_') {
                crate::names::reason("_", &[])
            } else if literal {
                crate::names::reason(g, &reserved)
            } else {
                None
            };
            if let Some(why) = why {
                return Err(format!(
                    "--allow-lattice {g:?} can only match reserved lattice names (a host of \
                     such a lattice would capture {why}): remove it"
                ));
            }
        }
        self.reserved = reserved;
        Ok(self)
    }

    /// The operator's reserved lattice names (for `config check`).
    pub fn reserved(&self) -> &[String] {
        &self.reserved
    }

    /// The allowed globs (empty: all); tenant accounts without their own take these
    /// (`accounts::config`).
    pub fn allowed(&self) -> &[String] {
        &self.allow
    }

    /// 400 when a lattice name is reserved, built in or by the operator: for the entry
    /// points that have no request (`permissions`, `creds`, `apply`, `plan`).
    pub fn check_name(&self, lattice: &str) -> Result<(), ProvisionError> {
        crate::request::validate_lattice(lattice)?;
        crate::names::check(lattice, &self.reserved)
    }

    pub fn max_lattices(&self) -> Option<usize> {
        self.max_lattices
    }

    /// 400 when the operator reserved the name; 403 unless it matches an allowed glob.
    /// The 403 does not quote the globs: the requester learns that this lattice is not
    /// served, not the operator's policy or other tenants' names (the log has the globs).
    pub fn check_allowed(&self, lattice: &str) -> Result<(), ProvisionError> {
        crate::names::check(lattice, &self.reserved)?;
        if self.allow.is_empty() || self.allow.iter().any(|g| glob_match(g, lattice)) {
            return Ok(());
        }
        tracing::info!(
            lattice,
            allowed = %self.allow.join(","),
            "refused: the lattice matches no --allow-lattice glob"
        );
        Err(ProvisionError::new(
            ErrorKind::Forbidden,
            format!(
                "lattice `{lattice}` is not served here: ask this provisioner's operator to \
                 add an --allow-lattice pattern that matches it"
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
        let existing =
            match admission::reserve(reconciler, settings, &new, max, lattices_of).await? {
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
            let asked: Vec<String> = new.iter().map(|l| format!("`{l}`")).collect();
            // The lattices that exist belong to other tenants, and the cap is the
            // operator's policy: both go to the log, not into the reply.
            tracing::info!(
                max,
                existing = existing.len(),
                lattices = %existing.iter().take(50).cloned().collect::<Vec<_>>().join(","),
                asked = %asked.join(","),
                "refused: --max-lattices reached"
            );
            return Err(ProvisionError::new(
                ErrorKind::TooMany,
                format!(
                    "creating lattice {} would exceed the number of lattices this provisioner \
                     may create: ask its operator to remove lattices no longer used or to \
                     raise --max-lattices (its log names what exists)",
                    asked.join(", ")
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

/// Checks a lattice glob: lattice characters plus `*` and `?`.
fn validate_glob(g: &str, origin: &str) -> Result<(), String> {
    if g.is_empty()
        || !g
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '?'))
    {
        return Err(format!(
            "{origin} {g:?} is not a lattice glob: use A-Z, a-z, 0-9, `_`, `-` and the \
             wildcards `*` (any run) and `?` (one character)"
        ));
    }
    Ok(())
}

/// One trusted key entry: `N…` (any lattice) or `N…=glob,glob` (those lattices only).
fn parse_trusted(entry: &str, origin: &str) -> Result<(String, Option<Vec<String>>), String> {
    let (key, globs) = match entry.split_once('=') {
        Some((key, globs)) => (key.trim(), Some(globs)),
        None => (entry.trim(), None),
    };
    crate::endpoints::host::validate_host_id(key)
        .map_err(|e| format!("{origin}: {}", e.message))?;
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
        validate_glob(g, &format!("{origin}: lattice glob"))?;
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
        if globs.iter().any(|g| glob_match(g, lattice)) {
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
            host_signature_max_age: Some(60),
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

    /// `N…=glob,…` binds a trusted key to lattices, on the flag and in the file.
    #[test]
    fn trusted_keys_can_be_bound_to_lattices() {
        let a = nkeys::KeyPair::new_server().public_key();
        let b = nkeys::KeyPair::new_server().public_key();
        let c = nkeys::KeyPair::new_server().public_key();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("{c} = tenant-c, tenant-c-*  # edge\n")).unwrap();
        let auth = HostAuth::from_args(&HostAuthArgs {
            trusted_host_keys: vec![format!("{a}=tenant-a,tenant-a-*"), b.clone()],
            trusted_host_keys_file: Some(path),
            ..Default::default()
        })
        .unwrap();
        let trusted = auth.trusted.clone().unwrap();
        assert!(trusted.contains(&a) && trusted.contains(&b) && trusted.contains(&c));
        assert!(auth.check_lattice(&a, "tenant-a").is_ok());
        assert!(auth.check_lattice(&a, "tenant-a-1").is_ok());
        let e = auth.check_lattice(&a, "tenant-b").unwrap_err();
        assert_eq!(e.code(), 403);
        assert!(!e.message.contains("tenant-a"), "{}", e.message);
        assert!(auth.check_lattice(&c, "tenant-c-9").is_ok());
        assert!(auth.check_lattice(&c, "tenant-a").is_err());
        // An unbound key serves every lattice.
        assert!(auth.check_lattice(&b, "anything").is_ok());
        for bad in [format!("{a}="), format!("{a}=a.b"), "NOTAKEY=x".to_string()] {
            assert!(
                HostAuth::from_args(&HostAuthArgs {
                    trusted_host_keys: vec![bad.clone()],
                    ..Default::default()
                })
                .is_err(),
                "{bad}"
            );
        }
        let e = HostAuth::from_args(&HostAuthArgs {
            trusted_host_keys: vec![format!("{a}=x"), a.clone()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("both"), "{e}");
    }

    /// The operator's reserved names are refused; an allow glob that could only match a
    /// reserved name is refused at start.
    #[test]
    fn operator_reserved_names_and_allow_globs() {
        let p = LatticePolicy::new(vec![], None)
            .unwrap()
            .with_reserved(vec!["billing".into()])
            .unwrap();
        let e = p.check_allowed("billing").unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(p.check_name("billing").is_err());
        assert!(p.check_name("wadm").is_err());
        assert!(p.check_name("tenant").is_ok());
        for glob in ["wadm", "_*", "_INBOX", "billing"] {
            let e = LatticePolicy::new(vec![glob.into()], None)
                .unwrap()
                .with_reserved(vec!["billing".into()])
                .unwrap_err();
            assert!(e.contains("reserved"), "{glob}: {e}");
        }
        assert!(LatticePolicy::new(vec!["wadm*".into()], None)
            .unwrap()
            .with_reserved(vec![])
            .is_ok());
        assert!(LatticePolicy::new(vec![], None)
            .unwrap()
            .with_reserved(vec!["a.b".into()])
            .is_err());
    }

    /// Neither refusal tells the requester the policy or other tenants' lattices.
    #[test]
    fn refusals_do_not_reveal_the_policy() {
        let p = LatticePolicy::new(vec!["secret-tenant-*".into()], Some(1)).unwrap();
        let e = p.check_allowed("other").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
