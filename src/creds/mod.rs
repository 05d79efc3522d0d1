//! Credentials for operator mode (decentralized auth): user JWTs and `.creds` files.
//!
//! In operator mode a NATS user is an nkey pair plus a JWT, signed by its account (or one
//! of the account's signing keys), that carries the user's permissions. The wasmCloud v1
//! host authenticates that way (a `.creds` file), so `wasmcloud-provisioner creds` mints
//! one whose permissions are exactly a role's least-privilege template.
//!
//! The encoding follows nats-io/jwt v2, which nats-server uses to decode and check it:
//! - the token is `base64url(header) "." base64url(claims) "." base64url(signature)`,
//!   unpadded, with the header `{"typ":"JWT","alg":"ed25519-nkey"}`;
//! - the signature is the issuer nkey's ed25519 signature over the first two parts;
//! - `iss` is the issuer's public key and `iat` the issue time (Unix seconds);
//! - `jti` is the unpadded base32 of the SHA-512/256 digest of the JSON of the standard
//!   claims (`aud`, `exp`, `iat`, `iss`, `name`, `nbf`, `sub`, empty ones left out) with
//!   `jti` itself empty, exactly as Go's `encoding/json` writes them;
//! - user permissions live under `nats`: `pub`/`sub` `{allow, deny}`, `resp`, the limits
//!   `subs`/`data`/`payload` (-1: unlimited), `type: "user"`, `version: 2`, and
//!   `issuer_account` when a signing key signed it.
//!
//! The `.creds` file is the text nats-io/jwt's `FormatUserConfig` writes (what `nsc
//! generate creds` prints), which async-nats, natscli and the wasmCloud host all read.

use std::path::Path;
use std::time::Duration;

use nkeys::{KeyPair, KeyPairType};
use serde_json::{json, Map, Value};

use crate::config_error::ConfigError;
use crate::permissions::{Permissions, Rules};

mod file;
mod jwt;

use crate::clock::unix_now;
pub use file::{format_creds, write_creds};
pub use jwt::{decode_jwt, encode_jwt};

/// A freshly minted user: its JWT and the seed that proves it owns the JWT's subject.
pub struct MintedUser {
    pub jwt: String,
    pub seed: String,
    pub public_key: String,
    /// When the JWT expires (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
}

/// The key that signs user JWTs, and the account it speaks for.
pub struct AccountSigner {
    key: KeyPair,
    /// The account's public key when `key` is one of its signing keys.
    issuer_account: Option<String>,
}

impl AccountSigner {
    /// `key` is the account's own key, or one of its signing keys; in the second case
    /// `account` must name the account (its public key, `A…`).
    pub fn new(key: KeyPair, account: Option<&str>) -> Result<Self, ConfigError> {
        if key.key_pair_type() != KeyPairType::Account {
            return Err(ConfigError::Credentials(format!(
                "the signing key {} is not an account key: give the account's seed (SA…) \
                 or the seed of one of its signing keys",
                key.public_key()
            )));
        }
        let issuer_account = match account {
            None => None,
            Some(a) if a == key.public_key() => None,
            Some(a) => {
                if !a.starts_with('A') || KeyPair::from_public_key(a).is_err() {
                    return Err(ConfigError::Credentials(format!(
                        "--account {a:?} is not an account public key (it starts with `A`; \
                         `nsc describe account` shows it)"
                    )));
                }
                Some(a.to_string())
            }
        };
        Ok(AccountSigner {
            key,
            issuer_account,
        })
    }

    /// Reads the seed from a file: a bare seed (`nsc` keeps them as `.nk` files), or any
    /// text with the seed on a line of its own (a decorated seed).
    pub fn from_seed_file(path: &Path, account: Option<&str>) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigError::File(format!(
                "cannot read the account seed file {}: {e}",
                path.display()
            ))
        })?;
        // A seed is ASCII; the error names the file and never echoes its contents (a
        // secret, or the wrong file).
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigError::Credentials(format!(
                "{} is not a seed file: byte {} is not UTF-8 text; it should contain the \
                 account's seed (SA…)",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| {
                l.len() > 2 && l.starts_with('S') && l.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .ok_or_else(|| {
                ConfigError::Credentials(format!(
                    "{} holds no nkey seed: it should contain the account's seed (SA…), e.g. \
                     the file `nsc` keeps under ~/.local/share/nats/nsc/keys/keys/A/…",
                    path.display()
                ))
            })?;
        // `seed` is ASCII (checked above), so slicing at 2 is on a character boundary.
        match seed.get(..2).unwrap_or_default() {
            "SA" => {}
            "SO" => {
                return Err(ConfigError::Credentials(format!(
                    "{} holds an operator seed; user JWTs are signed by the account: give the \
                     account's seed or one of its signing keys",
                    path.display()
                )))
            }
            "SU" => {
                return Err(ConfigError::Credentials(format!(
                    "{} holds a user seed; user JWTs are signed by the account: give the \
                     account's seed or one of its signing keys",
                    path.display()
                )))
            }
            _ => {
                return Err(ConfigError::Credentials(format!(
                    "{} holds no account seed (SA…); give the account's seed or one of its \
                     signing keys",
                    path.display()
                )))
            }
        }
        let key = KeyPair::from_seed(seed).map_err(|e| {
            ConfigError::Credentials(format!("the seed in {} is invalid: {e}", path.display()))
        })?;
        AccountSigner::new(key, account)
    }

    /// The account the minted users belong to.
    pub fn account(&self) -> String {
        self.issuer_account
            .clone()
            .unwrap_or_else(|| self.key.public_key())
    }

    /// Mints a user with a new nkey: `expires_at` is Unix seconds (`None`: never).
    pub fn mint_user(
        &self,
        name: &str,
        permissions: &Permissions,
        expires_at: Option<i64>,
    ) -> Result<MintedUser, ConfigError> {
        self.mint_at(name, permissions, unix_now(), expires_at)
    }

    /// Mints a user valid for `valid_for` from its issue time (`None`: never expires).
    /// One clock reading gives both `iat` and `exp`, so `exp - iat` is exactly
    /// `valid_for` (two readings could straddle a second).
    pub fn mint_user_valid_for(
        &self,
        name: &str,
        permissions: &Permissions,
        valid_for: Option<Duration>,
    ) -> Result<MintedUser, ConfigError> {
        let now = unix_now();
        let expires_at = valid_for.map(|d| now.saturating_add(d.as_secs() as i64));
        self.mint_at(name, permissions, now, expires_at)
    }

    fn mint_at(
        &self,
        name: &str,
        permissions: &Permissions,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<MintedUser, ConfigError> {
        let user = KeyPair::new_user();
        let seed = user.seed().map_err(|e| {
            ConfigError::Credentials(format!("cannot encode the new user seed: {e}"))
        })?;
        let mut claims = json!({
            "sub": user.public_key(),
            "name": name,
            "nats": user_nats_claims(permissions, self.issuer_account.as_deref()),
        });
        if let Some(exp) = expires_at {
            claims["exp"] = json!(exp);
        }
        let jwt = encode_jwt(claims, &self.key, now)?;
        Ok(MintedUser {
            jwt,
            seed,
            public_key: user.public_key(),
            expires_at,
        })
    }
}

/// The `nats` claim of a user JWT.
fn user_nats_claims(p: &Permissions, issuer_account: Option<&str>) -> Value {
    fn permission(rules: &Rules) -> Value {
        let mut m = Map::new();
        if !rules.allow.is_empty() {
            m.insert("allow".into(), json!(rules.allow));
        }
        if !rules.deny.is_empty() {
            m.insert("deny".into(), json!(rules.deny));
        }
        Value::Object(m)
    }
    let mut nats = json!({
        "pub": permission(&p.publish),
        "sub": permission(&p.subscribe),
        "subs": -1,
        "data": -1,
        "payload": -1,
        "type": "user",
        "version": 2,
    });
    if p.allow_responses {
        // What `nsc edit user --allow-pub-response` writes: one reply per request; a ttl
        // of 0 lets the server apply its default.
        nats["resp"] = json!({ "max": 1, "ttl": 0 });
    }
    if let Some(account) = issuer_account {
        nats["issuer_account"] = json!(account);
    }
    nats
}

/// Parses an expiry such as `90d`, `12h`, `30m`, `3600s`, `2w` or `1y` (365 days).
pub fn parse_expiry(text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let hint = "expected a number and a unit, e.g. 90d, 12h, 30m, 2w or 1y";
    let n: u64 = number
        .parse()
        .map_err(|_| ConfigError::Invalid(format!("expiry {text:?} is invalid: {hint}")))?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(ConfigError::Invalid(format!(
                "expiry {text:?} has no known unit: {hint}"
            )))
        }
    };
    if n == 0 {
        return Err(ConfigError::Invalid(format!(
            "expiry {text:?} would expire at once: {hint}"
        )));
    }
    // A century is plenty, and keeps every expiry a valid date.
    n.checked_mul(seconds_per)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::Invalid(format!("expiry {text:?} is more than 100 years away")))
}

#[cfg(test)]
mod tests;
