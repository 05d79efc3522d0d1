//! Connecting with the resolved settings, and explaining a failure with the next step.

use std::sync::Arc;
use std::time::Duration;

use super::{Auth, Resolved, Tls};
use crate::config_error::ConfigError;
use crate::known::KnownStreams;
use crate::server_url;

/// Connects with the resolved options. `known`, when given, is forgotten on every
/// reconnect: advisories sent while disconnected are lost, so the cache must be re-checked.
pub async fn connect(
    resolved: &Resolved,
    name: &str,
    known: Option<Arc<KnownStreams>>,
) -> Result<async_nats::Client, ConfigError> {
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    if let Some((context, path)) = &resolved.context {
        tracing::info!(context = %context, file = %path.display(), "using NATS context");
    }
    let mut options = with_tls(with_auth(options, &resolved.auth).await?, &resolved.tls)?;
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
    // The first connection fails fast (a wrong URL or credentials is reported, not retried
    // forever); after that the client reconnects on its own.
    let client = tokio::time::timeout(
        Duration::from_secs(10),
        options.connect(server_addrs(resolved)?),
    )
    .await
    .map_err(|_| {
        ConfigError::Connect(format!(
            "could not connect to {} within 10 s: check the URL and that the server is up",
            server_url::redact(&resolved.servers)
        ))
    })?
    .map_err(|e| explain_connect_error(resolved, &e))?;
    Ok(client)
}

/// The options with the one authentication method (files are read here).
async fn with_auth(
    options: async_nats::ConnectOptions,
    auth: &Auth,
) -> Result<async_nats::ConnectOptions, ConfigError> {
    Ok(match auth {
        Auth::None => options,
        Auth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => options.token(token.clone()),
        Auth::Creds(creds) => options.credentials_file(creds).await.map_err(|e| {
            ConfigError::File(format!(
                "cannot use credentials file {}: {e} (check the path and that it holds a user \
                 JWT and seed)",
                creds.display()
            ))
        })?,
        Auth::Nkey(nkey) => {
            let seed = std::fs::read_to_string(nkey).map_err(|e| {
                ConfigError::File(format!(
                    "cannot read nkey seed file {}: {e}",
                    nkey.display()
                ))
            })?;
            // A trailing newline in the file makes authentication fail.
            options.nkey(seed.trim().to_string())
        }
        Auth::JwtAndSeed { jwt, seed } => options
            .credentials(&crate::creds::format_creds(jwt.trim(), seed.trim()))
            .map_err(|e| {
                ConfigError::Credentials(format!(
                    "the context's user_jwt/user_seed cannot be used: {e}"
                ))
            })?,
    })
}

/// The options with the TLS files (which must exist) and TLS required when any is set.
fn with_tls(
    mut options: async_nats::ConnectOptions,
    tls: &Tls,
) -> Result<async_nats::ConnectOptions, ConfigError> {
    for (what, path) in [
        ("TLS CA file (--tls-ca)", &tls.ca),
        ("TLS certificate (--tls-cert)", &tls.cert),
        ("TLS key (--tls-key)", &tls.key),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(ConfigError::File(format!(
                    "{what} {}: no such file",
                    p.display()
                )));
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
    Ok(options)
}

/// `servers` holds no secret (see `Resolved::servers`); the user info is dropped so that
/// async-nats, which would ignore it, never logs even the redacted form as an address.
fn server_addrs(resolved: &Resolved) -> Result<Vec<async_nats::ServerAddr>, ConfigError> {
    resolved
        .servers
        .split(',')
        .map(str::trim)
        .map(|s| {
            server_url::without_user_info(s).parse().map_err(|e| {
                ConfigError::Connect(format!(
                    "server URL {} is invalid: {e} (expected e.g. nats://127.0.0.1:4222)",
                    server_url::redact(s)
                ))
            })
        })
        .collect()
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
        server_url::redact(&resolved.servers)
    )
}
