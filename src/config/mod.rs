//! Configuration: connection flags and environment, the optional TOML config file, natscli
//! contexts, and how they combine. Precedence, per setting: command-line flag, then
//! environment variable, then the config file, then the NATS context, then the built-in
//! default.
//!
//! Authentication is taken as a whole from the first of those sources that has any (so a
//! `--creds` flag is never mixed with a password from a context); TLS settings, the server
//! URL and the JetStream domain are taken one by one. Credentials in a server URL
//! (`nats://user:password@host`, `nats://token@host`) belong to the source that gave the
//! URL: with other credentials from that same source they are refused as two ways to
//! authenticate (see [`crate::server_url`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::host_auth::FileHosts;
use crate::policy::LatticePolicyArgs;
use crate::settings::Settings;

pub mod accounts;
mod auth;
mod combine;
mod connect;
mod file;
mod flags;

pub use accounts::{AccountConfig, FileAccount};
pub use auth::{Auth, Tls};
pub use combine::{combine, resolve};
pub use connect::connect;
pub use file::{FileConfig, FileConnection};
pub use flags::{ConnectArgs, SettingsArgs, DEFAULT_SERVER};

/// Everything resolved: what to connect to and which settings to apply.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The server URLs as they may be shown: a password or token in them is `***` (it is
    /// in `auth`); [`connect`] dials them without their user info.
    pub servers: String,
    pub auth: Auth,
    pub tls: Tls,
    /// Prefix of reply inboxes (natscli's `inbox_prefix`), for accounts that only allow
    /// subscriptions below a custom prefix.
    pub inbox_prefix: Option<String>,
    pub js_domain: Option<String>,
    /// The natscli context used, if any: (name, file).
    pub context: Option<(String, PathBuf)>,
    pub settings: Settings,
    /// `allow_lattices`, `max_lattices` and `reserved_lattice_names` from the config file.
    pub file_lattice_policy: LatticePolicyArgs,
    /// `[hosts]` from the config file.
    pub file_hosts: FileHosts,
    /// `[accounts.*]` from the config file: tenant accounts served besides the own one.
    pub file_accounts: BTreeMap<String, FileAccount>,
}

impl Resolved {
    /// The lattice policy: the flags (and their environment variables) where given, the
    /// config file's values otherwise; reserved names from both.
    pub fn lattice_policy(&self, flags: &LatticePolicyArgs) -> LatticePolicyArgs {
        LatticePolicyArgs {
            allow_lattice: if flags.allow_lattice.is_empty() {
                self.file_lattice_policy.allow_lattice.clone()
            } else {
                flags.allow_lattice.clone()
            },
            max_lattices: flags.max_lattices.or(self.file_lattice_policy.max_lattices),
            // Both: reserving a name is never less safe, so a flag adds to the file.
            reserve_lattice_name: self
                .file_lattice_policy
                .reserve_lattice_name
                .iter()
                .chain(&flags.reserve_lattice_name)
                .fold(Vec::new(), |mut all, t| {
                    if !all.contains(t) {
                        all.push(t.clone());
                    }
                    all
                }),
        }
    }

    /// Files the connection needs that do not exist.
    pub fn missing_files(&self) -> Vec<String> {
        let mut files: Vec<(&str, &PathBuf)> = Vec::new();
        match &self.auth {
            Auth::Creds(p) => files.push(("credentials file", p)),
            Auth::Nkey(p) => files.push(("nkey seed file", p)),
            _ => {}
        }
        for (what, p) in [
            ("TLS CA file", &self.tls.ca),
            ("TLS certificate", &self.tls.cert),
            ("TLS key", &self.tls.key),
        ] {
            if let Some(p) = p {
                files.push((what, p));
            }
        }
        files
            .into_iter()
            .filter(|(_, p)| !p.is_file())
            .map(|(what, p)| format!("{what} {} does not exist", p.display()))
            .collect()
    }

    /// What each catalog resource is created with, after every source was combined:
    /// replicas, storage, max_bytes and placement, keyed by catalog key.
    pub fn effective_resources(&self) -> Vec<Value> {
        let operator = [
            crate::catalog::Operator::V0_4,
            crate::catalog::Operator::V0_5,
        ]
        .into_iter()
        .flat_map(|v| crate::catalog::operator_keys(v, &self.settings))
        .map(crate::catalog::DesiredKey::desired);
        let desired = crate::catalog::lattice_resources("<lattice>", &self.settings)
            .into_iter()
            .chain(crate::catalog::wadm_resources(false, &self.settings))
            .chain(operator);
        desired
            .map(|d| {
                json!({
                    "key": d.row.key,
                    "name": d.name,
                    "stream": d.stream,
                    "replicas": d.config["num_replicas"],
                    "storage": d.config["storage"],
                    "max_bytes": d.config["max_bytes"],
                    "placement": d.config.get("placement").cloned().unwrap_or(Value::Null),
                })
            })
            .collect()
    }
    /// The effective connection settings, without secrets (for `config check`).
    pub fn describe_connection(&self) -> Value {
        json!({
            "servers": crate::server_url::redact(&self.servers),
            "context": self.context.as_ref().map(|(name, path)| json!({"name": name, "file": path})),
            "auth": self.auth.describe(),
            "tls": {
                "ca": self.tls.ca,
                "cert": self.tls.cert,
                "key": self.tls.key,
                "handshake_first": self.tls.first,
            },
            "inbox_prefix": self.inbox_prefix,
            "js_domain": self.js_domain,
        })
    }
}

#[cfg(test)]
impl Resolved {
    /// Everything at its default: no flags, no config file, no context.
    pub(crate) fn for_tests() -> Resolved {
        combine(
            &Default::default(),
            &Default::default(),
            Default::default(),
            None,
        )
        .expect("the defaults combine")
    }
}

#[cfg(test)]
mod tests;
