//! The config file (TOML): its sections as types, and how it is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::accounts::FileAccount;
use crate::config_error::ConfigError;
use crate::host_auth::FileHosts;
use crate::settings::ResourceSettings;

/// The config file (TOML). Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub connection: FileConnection,
    /// JetStream domain.
    #[serde(default)]
    pub js_domain: Option<String>,
    /// Lattice name globs this provisioner serves (`--allow-lattice`); empty: all.
    #[serde(default)]
    pub allow_lattices: Vec<String>,
    /// Most lattices that may exist (`--max-lattices`).
    #[serde(default)]
    pub max_lattices: Option<usize>,
    /// Lattice names refused besides the built-in reserved ones (`--reserve-lattice-name`):
    /// first subject tokens of the operator's other services.
    #[serde(default)]
    pub reserved_lattice_names: Vec<String>,
    /// Most replicas a request may raise a resource to (`--max-request-replicas`).
    #[serde(default)]
    pub max_request_replicas: Option<usize>,
    /// Settings for every resource.
    #[serde(default)]
    pub all: ResourceSettings,
    /// Settings per catalog key (`latticedata`, `wadm_state`, …).
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceSettings>,
    /// Host bootstrap authentication (`serve --require-signed-hosts`, `--trusted-host-key`…).
    #[serde(default)]
    pub hosts: FileHosts,
    /// Tenant accounts served besides the provisioner's own (`[accounts.<name>]`, see
    /// `config::accounts`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, FileAccount>,
}

/// `[connection]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnection {
    pub server: Option<String>,
    /// natscli context to start from.
    pub context: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// TLS handshake before the server's greeting (servers with `handshake_first`).
    pub tls_first: Option<bool>,
    /// Prefix of reply subjects (`--inbox-prefix`).
    pub inbox_prefix: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::File(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let config: FileConfig = toml::from_str(&text).map_err(|e| {
            ConfigError::Invalid(format!("config file {} is invalid: {e}", path.display()))
        })?;
        Ok(config)
    }
}
