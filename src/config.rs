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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::context::{self, LoadedContext, NatsContext};
use crate::policy::LatticePolicyArgs;
use crate::reconcile::KnownStreams;
use crate::settings::{Placement, ResourceSettings, Settings, Storage};

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
    pub resources: std::collections::BTreeMap<String, ResourceSettings>,
    /// Host bootstrap authentication (`serve --require-signed-hosts`, `--trusted-host-key`…).
    #[serde(default)]
    pub hosts: crate::policy::FileHosts,
    /// Tenant accounts served besides the provisioner's own (`[accounts.<name>]`, see
    /// `accounts::config`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub accounts: std::collections::BTreeMap<String, crate::accounts::config::FileAccount>,
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
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let config: FileConfig = toml::from_str(&text)
            .map_err(|e| format!("config file {} is invalid: {e}", path.display()))?;
        Ok(config)
    }
}

/// How the provisioner authenticates.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// A `.creds` file (user JWT and seed).
    Creds(PathBuf),
    /// A file holding a user nkey seed.
    Nkey(PathBuf),
    /// A user JWT and its seed given inline (natscli's `user_jwt` and `user_seed`).
    JwtAndSeed {
        jwt: String,
        seed: String,
    },
}

impl std::fmt::Debug for Auth {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Auth {
    /// For logs and `config check`: the method, without secrets.
    pub fn describe(&self) -> String {
        match self {
            Auth::None => "none".into(),
            Auth::UserPassword { user, .. } => format!("user {user:?} with a password"),
            Auth::Token(_) => "token".into(),
            Auth::Creds(p) => format!("credentials file {}", p.display()),
            Auth::Nkey(p) => format!("nkey seed file {}", p.display()),
            Auth::JwtAndSeed { .. } => "user JWT and seed from the context".into(),
        }
    }

    /// The one method of a source, or an error naming the clash. `source` names the source
    /// for messages ("flags", "the config file", "context prod").
    pub(crate) fn from_parts(
        source: &str,
        user: Option<String>,
        password: Option<String>,
        token: Option<String>,
        creds: Option<PathBuf>,
        nkey: Option<PathBuf>,
        jwt_and_seed: Option<(String, String)>,
    ) -> Result<Auth, String> {
        let mut found = Vec::new();
        match (user, password) {
            (Some(user), Some(password)) => found.push(Auth::UserPassword { user, password }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(format!(
                    "{source}: user and password go together (--user/--password): give both or \
                     neither"
                ))
            }
            (None, None) => {}
        }
        if let Some(t) = token {
            found.push(Auth::Token(t));
        }
        if let Some(c) = creds {
            found.push(Auth::Creds(c));
        }
        if let Some(n) = nkey {
            found.push(Auth::Nkey(n));
        }
        if let Some((jwt, seed)) = jwt_and_seed {
            found.push(Auth::JwtAndSeed { jwt, seed });
        }
        match found.len() {
            0 => Ok(Auth::None),
            1 => Ok(found.remove(0)),
            _ => Err(format!(
                "{source}: more than one way to authenticate ({}): keep one",
                found
                    .iter()
                    .map(Auth::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flags,
    File,
    Context,
}

impl Auth {
    fn from_url(credentials: &crate::server_url::UrlCredentials) -> Auth {
        use crate::server_url::UrlCredentials as C;
        match credentials {
            C::UserPassword { user, password } => Auth::UserPassword {
                user: user.clone(),
                password: password.clone(),
            },
            C::Token(t) => Auth::Token(t.clone()),
        }
    }

    /// This source's method, with the credentials of the server URL it gave (if any): one
    /// or the other, never both.
    fn with_url_auth(self, source: &str, url: Option<Auth>) -> Result<Auth, String> {
        match (self, url) {
            (auth, None) => Ok(auth),
            (Auth::None, Some(url)) => Ok(url),
            (auth, Some(url)) => Err(format!(
                "{source}: more than one way to authenticate ({} in the server URL, {}): keep \
                 one",
                url.describe(),
                auth.describe()
            )),
        }
    }
}

/// TLS settings. With none of them, TLS is still used when the URL says `tls://` or the
/// server requires it, verified against the system's trusted CAs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub first: bool,
}

impl Tls {
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.first
    }
}

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
    pub file_hosts: crate::policy::FileHosts,
    /// `[accounts.*]` from the config file: tenant accounts served besides the own one.
    pub file_accounts: std::collections::BTreeMap<String, crate::accounts::config::FileAccount>,
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

/// Combines flags, environment, config file and NATS context.
pub fn resolve(connect: &ConnectArgs, settings: &SettingsArgs) -> Result<Resolved, String> {
    let file = match &connect.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    // A context named by flag or file must exist; otherwise natscli's selected one is used.
    let context_name = connect
        .context
        .clone()
        .or_else(|| file.connection.context.clone());
    let loaded = context::load(context_name.as_deref())?;
    combine(connect, settings, file, loaded)
}

/// [`resolve`] with the config file and the context already read.
pub fn combine(
    connect: &ConnectArgs,
    settings: &SettingsArgs,
    file: FileConfig,
    loaded: Option<LoadedContext>,
) -> Result<Resolved, String> {
    let resolved_settings = resolve_settings(&file, settings)?;
    let ctx = loaded
        .as_ref()
        .map(|l| l.settings.clone())
        .unwrap_or_default();
    let js_domain = connect
        .js_domain
        .clone()
        .or(file.js_domain.clone())
        .or_else(|| NatsContext::get(&ctx.jetstream_domain))
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
    let f = &file.connection;
    // The server list and where it came from: its credentials belong to that source.
    let (servers, server_source) = match (&connect.server, &f.server, NatsContext::get(&ctx.url)) {
        (Some(s), _, _) => (s.clone(), Source::Flags),
        (None, Some(s), _) => (s.clone(), Source::File),
        (None, None, Some(s)) => (s, Source::Context),
        (None, None, None) => (DEFAULT_SERVER.to_string(), Source::Flags),
    };
    let servers = crate::server_url::split(&servers)?;
    let url_auth = |source: Source| match (&servers.credentials, source == server_source) {
        (Some(c), true) => Some(Auth::from_url(c)),
        _ => None,
    };
    let flag_auth = Auth::from_parts(
        "the flags and environment",
        connect.user.clone(),
        connect.password.clone(),
        connect.token.clone(),
        connect.creds.clone(),
        connect.nkey.clone(),
        None,
    )?
    .with_url_auth("the flags and environment", url_auth(Source::Flags))?;
    let file_auth = Auth::from_parts(
        "[connection] in the config file",
        f.user.clone(),
        f.password.clone(),
        f.token.clone(),
        f.creds.clone(),
        f.nkey.clone(),
        None,
    )?
    .with_url_auth("[connection] in the config file", url_auth(Source::File))?;
    let auth = match (flag_auth, file_auth) {
        (Auth::None, Auth::None) => context_auth(loaded.as_ref())?
            .with_url_auth("the NATS context", url_auth(Source::Context))?,
        (Auth::None, from_file) => from_file,
        (from_flags, _) => from_flags,
    };
    let tls = Tls {
        ca: connect
            .tls_ca
            .clone()
            .or(f.tls_ca.clone())
            .or_else(|| NatsContext::path(&ctx.ca)),
        cert: connect
            .tls_cert
            .clone()
            .or(f.tls_cert.clone())
            .or_else(|| NatsContext::path(&ctx.cert)),
        key: connect
            .tls_key
            .clone()
            .or(f.tls_key.clone())
            .or_else(|| NatsContext::path(&ctx.key)),
        first: f.tls_first.unwrap_or(ctx.tls_first),
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(
            "a client certificate needs its key: give --tls-cert and --tls-key together".into(),
        );
    }
    Ok(Resolved {
        servers: servers.redacted,
        auth,
        tls,
        inbox_prefix: match connect
            .inbox_prefix
            .clone()
            .or(f.inbox_prefix.clone())
            .or_else(|| NatsContext::get(&ctx.inbox_prefix))
        {
            Some(p) => Some(crate::permissions::validate_inbox_prefix(&p)?),
            None => None,
        },
        js_domain,
        context: loaded.map(|l| (l.name, l.path)),
        settings: resolved_settings,
        file_lattice_policy: LatticePolicyArgs {
            allow_lattice: file.allow_lattices.clone(),
            max_lattices: file.max_lattices,
            reserve_lattice_name: file.reserved_lattice_names.clone(),
        },
        file_hosts: file.hosts.clone(),
        file_accounts: file.accounts.clone(),
    })
}

/// natscli uses the first of user, creds, nkey, user_jwt that is set, and adds a token on
/// top; this tool takes one method, so a context with several is reported.
fn context_auth(loaded: Option<&LoadedContext>) -> Result<Auth, String> {
    let Some(l) = loaded else {
        return Ok(Auth::None);
    };
    let c = &l.settings;
    let jwt_and_seed = match (
        NatsContext::get(&c.user_jwt),
        NatsContext::get(&c.user_seed),
    ) {
        (Some(jwt), Some(seed)) => Some((jwt, seed)),
        (None, None) => None,
        _ => {
            return Err(format!(
                "NATS context {:?}: `user_jwt` needs `user_seed` (bearer JWTs are not supported)",
                l.name
            ))
        }
    };
    // natscli ignores a password without a user; so does this.
    let user = NatsContext::get(&c.user);
    let password = user.as_ref().map(|_| c.password.clone());
    Auth::from_parts(
        &format!("NATS context {:?}", l.name),
        user,
        password,
        NatsContext::get(&c.token),
        NatsContext::path(&c.creds),
        NatsContext::path(&c.nkey),
        jwt_and_seed,
    )
}

/// The resource settings: flags over the file's values.
fn resolve_settings(file: &FileConfig, settings: &SettingsArgs) -> Result<Settings, String> {
    let mut resolved_settings = Settings {
        all: file.all.clone(),
        resources: file.resources.clone(),
        max_request_replicas: settings.max_request_replicas.or(file.max_request_replicas),
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
    Ok(resolved_settings)
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
    if let Some((context, path)) = &resolved.context {
        tracing::info!(context = %context, file = %path.display(), "using NATS context");
    }
    options = match &resolved.auth {
        Auth::None => options,
        Auth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => options.token(token.clone()),
        Auth::Creds(creds) => options.credentials_file(creds).await.map_err(|e| {
            format!(
                "cannot use credentials file {}: {e} (check the path and that it holds a user \
                 JWT and seed)",
                creds.display()
            )
        })?,
        Auth::Nkey(nkey) => {
            let seed = std::fs::read_to_string(nkey)
                .map_err(|e| format!("cannot read nkey seed file {}: {e}", nkey.display()))?;
            // A trailing newline in the file makes authentication fail.
            options.nkey(seed.trim().to_string())
        }
        Auth::JwtAndSeed { jwt, seed } => options
            .credentials(&crate::creds::format_creds(jwt.trim(), seed.trim()))
            .map_err(|e| format!("the context's user_jwt/user_seed cannot be used: {e}"))?,
    };
    let tls = &resolved.tls;
    for (what, path) in [
        ("TLS CA file (--tls-ca)", &tls.ca),
        ("TLS certificate (--tls-cert)", &tls.cert),
        ("TLS key (--tls-key)", &tls.key),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(format!("{what} {}: no such file", p.display()));
            }
        }
    }
    if let Some(ca) = &tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.first {
        options = options.tls_first();
    }
    if tls.is_set() {
        options = options.require_tls(true);
    }
    if let Some(prefix) = &resolved.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
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
    // `servers` holds no secret (see `Resolved::servers`); the user info is dropped so that
    // async-nats, which would ignore it, never logs even the redacted form as an address.
    let addrs: Vec<async_nats::ServerAddr> = resolved
        .servers
        .split(',')
        .map(str::trim)
        .map(|s| {
            crate::server_url::without_user_info(s)
                .parse()
                .map_err(|e| {
                    format!(
                        "server URL {} is invalid: {e} (expected e.g. nats://127.0.0.1:4222)",
                        crate::server_url::redact(s)
                    )
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
                crate::server_url::redact(&resolved.servers)
            )
        })?
        .map_err(|e| explain_connect_error(resolved, &e))?;
    Ok(client)
}

fn explain_connect_error(resolved: &Resolved, e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as K;
    let from = match &resolved.context {
        Some((name, _)) => format!(" (settings from NATS context {name:?})"),
        None => String::new(),
    };
    // async-nats reports a failed certificate check as an I/O error.
    let message = e.to_string().to_lowercase();
    let tls_failed = e.kind() == K::Tls
        || ["certificate", "tls", "handshake"]
            .iter()
            .any(|w| message.contains(w));
    let hint = match e.kind() {
        _ if tls_failed => "TLS failed: check the server's certificate, that --tls-ca names \
                            the CA that signed it, the host name in the URL, and \
                            --tls-cert/--tls-key if the server verifies clients"
            .to_string(),
        K::AuthorizationViolation | K::Authentication => format!(
            "authentication failed with {}: check --user/--password (or user:password in \
             the URL), --token, --creds or --nkey, and that the user exists on the server",
            resolved.auth.describe()
        ),
        K::TimedOut => "timed out: check the URL and that the server is reachable".to_string(),
        K::Io => "the server refused or dropped the connection: check the URL and port, and \
                  whether the server requires TLS (tls:// URL, --tls-ca)"
            .to_string(),
        _ => "check the URL, the credentials and the TLS settings".to_string(),
    };
    format!(
        "could not connect to {}{from}: {e} ({hint})",
        crate::server_url::redact(&resolved.servers)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_gives_one_auth_method() {
        let args = ConnectArgs {
            creds: Some("a.creds".into()),
            token: Some("t".into()),
            ..Default::default()
        };
        let err =
            combine(&args, &SettingsArgs::default(), FileConfig::default(), None).unwrap_err();
        assert!(err.contains("more than one way to authenticate"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file_and_auth_is_taken_whole() {
        let file: FileConfig = toml::from_str(
            r#"
            js_domain = "file"
            [connection]
            server = "nats://file:4222"
            user = "u"
            password = "p"
            tls_ca = "/file/ca.pem"
            "#,
        )
        .unwrap();
        let args = ConnectArgs {
            token: Some("t".into()),
            js_domain: Some("flag".into()),
            ..Default::default()
        };
        let r = combine(&args, &SettingsArgs::default(), file, None).unwrap();
        assert_eq!(r.auth, Auth::Token("t".into()));
        assert_eq!(r.servers, "nats://file:4222");
        assert_eq!(r.js_domain.as_deref(), Some("flag"));
        assert_eq!(r.tls.ca, Some(PathBuf::from("/file/ca.pem")));
    }

    #[test]
    fn context_fills_what_flags_and_file_leave_open() {
        let settings = context::parse(
            r#"{"url":"nats://ctx:4222","creds":"/ctx/u.creds","ca":"/ctx/ca.pem",
                "jetstream_domain":"hub","inbox_prefix":"_X","tls_first":true}"#,
        )
        .unwrap();
        let loaded = LoadedContext {
            name: "prod".into(),
            path: "/cfg/nats/context/prod.json".into(),
            settings,
        };
        let flags = ConnectArgs {
            server: Some("nats://flag:4222".into()),
            ..Default::default()
        };
        let r = combine(
            &flags,
            &SettingsArgs::default(),
            FileConfig::default(),
            Some(loaded.clone()),
        )
        .unwrap();
        assert_eq!(r.servers, "nats://flag:4222");
        assert_eq!(r.auth, Auth::Creds("/ctx/u.creds".into()));
        assert_eq!(r.tls.ca, Some(PathBuf::from("/ctx/ca.pem")));
        assert!(r.tls.first);
        assert_eq!(r.js_domain.as_deref(), Some("hub"));
        assert_eq!(r.inbox_prefix.as_deref(), Some("_X"));
        assert_eq!(r.context.as_ref().map(|c| c.0.as_str()), Some("prod"));
        // Credentials from the flags replace the context's as a whole.
        let flags = ConnectArgs {
            user: Some("a".into()),
            password: Some("b".into()),
            ..Default::default()
        };
        let r = combine(
            &flags,
            &SettingsArgs::default(),
            FileConfig::default(),
            Some(loaded),
        )
        .unwrap();
        assert_eq!(
            r.auth,
            Auth::UserPassword {
                user: "a".into(),
                password: "b".into()
            }
        );
        assert_eq!(r.servers, "nats://ctx:4222");
    }

    #[test]
    fn client_cert_needs_its_key() {
        let args = ConnectArgs {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let err =
            combine(&args, &SettingsArgs::default(), FileConfig::default(), None).unwrap_err();
        assert!(err.contains("--tls-key"), "{err}");
    }

    #[test]
    fn credentials_in_the_url_belong_to_the_source_that_gave_it() {
        let flags = ConnectArgs {
            server: Some("nats://prov:s3cret@h:4222".into()),
            ..Default::default()
        };
        let r = combine(
            &flags,
            &SettingsArgs::default(),
            FileConfig::default(),
            None,
        )
        .unwrap();
        assert_eq!(
            r.auth,
            Auth::UserPassword {
                user: "prov".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(r.servers, "nats://prov:***@h:4222");
        assert!(!r.describe_connection().to_string().contains("s3cret"));
        // With other credentials from the same source: refused, without the secret.
        let clash = ConnectArgs {
            token: Some("t".into()),
            ..flags.clone()
        };
        let err = combine(
            &clash,
            &SettingsArgs::default(),
            FileConfig::default(),
            None,
        )
        .unwrap_err();
        assert!(err.contains("more than one way"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        // A URL from the file with a token; the flags' --creds wins as a whole.
        let file: FileConfig =
            toml::from_str("[connection]\nserver = \"nats://t0k@h:4222\"").unwrap();
        let r = combine(
            &ConnectArgs::default(),
            &SettingsArgs::default(),
            file.clone(),
            None,
        )
        .unwrap();
        assert_eq!(r.auth, Auth::Token("t0k".into()));
        assert_eq!(r.servers, "nats://***@h:4222");
        let creds = ConnectArgs {
            creds: Some("u.creds".into()),
            ..Default::default()
        };
        let r = combine(&creds, &SettingsArgs::default(), file, None).unwrap();
        assert_eq!(r.auth, Auth::Creds("u.creds".into()));
    }

    #[test]
    fn secrets_stay_out_of_descriptions() {
        let auth = Auth::UserPassword {
            user: "prov".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(!Auth::Token("s3cret".into()).describe().contains("s3cret"));
    }
}
