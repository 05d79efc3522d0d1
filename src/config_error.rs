//! The typed error of the command-line side: settings (flags, environment, config file,
//! NATS context), files, credentials and the connection. The service's replies have their
//! own type (`error::ProvisionError`, an ADR-32 code); this one ends as `error: <message>`
//! on stderr and exit code 1, so every message names what to fix.
//!
//! A leaf module (it imports nothing of the crate): `context`, `server_url`,
//! `permissions`, `creds`, `config`, `accounts`, `ping` and `cli` all return it without
//! importing each other.

/// What went wrong, by what the operator has to look at; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value (flag, environment variable, config file, NATS context, argument) is
    /// invalid or contradicts another.
    #[error("{0}")]
    Invalid(String),
    /// A file the settings name cannot be found, read or written.
    #[error("{0}")]
    File(String),
    /// A seed or a JWT cannot be used, or a user cannot be minted with it.
    #[error("{0}")]
    Credentials(String),
    /// NATS could not be reached, refused the connection or did not answer.
    #[error("{0}")]
    Connect(String),
    /// An error in one part of the settings: `<where>: <error>` (`[accounts.A] in the
    /// config file: …`, `<file>: [hosts]: …`).
    #[error("{within}: {error}")]
    Within {
        within: String,
        error: Box<ConfigError>,
    },
    /// A message from a part of the crate that reports plain text (lattice policy,
    /// resource settings, request schemas, backups).
    #[error("{0}")]
    Other(String),
}

impl ConfigError {
    /// This error, said to be in `within` (a file, a table, a source of settings).
    pub fn within(self, within: impl std::fmt::Display) -> ConfigError {
        ConfigError::Within {
            within: within.to_string(),
            error: Box::new(self),
        }
    }

    /// The error without the places it was found in.
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::Within { error, .. } => error.root(),
            other => other,
        }
    }
}

/// Plain-text errors of other modules pass through unchanged.
impl From<String> for ConfigError {
    fn from(message: String) -> Self {
        ConfigError::Other(message)
    }
}

/// For callers that still report plain text (`bootstrap`, `backup`): the same message.
impl From<ConfigError> for String {
    fn from(error: ConfigError) -> Self {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigError;

    #[test]
    fn the_message_names_where_and_the_root_says_what() {
        let e = ConfigError::Invalid("user_expiry is for signing_key".into())
            .within("[accounts.A] in the config file");
        assert_eq!(
            e.to_string(),
            "[accounts.A] in the config file: user_expiry is for signing_key"
        );
        assert!(matches!(e.root(), ConfigError::Invalid(_)));
        assert_eq!(String::from(e.clone()), e.to_string());
    }
}
