//! Configuration: connection flags and environment, the optional TOML config file, and
//! how they combine. Precedence: command-line flag, then environment variable, then the
//! config file, then the built-in default.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::reconcile::KnownStreams;
use crate::settings::{Placement, ResourceSettings, Settings, Storage};

/// Default server, as for every NATS tool.
pub const DEFAULT_SERVER: &str = "nats://127.0.0.1:4222";

/// How to reach NATS and JetStream (flags and environment).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// NATS server URL(s), comma-separated [default: nats://127.0.0.1:4222]
    #[arg(long, short = 's', env = "NATS_URL", global = true)]
    pub server: Option<String>,
    /// User name (with --password)
    #[arg(long, env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// Password (with --user)
    #[arg(long, env = "NATS_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    /// Credentials file (user JWT + seed), as for operator mode
    #[arg(long, env = "NATS_CREDS", global = true)]
    pub creds: Option<PathBuf>,
    /// File holding an nkey seed (SU…)
    #[arg(long, env = "NATS_NKEY", global = true)]
    pub nkey: Option<PathBuf>,
    /// JetStream domain of the resources ($JS.<domain>.API)
    #[arg(long, env = "WASMCLOUD_JS_DOMAIN", global = true)]
    pub js_domain: Option<String>,
    /// TOML config file (see examples/provisioner.toml)
    #[arg(long, env = "WASMCLOUD_PROVISIONER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
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
}

/// The config file (TOML). Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub connection: FileConnection,
    /// JetStream domain.
    #[serde(default)]
    pub js_domain: Option<String>,
    /// Settings for every resource.
    #[serde(default)]
    pub all: ResourceSettings,
    /// Settings per catalog key (`latticedata`, `wadm_state`, …).
    #[serde(default)]
    pub resources: std::collections::BTreeMap<String, ResourceSettings>,
}

/// `[connection]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnection {
    pub server: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let config: FileConfig = toml::from_str(&text)
            .map_err(|e| format!("config file {} is invalid: {e}", path.display()))?;
        Ok(config)
    }
}

/// Everything resolved: what to connect to and which settings to apply.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub servers: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    pub js_domain: Option<String>,
    pub settings: Settings,
}

/// Combines flags, environment and config file.
pub fn resolve(connect: &ConnectArgs, settings: &SettingsArgs) -> Result<Resolved, String> {
    let file = match &connect.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let mut resolved_settings = Settings {
        all: file.all.clone(),
        resources: file.resources.clone(),
    };
    let flags = ResourceSettings {
        replicas: settings.replicas,
        storage: settings.storage,
        max_bytes: settings.max_bytes,
        placement: (settings.placement_cluster.is_some() || !settings.placement_tags.is_empty())
            .then(|| Placement {
                cluster: settings.placement_cluster.clone(),
                tags: settings.placement_tags.clone(),
            }),
    };
    // A flag sets every resource, so it also wins over the file's per-resource values.
    if flags.replicas.is_some() {
        resolved_settings = resolved_settings.with_replicas(flags.replicas.unwrap_or(1));
    }
    if let Some(s) = flags.storage {
        resolved_settings.all.storage = Some(s);
        resolved_settings
            .resources
            .values_mut()
            .for_each(|r| r.storage = None);
    }
    if let Some(b) = flags.max_bytes {
        resolved_settings.all.max_bytes = Some(b);
        resolved_settings
            .resources
            .values_mut()
            .for_each(|r| r.max_bytes = None);
    }
    if let Some(p) = flags.placement {
        resolved_settings.all.placement = Some(p);
        resolved_settings
            .resources
            .values_mut()
            .for_each(|r| r.placement = None);
    }
    resolved_settings.validate()?;
    let js_domain = connect
        .js_domain
        .clone()
        .or(file.js_domain)
        .filter(|d| !d.is_empty());
    if let Some(d) = &js_domain {
        if !d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "JetStream domain {d:?} is invalid: use A-Z, a-z, 0-9, `_` and `-`"
            ));
        }
    }
    Ok(Resolved {
        servers: connect
            .server
            .clone()
            .or(file.connection.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        user: connect.user.clone().or(file.connection.user),
        password: connect.password.clone().or(file.connection.password),
        creds: connect.creds.clone().or(file.connection.creds),
        nkey: connect.nkey.clone().or(file.connection.nkey),
        js_domain,
        settings: resolved_settings,
    })
}

/// Connects with the resolved options. `known`, when given, is forgotten on every
/// reconnect: advisories sent while disconnected are lost, so the cache must be re-checked.
pub async fn connect(
    resolved: &Resolved,
    name: &str,
    known: Option<Arc<KnownStreams>>,
) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    if let Some(creds) = &resolved.creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            format!(
                "cannot use credentials file {}: {e} (check the path and that it holds a user \
                 JWT and seed)",
                creds.display()
            )
        })?;
    }
    if let Some(nkey) = &resolved.nkey {
        let seed = std::fs::read_to_string(nkey)
            .map_err(|e| format!("cannot read nkey seed file {}: {e}", nkey.display()))?;
        // A trailing newline in the file makes authentication fail.
        options = options.nkey(seed.trim().to_string());
    }
    match (&resolved.user, &resolved.password) {
        (Some(u), Some(p)) => options = options.user_and_password(u.clone(), p.clone()),
        (Some(_), None) | (None, Some(_)) => {
            return Err("--user and --password go together: give both or neither".into())
        }
        _ => {}
    }
    options = options.event_callback(move |event| {
        let known = known.clone();
        async move {
            match event {
                async_nats::Event::Connected => {
                    if let Some(k) = &known {
                        k.forget_all();
                    }
                    tracing::info!("connected to NATS");
                }
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::debug!("NATS event: {other}"),
            }
        }
    });
    let servers: Vec<&str> = resolved.servers.split(',').map(str::trim).collect();
    let addrs: Vec<async_nats::ServerAddr> = servers
        .iter()
        .map(|s| {
            s.parse().map_err(|e| {
                format!("server URL {s:?} is invalid: {e} (expected e.g. nats://127.0.0.1:4222)")
            })
        })
        .collect::<Result<_, _>>()?;
    // The first connection fails fast (a wrong URL or credentials is reported, not retried
    // forever); after that the client reconnects on its own.
    let client = tokio::time::timeout(Duration::from_secs(10), options.connect(addrs))
        .await
        .map_err(|_| {
            format!(
                "could not connect to {} within 10 s: check the URL and that the server is up",
                resolved.servers
            )
        })?
        .map_err(|e| explain_connect_error(&resolved.servers, &e))?;
    Ok(client)
}

fn explain_connect_error(servers: &str, e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as K;
    let hint = match e.kind() {
        K::AuthorizationViolation | K::Authentication => {
            "authentication failed: check --user/--password, --creds or --nkey"
        }
        K::Tls => "TLS failed: check the server's certificate and the CA",
        K::TimedOut => "timed out: check the URL and that the server is reachable",
        K::Io => "the server refused or dropped the connection: check the URL and port",
        _ => "check the URL and credentials",
    };
    format!("could not connect to {servers}: {e} ({hint})")
}
