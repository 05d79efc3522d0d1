//! Flags, environment, config file and NATS context combined into one [`Resolved`].

use super::{Auth, ConnectArgs, FileConfig, Resolved, SettingsArgs, Tls, DEFAULT_SERVER};
use crate::config_error::ConfigError;
use crate::context::{self, LoadedContext, NatsContext};
use crate::permissions;
use crate::policy::LatticePolicyArgs;
use crate::server_url;
use crate::settings::{Placement, ResourceSettings, Settings};

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flags,
    File,
    Context,
}

/// Combines flags, environment, config file and NATS context.
pub fn resolve(connect: &ConnectArgs, settings: &SettingsArgs) -> Result<Resolved, ConfigError> {
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
) -> Result<Resolved, ConfigError> {
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
        permissions::validate_js_domain(d)?;
    }
    let f = &file.connection;
    // The server list and where it came from: its credentials belong to that source.
    let (servers, server_source) = match (&connect.server, &f.server, NatsContext::get(&ctx.url)) {
        (Some(s), _, _) => (s.clone(), Source::Flags),
        (None, Some(s), _) => (s.clone(), Source::File),
        (None, None, Some(s)) => (s, Source::Context),
        (None, None, None) => (DEFAULT_SERVER.to_string(), Source::Flags),
    };
    let servers = server_url::split(&servers)?;
    let url_auth = |source: Source| match (&servers.credentials, source == server_source) {
        (Some(c), true) => Some(Auth::from_url(c)),
        _ => None,
    };
    let auth = first_auth(connect, &file, loaded.as_ref(), url_auth)?;
    let tls = tls(connect, &file, &ctx)?;
    let inbox_prefix = connect
        .inbox_prefix
        .clone()
        .or(f.inbox_prefix.clone())
        .or_else(|| NatsContext::get(&ctx.inbox_prefix))
        .map(|p| permissions::validate_inbox_prefix(&p))
        .transpose()?;
    Ok(Resolved {
        servers: servers.redacted,
        auth,
        tls,
        inbox_prefix,
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

/// The method of the first source that has one: flags (and environment), then the file,
/// then the context. `url_auth` gives a source the credentials of the server URL, if that
/// source gave the URL.
fn first_auth(
    connect: &ConnectArgs,
    file: &FileConfig,
    loaded: Option<&LoadedContext>,
    url_auth: impl Fn(Source) -> Option<Auth>,
) -> Result<Auth, ConfigError> {
    let f = &file.connection;
    // Each source's method is checked even when an earlier one wins: a clash in the
    // file is reported although a flag would override it.
    let mut first = Auth::None;
    for (name, source, [user, password, token], [creds, nkey]) in [
        (
            "the flags and environment",
            Source::Flags,
            [&connect.user, &connect.password, &connect.token],
            [&connect.creds, &connect.nkey],
        ),
        (
            "[connection] in the config file",
            Source::File,
            [&f.user, &f.password, &f.token],
            [&f.creds, &f.nkey],
        ),
    ] {
        let auth = Auth::from_parts(
            name,
            user.clone(),
            password.clone(),
            token.clone(),
            creds.clone(),
            nkey.clone(),
            None,
        )?
        .with_url_auth(name, url_auth(source))?;
        if first == Auth::None {
            first = auth;
        }
    }
    match first {
        Auth::None => {
            context_auth(loaded)?.with_url_auth("the NATS context", url_auth(Source::Context))
        }
        auth => Ok(auth),
    }
}

/// TLS files one by one (flag, file, context); a client certificate needs its key.
fn tls(connect: &ConnectArgs, file: &FileConfig, ctx: &NatsContext) -> Result<Tls, ConfigError> {
    let f = &file.connection;
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
        return Err(ConfigError::Invalid(
            "a client certificate needs its key: give --tls-cert and --tls-key together".into(),
        ));
    }
    Ok(tls)
}

/// natscli uses the first of user, creds, nkey, user_jwt that is set, and adds a token on
/// top; this tool takes one method, so a context with several is reported.
fn context_auth(loaded: Option<&LoadedContext>) -> Result<Auth, ConfigError> {
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
            return Err(ConfigError::Invalid(format!(
                "NATS context {:?}: `user_jwt` needs `user_seed` (bearer JWTs are not supported)",
                l.name
            )))
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
fn resolve_settings(file: &FileConfig, settings: &SettingsArgs) -> Result<Settings, ConfigError> {
    let from_file = Settings {
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
    let resolved_settings = override_all(&from_file, &flags);
    resolved_settings.validate()?;
    Ok(resolved_settings)
}

/// A copy of `settings` where each value `over` sets holds for every resource: it replaces
/// `[all]`'s and clears the per-resource ones (a flag, or an account's `replicas`, is
/// meant for every resource, so it also wins over the file's per-resource values).
pub(crate) fn override_all(settings: &Settings, over: &ResourceSettings) -> Settings {
    fn set<T: Clone>(
        s: &mut Settings,
        value: &Option<T>,
        field: fn(&mut ResourceSettings) -> &mut Option<T>,
    ) {
        if let Some(v) = value {
            *field(&mut s.all) = Some(v.clone());
            s.resources.values_mut().for_each(|r| *field(r) = None);
        }
    }
    let mut s = settings.clone();
    set(&mut s, &over.replicas, |r| &mut r.replicas);
    set(&mut s, &over.storage, |r| &mut r.storage);
    set(&mut s, &over.max_bytes, |r| &mut r.max_bytes);
    set(&mut s, &over.placement, |r| &mut r.placement);
    s
}
