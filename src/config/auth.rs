//! How the provisioner authenticates (one method per source, never two), and TLS.

use std::path::PathBuf;

use crate::config_error::ConfigError;
use crate::server_url::UrlCredentials;

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
    ) -> Result<Auth, ConfigError> {
        let mut found = Vec::new();
        match (user, password) {
            (Some(user), Some(password)) => found.push(Auth::UserPassword { user, password }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "{source}: user and password go together (--user/--password): give both or \
                     neither"
                )))
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
            _ => Err(ConfigError::Invalid(format!(
                "{source}: more than one way to authenticate ({}): keep one",
                found
                    .iter()
                    .map(Auth::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl Auth {
    pub(super) fn from_url(credentials: &UrlCredentials) -> Auth {
        use UrlCredentials as C;
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
    pub(super) fn with_url_auth(
        self,
        source: &str,
        url: Option<Auth>,
    ) -> Result<Auth, ConfigError> {
        match (self, url) {
            (auth, None) => Ok(auth),
            (Auth::None, Some(url)) => Ok(url),
            (auth, Some(url)) => Err(ConfigError::Invalid(format!(
                "{source}: more than one way to authenticate ({} in the server URL, {}): keep \
                 one",
                url.describe(),
                auth.describe()
            ))),
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
