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

use super::{Auth, Resolved};
use crate::config_error::ConfigError;
use crate::permissions;
use crate::policy::LatticePolicy;
use crate::settings::ResourceSettings;

/// One `[accounts.<name>]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccount {
    pub user: Option<String>,
    pub password: Option<String>,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    /// Operator mode: a seed file of the account's key or one of its signing keys (the
    /// table is then named by the account's public key). The provisioner mints itself a
    /// short-lived user with exactly the tenant user's permissions, and a new one before
    /// it expires.
    pub signing_key: Option<PathBuf>,
    /// How long a minted user is valid (`90d`, `12h`, `30m`, `60s`); default 1 hour.
    /// A new one is minted a quarter of it before it expires, at least 2 s before (at
    /// most half of it).
    pub user_expiry: Option<String>,
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
    /// Operator mode: the users are minted with this key (see [`FileAccount::signing_key`]).
    pub signer: Option<Signer>,
}

/// How the provisioner mints its users in an account (operator mode).
#[derive(Debug, Clone)]
pub struct Signer {
    pub seed_file: PathBuf,
    pub expiry: std::time::Duration,
}

impl Signer {
    /// The table's `signing_key` and `user_expiry`, checked: for operator mode only, not
    /// beside credentials, the table named by the account's public key, the seed readable.
    fn from_file(
        source: &str,
        name: &str,
        file: &FileAccount,
        auth: &Auth,
    ) -> Result<Option<Signer>, ConfigError> {
        match &file.signing_key {
            None => {
                if file.user_expiry.is_some() {
                    return Err(ConfigError::Invalid(format!(
                        "{source}: user_expiry is for signing_key"
                    )));
                }
                Ok(None)
            }
            Some(seed_file) => {
                if *auth != Auth::None {
                    return Err(ConfigError::Invalid(format!(
                        "{source}: signing_key mints the provisioner's users; give it or \
                     credentials (creds, nkey, user and password), not both"
                    )));
                }
                if !name.starts_with('A') || nkeys::KeyPair::from_public_key(name).is_err() {
                    return Err(ConfigError::Invalid(format!(
                        "{source}: with signing_key, name the table by the account's public \
                     key (A…, `nsc describe account` shows it): the server names the \
                     account so in requests"
                    )));
                }
                // Read now, so that a wrong file fails `config check` and start-up.
                crate::creds::AccountSigner::from_seed_file(seed_file, Some(name))
                    .map_err(|e| e.within(source))?;
                let expiry = match &file.user_expiry {
                    Some(e) => crate::creds::parse_expiry(e).map_err(|e| e.within(source))?,
                    None => DEFAULT_USER_EXPIRY,
                };
                if expiry < std::time::Duration::from_secs(4) {
                    return Err(ConfigError::Invalid(format!(
                        "{source}: user_expiry must be at least 4s (a new user is minted before the \
                     current one expires: a quarter of it before, at least 2 s or half of it)"
                    )));
                }
                Ok(Some(Signer {
                    seed_file: seed_file.clone(),
                    expiry,
                }))
            }
        }
    }
}

/// A minted user's default lifetime.
const DEFAULT_USER_EXPIRY: std::time::Duration = std::time::Duration::from_secs(3600);

impl AccountConfig {
    /// Resolves every `[accounts.*]` table against the provisioner's own connection.
    pub fn resolve_all(
        own: &Resolved,
        accounts: &std::collections::BTreeMap<String, FileAccount>,
    ) -> Result<Vec<AccountConfig>, ConfigError> {
        accounts
            .iter()
            .map(|(name, file)| AccountConfig::resolve(own, name, file))
            .collect()
    }

    fn resolve(
        own: &Resolved,
        name: &str,
        file: &FileAccount,
    ) -> Result<AccountConfig, ConfigError> {
        let source = format!("[accounts.{name}] in the config file");
        if !permissions::is_name_token(name) {
            return Err(ConfigError::Invalid(format!(
                "{source}: {name:?} is not an account name or public key (A-Z, a-z, 0-9, `_`, `-`)"
            )));
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
        let signer = Signer::from_file(&source, name, file, &auth)?;
        // Without credentials of its own the connection would land in whatever account
        // the server gives an anonymous user: never the tenant's.
        if auth == Auth::None && signer.is_none() {
            return Err(ConfigError::Invalid(format!(
                "{source}: give the credentials of a user in account {name} (creds, nkey, or \
                 user and password, or in operator mode signing_key): the provisioner \
                 connects in that account to create its buckets"
            )));
        }
        if let Some(d) = &file.js_domain {
            permissions::validate_js_domain(d).map_err(|e| e.within(&source))?;
        }
        let settings = super::combine::override_all(
            &own.settings,
            &ResourceSettings {
                replicas: file.replicas,
                ..Default::default()
            },
        );
        settings
            .validate()
            .map_err(|e| ConfigError::from(e).within(&source))?;
        // The globs are checked here so that a typo fails `config check`, not a request.
        LatticePolicy::new(file.allow_lattices.clone(), file.max_lattices)
            .map_err(|e| ConfigError::from(e).within(&source))?;
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
            signer,
        })
    }

    /// `config check`: every `[accounts.*]` resolved, its policy built and its files
    /// present; one JSON object each (no secrets), with a one-line `summary`.
    pub fn check_all(
        own: &Resolved,
        own_policy: &LatticePolicy,
    ) -> Result<Vec<serde_json::Value>, ConfigError> {
        let accounts = Self::resolve_all(own, &own.file_accounts)?;
        accounts
            .iter()
            .map(|a| {
                let source = format!("[accounts.{}]", a.name);
                a.policy(own_policy).map_err(|e| e.within(&source))?;
                let (allow_lattices, max_lattices) = a.effective_policy(own_policy);
                let auth = match &a.signer {
                    Some(s) => format!(
                        "users minted with {}, valid {} s",
                        s.seed_file.display(),
                        s.expiry.as_secs()
                    ),
                    None => a.resolved.auth.describe(),
                };
                let missing = a.resolved.missing_files();
                if !missing.is_empty() {
                    return Err(ConfigError::File(missing.join("; ")).within(&source));
                }
                let allow = if allow_lattices.is_empty() {
                    "all lattices".to_string()
                } else {
                    allow_lattices.join(", ")
                };
                let max = max_lattices.map_or("unlimited".to_string(), |m| m.to_string());
                Ok(serde_json::json!({
                    "name": a.name,
                    "auth": auth,
                    "js_domain": a.resolved.js_domain,
                    "replicas": a.resolved.settings.all.replicas(),
                    "allow_lattices": allow_lattices,
                    "max_lattices": max_lattices,
                    "summary": format!(
                        "{} ({}; js_domain {}; replicas {}; {allow}, at most {max})",
                        a.name,
                        auth,
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
    pub fn policy(&self, own: &LatticePolicy) -> Result<LatticePolicy, ConfigError> {
        let (allow, max) = self.effective_policy(own);
        Ok(LatticePolicy::new(allow, max)?.with_reserved(own.reserved().to_vec())?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_account_needs_credentials_of_its_own() {
        let own = Resolved::for_tests();
        let file =
            std::collections::BTreeMap::from([("TENANT_A".to_string(), FileAccount::default())]);
        let e = AccountConfig::resolve_all(&own, &file).unwrap_err();
        assert!(
            e.to_string()
                .contains("give the credentials of a user in account TENANT_A"),
            "{e}"
        );
        let file = std::collections::BTreeMap::from([(
            "A.B".to_string(),
            FileAccount {
                creds: Some("x.creds".into()),
                ..Default::default()
            },
        )]);
        assert!(AccountConfig::resolve_all(&own, &file).is_err());
    }
}
