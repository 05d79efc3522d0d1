//! `[accounts.<name or public key>]` in the config file: how the provisioner connects in
//! each tenant account it serves, and that account's settings and lattice policy.
//!
//! ```toml
//! [accounts.TENANT_A]
//! creds = "/etc/wasmcloud-provisioner/tenant-a.creds"   # or nkey, or user + password
//! js_domain = "hub"          # default: the provisioner's own
//! replicas = 3               # default: the provisioner's own settings
//! allow_lattices = ["a-*"]   # default: every lattice
//! max_lattices = 20          # counts only this account's lattices
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Auth, Resolved};
use crate::policy::LatticePolicy;

/// One `[accounts.<name>]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccount {
    pub user: Option<String>,
    pub password: Option<String>,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    /// JetStream domain in that account; the provisioner's own when unset.
    pub js_domain: Option<String>,
    /// Replicas for every resource in that account; the provisioner's own when unset.
    pub replicas: Option<usize>,
    /// Lattice name globs served in that account; empty: all.
    #[serde(default)]
    pub allow_lattices: Vec<String>,
    /// Most lattices that may exist in that account.
    pub max_lattices: Option<usize>,
}

/// A served account, resolved: how to connect in it and what applies there.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// The name (static accounts) or public key (operator mode) the server puts in
    /// `Nats-Request-Info`'s `acc`.
    pub name: String,
    /// The provisioner's own connection settings with this account's authentication
    /// and JetStream domain.
    pub resolved: Resolved,
    pub allow_lattices: Vec<String>,
    pub max_lattices: Option<usize>,
}

impl AccountConfig {
    /// Resolves every `[accounts.*]` table against the provisioner's own connection.
    pub fn resolve_all(
        own: &Resolved,
        accounts: &std::collections::BTreeMap<String, FileAccount>,
    ) -> Result<Vec<AccountConfig>, String> {
        accounts
            .iter()
            .map(|(name, file)| AccountConfig::resolve(own, name, file))
            .collect()
    }

    fn resolve(own: &Resolved, name: &str, file: &FileAccount) -> Result<AccountConfig, String> {
        let source = format!("[accounts.{name}] in the config file");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{source}: {name:?} is not an account name or public key (A-Z, a-z, 0-9, `_`, `-`)"
            ));
        }
        let auth = Auth::from_parts(
            &source,
            file.user.clone(),
            file.password.clone(),
            None,
            file.creds.clone(),
            file.nkey.clone(),
            None,
        )?;
        // Without credentials of its own the connection would land in whatever account
        // the server gives an anonymous user: never the tenant's.
        if auth == Auth::None {
            return Err(format!(
                "{source}: give the credentials of a user in account {name} (creds, nkey, or \
                 user and password): the provisioner connects in that account to create its \
                 buckets"
            ));
        }
        if let Some(d) = &file.js_domain {
            if d.is_empty()
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "{source}: JetStream domain {d:?} is invalid: use A-Z, a-z, 0-9, `_` and `-`"
                ));
            }
        }
        let mut settings = own.settings.clone();
        if let Some(r) = file.replicas {
            settings = settings.with_replicas(r);
        }
        settings.validate().map_err(|e| format!("{source}: {e}"))?;
        // The globs are checked here so that a typo fails `config check`, not a request.
        LatticePolicy::new(file.allow_lattices.clone(), file.max_lattices)
            .map_err(|e| format!("{source}: {e}"))?;
        let mut resolved = own.clone();
        resolved.auth = auth;
        resolved.settings = settings;
        if file.js_domain.is_some() {
            resolved.js_domain = file.js_domain.clone();
        }
        Ok(AccountConfig {
            name: name.to_string(),
            resolved,
            allow_lattices: file.allow_lattices.clone(),
            max_lattices: file.max_lattices,
        })
    }

    /// `config check`: every `[accounts.*]` resolved, its policy built and its files
    /// present; one JSON object each (no secrets), with a one-line `summary`.
    pub fn check_all(
        own: &Resolved,
        own_policy: &LatticePolicy,
    ) -> Result<Vec<serde_json::Value>, String> {
        let accounts = Self::resolve_all(own, &own.file_accounts)?;
        accounts
            .iter()
            .map(|a| {
                let source = format!("[accounts.{}]", a.name);
                a.policy(own_policy).map_err(|e| format!("{source}: {e}"))?;
                let (allow_lattices, max_lattices) = a.effective_policy(own_policy);
                let missing = a.resolved.missing_files();
                if !missing.is_empty() {
                    return Err(format!("{source}: {}", missing.join("; ")));
                }
                let allow = if allow_lattices.is_empty() {
                    "all lattices".to_string()
                } else {
                    allow_lattices.join(", ")
                };
                let max = max_lattices.map_or("unlimited".to_string(), |m| m.to_string());
                Ok(serde_json::json!({
                    "name": a.name,
                    "auth": a.resolved.auth.describe(),
                    "js_domain": a.resolved.js_domain,
                    "replicas": a.resolved.settings.all.replicas(),
                    "allow_lattices": allow_lattices,
                    "max_lattices": max_lattices,
                    "summary": format!(
                        "{} ({}; js_domain {}; replicas {}; {allow}, at most {max})",
                        a.name,
                        a.resolved.auth.describe(),
                        a.resolved.js_domain.as_deref().unwrap_or("(none)"),
                        a.resolved.settings.all.replicas()
                    ),
                }))
            })
            .collect()
    }

    /// This account's lattice policy: its own globs and cap where the table sets them,
    /// the provisioner's (`--allow-lattice`, `--max-lattices`) otherwise, and the
    /// provisioner's reserved names always. A cap counts the lattices in this account
    /// only: it is checked against this account's JetStream.
    pub fn policy(&self, own: &LatticePolicy) -> Result<LatticePolicy, String> {
        let (allow, max) = self.effective_policy(own);
        LatticePolicy::new(allow, max)?.with_reserved(own.reserved().to_vec())
    }

    fn effective_policy(&self, own: &LatticePolicy) -> (Vec<String>, Option<usize>) {
        let allow = if self.allow_lattices.is_empty() {
            own.allowed().to_vec()
        } else {
            self.allow_lattices.clone()
        };
        (allow, self.max_lattices.or(own.max_lattices()))
    }
}
