//! Who may ask for what, beyond what NATS subject permissions already decide.
//!
//! - [`LatticePolicy`]: which lattice names this service serves (`--allow-lattice`, globs
//!   with `*` and `?`) and how many lattices it lets exist (`--max-lattices`). It is
//!   checked in the provisioner, so every endpoint (`lattice`,
//!   `lattice_scoped`, `host`, `host_scoped`, `status`) and the `apply`/`plan` commands
//!   obey it alike. It also holds the operator's reserved lattice names
//!   (`--reserve-lattice-name`, refused like the built-in ones of [`crate::names`]). Its
//!   refusals name neither the globs nor other tenants' lattices (those are logged).
//! - [`HostAuth`](crate::host_auth::HostAuth) (in [`crate::host_auth`]): whether host
//!   bootstrap requests must be signed by the host's key, by which keys, and for which
//!   lattices each key may ask.
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
use std::sync::{Arc, Mutex};

use crate::admission;
use crate::catalog::{self, Scope};
use crate::error::{ErrorKind, ProvisionError};
use crate::jsapi::Call;
use crate::names::{self, glob_match, validate_glob};
use crate::reconcile::Reconciler;
use crate::settings::Settings;

/// Lattice flags (for `serve`, `apply` and `plan`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LatticePolicyArgs {
    /// Serve only lattices whose name matches this glob (`*` any run, `?` one character;
    /// repeatable or comma-separated) [default: every lattice]
    #[arg(long = "allow-lattice", env = "WASMCLOUD_PROVISIONER_ALLOW_LATTICE")]
    #[arg(value_delimiter = ',', global = true)]
    pub allow_lattice: Vec<String>,
    /// Refuse (429) to create a lattice once this many exist in JetStream
    #[arg(long, env = "WASMCLOUD_PROVISIONER_MAX_LATTICES", global = true)]
    pub max_lattices: Option<usize>,
    /// Refuse this lattice name (400), besides the built-in reserved ones: the first
    /// subject token of another service of yours, which a host of that lattice would
    /// capture with `<lattice>.>` (repeatable or comma-separated)
    #[arg(long = "reserve-lattice-name", value_delimiter = ',', global = true)]
    #[arg(env = "WASMCLOUD_PROVISIONER_RESERVE_LATTICE_NAME")]
    pub reserve_lattice_name: Vec<String>,
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
    /// Nothing to admit: no cap, or every lattice exists.
    fn nothing() -> Self {
        Admission {
            _serial: None,
            reserved: Vec::new(),
        }
    }

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
        names::validate_extra(&reserved)?;
        for g in &self.allow {
            let literal = !g.contains(['*', '?']);
            let why = if g.starts_with('_') {
                names::reason("_", &[])
            } else if literal {
                names::reason(g, &reserved)
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
        names::check(lattice, &self.reserved)
    }

    pub fn max_lattices(&self) -> Option<usize> {
        self.max_lattices
    }

    /// 400 when the operator reserved the name; 403 unless it matches an allowed glob.
    /// The 403 does not quote the globs: the requester learns that this lattice is not
    /// served, not the operator's policy or other tenants' names (the log has the globs).
    pub fn check_allowed(&self, lattice: &str) -> Result<(), ProvisionError> {
        names::check(lattice, &self.reserved)?;
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
            return Ok(Admission::nothing());
        };
        let js = reconciler.js();
        let names = js
            .stream_names()
            .await
            .map_err(|e| e.explain(Call::CountLattices, js.domain()))?;
        let existing = lattices_of(&names);
        self.remember(existing.iter().map(String::as_str));
        let mut new: BTreeSet<&str> = lattices.iter().copied().collect();
        new.retain(|l| !existing.contains(*l));
        if new.is_empty() {
            return Ok(Admission::nothing());
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
