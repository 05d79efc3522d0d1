//! The connection and settings flags (each with its environment variable).

use std::path::PathBuf;

use crate::settings::Storage;

/// Default server, as for every NATS tool.
pub const DEFAULT_SERVER: &str = "nats://127.0.0.1:4222";

/// How to reach NATS and JetStream (flags and environment).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// NATS server URL(s), comma-separated [default: nats://127.0.0.1:4222]
    // `hide_env_values`: a URL may carry a password, which `--help` would print.
    #[arg(
        long,
        short = 's',
        env = "NATS_URL",
        global = true,
        hide_env_values = true
    )]
    pub server: Option<String>,
    /// natscli context to connect with (default: the one `nats context select` chose)
    #[arg(long, env = "NATS_CONTEXT", global = true)]
    pub context: Option<String>,
    /// User name (with --password)
    #[arg(long, env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// Password (with --user)
    #[arg(long, env = "NATS_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    /// Authentication token
    #[arg(long, env = "NATS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Credentials file (user JWT + seed), as for operator mode
    #[arg(long, env = "NATS_CREDS", global = true)]
    pub creds: Option<PathBuf>,
    /// File holding an nkey seed (SU…)
    #[arg(long, env = "NATS_NKEY", global = true)]
    pub nkey: Option<PathBuf>,
    /// CA certificate(s) (PEM) that signed the server's certificate
    #[arg(long, env = "NATS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that verify clients (with --tls-key)
    #[arg(long, env = "NATS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) (with --tls-cert)
    #[arg(long, env = "NATS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// JetStream domain of the resources (API prefix `$JS.<domain>.API`)
    #[arg(long, env = "WASMCLOUD_JS_DOMAIN", global = true)]
    pub js_domain: Option<String>,
    /// TOML config file (see examples/provisioner.toml)
    #[arg(long, env = "WASMCLOUD_PROVISIONER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Prefix of this tool's reply subjects instead of `_INBOX` (e.g. `_INBOX_provisioner`);
    /// `permissions`/`creds --role provisioner` then grant subscribe on `<prefix>.>` only,
    /// so the provisioner's user cannot read other clients' replies
    #[arg(long, env = "WASMCLOUD_PROVISIONER_INBOX_PREFIX", global = true)]
    pub inbox_prefix: Option<String>,
}

/// Operator settings from flags (all resources).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Replicas for every resource (1, 3 or 5; the cluster size in production)
    #[arg(long, env = "WASMCLOUD_PROVISIONER_REPLICAS", global = true)]
    pub replicas: Option<usize>,
    /// Storage for new resources
    #[arg(long, value_enum, env = "WASMCLOUD_PROVISIONER_STORAGE", global = true)]
    pub storage: Option<Storage>,
    /// Size limit in bytes for every resource (-1: unlimited)
    #[arg(long, allow_hyphen_values = true, global = true)]
    pub max_bytes: Option<i64>,
    /// Placement cluster for new resources
    #[arg(long, global = true)]
    pub placement_cluster: Option<String>,
    /// Placement server tag for new resources (repeatable)
    #[arg(long = "placement-tag", global = true)]
    pub placement_tags: Vec<String>,
    /// Most replicas a request's `"replicas"` may raise a resource to (1, 3 or 5)
    /// [default: requests may not raise replicas above --replicas, which is a floor]
    #[arg(
        long,
        env = "WASMCLOUD_PROVISIONER_MAX_REQUEST_REPLICAS",
        global = true
    )]
    pub max_request_replicas: Option<usize>,
}
