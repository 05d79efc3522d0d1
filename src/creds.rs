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

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::{KeyPair, KeyPairType};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512_256};

use crate::permissions::{Permissions, Rules};

/// The JOSE header of every NATS JWT (field order as nats-io/jwt writes it).
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// A freshly minted user: its JWT and the seed that proves it owns the JWT's subject.
pub struct MintedUser {
    pub jwt: String,
    pub seed: String,
    pub public_key: String,
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
    pub fn new(key: KeyPair, account: Option<&str>) -> Result<Self, String> {
        if key.key_pair_type() != KeyPairType::Account {
            return Err(format!(
                "the signing key {} is not an account key: give the account's seed (SA…) \
                 or the seed of one of its signing keys",
                key.public_key()
            ));
        }
        let issuer_account = match account {
            None => None,
            Some(a) if a == key.public_key() => None,
            Some(a) => {
                if !a.starts_with('A') || KeyPair::from_public_key(a).is_err() {
                    return Err(format!(
                        "--account {a:?} is not an account public key (it starts with `A`; \
                         `nsc describe account` shows it)"
                    ));
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
    pub fn from_seed_file(path: &Path, account: Option<&str>) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the account seed file {}: {e}", path.display()))?;
        // A seed is ASCII; the error names the file and never echoes its contents (a
        // secret, or the wrong file).
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{} is not a seed file: byte {} is not UTF-8 text; it should contain the \
                 account's seed (SA…)",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| {
                l.len() > 2 && l.starts_with('S') && l.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .ok_or_else(|| {
                format!(
                    "{} holds no nkey seed: it should contain the account's seed (SA…), e.g. \
                     the file `nsc` keeps under ~/.local/share/nats/nsc/keys/keys/A/…",
                    path.display()
                )
            })?;
        // `seed` is ASCII (checked above), so slicing at 2 is on a character boundary.
        match seed.get(..2).unwrap_or_default() {
            "SA" => {}
            "SO" => {
                return Err(format!(
                    "{} holds an operator seed; user JWTs are signed by the account: give the \
                     account's seed or one of its signing keys",
                    path.display()
                ))
            }
            "SU" => {
                return Err(format!(
                    "{} holds a user seed; user JWTs are signed by the account: give the \
                     account's seed or one of its signing keys",
                    path.display()
                ))
            }
            _ => {
                return Err(format!(
                    "{} holds no account seed (SA…); give the account's seed or one of its \
                     signing keys",
                    path.display()
                ))
            }
        }
        let key = KeyPair::from_seed(seed)
            .map_err(|e| format!("the seed in {} is invalid: {e}", path.display()))?;
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
    ) -> Result<MintedUser, String> {
        let user = KeyPair::new_user();
        let seed = user
            .seed()
            .map_err(|e| format!("cannot encode the new user seed: {e}"))?;
        let mut claims = json!({
            "sub": user.public_key(),
            "name": name,
            "nats": user_nats_claims(permissions, self.issuer_account.as_deref()),
        });
        if let Some(exp) = expires_at {
            claims["exp"] = json!(exp);
        }
        let jwt = encode_jwt(claims, &self.key, unix_now())?;
        Ok(MintedUser {
            jwt,
            seed,
            public_key: user.public_key(),
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

/// The standard claims as nats-io/jwt's `ClaimsData` marshals them (field order and
/// `omitempty`), for the `jti` digest.
#[derive(Serialize)]
struct StandardClaims<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    aud: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    exp: i64,
    #[serde(skip_serializing_if = "is_zero")]
    iat: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    iss: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    nbf: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    sub: &'a str,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Go's `encoding/json` escapes these inside strings; the digest must see the same bytes.
fn go_json_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `jti`: unpadded base32 of SHA-512/256 over the standard claims with an empty `jti`.
fn claims_id(claims: &Map<String, Value>) -> Result<String, String> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    let number = |k: &str| claims.get(k).and_then(Value::as_i64).unwrap_or(0);
    let standard = StandardClaims {
        aud: text("aud"),
        exp: number("exp"),
        iat: number("iat"),
        iss: text("iss"),
        name: text("name"),
        nbf: number("nbf"),
        sub: text("sub"),
    };
    let json = serde_json::to_string(&standard)
        .map_err(|e| format!("cannot serialize the JWT claims: {e}"))?;
    let digest = Sha512_256::digest(go_json_escape(&json).as_bytes());
    Ok(data_encoding::BASE32_NOPAD.encode(&digest))
}

/// Signs `claims` (a JSON object with at least `sub`) as `issuer`: sets `iss`, `iat`
/// (`now`, Unix seconds) and `jti`, and returns the encoded JWT. Operator, account and
/// user JWTs are all made this way; only the claims differ.
pub fn encode_jwt(claims: Value, issuer: &KeyPair, now: i64) -> Result<String, String> {
    let Value::Object(mut claims) = claims else {
        return Err("JWT claims must be a JSON object".into());
    };
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err("JWT claims need a subject (`sub`)".into());
    }
    claims.insert("iss".into(), json!(issuer.public_key()));
    claims.insert("iat".into(), json!(now));
    claims.remove("jti");
    let jti = claims_id(&claims)?;
    claims.insert("jti".into(), json!(jti));
    let payload = serde_json::to_string(&Value::Object(claims))
        .map_err(|e| format!("cannot serialize the JWT claims: {e}"))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|e| format!("cannot sign the JWT: {e}"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Decodes a JWT and checks its signature against its `iss`; returns the claims.
pub fn decode_jwt(jwt: &str) -> Result<Value, String> {
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three parts separated by `.`".into());
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("the JWT's {what} is not base64url: {e}"))
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|e| format!("the JWT's header is not JSON: {e}"))?;
    if header["alg"] != "ed25519-nkey" {
        return Err(format!(
            "the JWT's algorithm is {}, not ed25519-nkey",
            header["alg"]
        ));
    }
    let claims: Value = serde_json::from_slice(&decode(payload, "claims")?)
        .map_err(|e| format!("the JWT's claims are not JSON: {e}"))?;
    let issuer = claims["iss"]
        .as_str()
        .ok_or("the JWT has no issuer (`iss`)")?;
    let key = KeyPair::from_public_key(issuer)
        .map_err(|e| format!("the JWT's issuer {issuer} is not an nkey: {e}"))?;
    let signed = &jwt.trim()[..jwt.trim().rfind('.').unwrap_or(0)];
    key.verify(signed.as_bytes(), &decode(signature, "signature")?)
        .map_err(|_| format!("the JWT's signature does not match its issuer {issuer}"))?;
    Ok(claims)
}

/// The text of a `.creds` file, byte for byte what nats-io/jwt's `FormatUserConfig`
/// (and so `nsc generate creds`) writes.
pub fn format_creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// Writes a `.creds` file readable by its owner only, atomically.
///
/// The file is written to a new temporary file in the same directory (created exclusively,
/// mode 0600, so no other user can open it even for a moment) and then moved into place:
/// - with `overwrite`, by `rename`, which replaces whatever is at `path` (a file of any
///   mode, or a symbolic link: the link itself is replaced, never the file it points to);
/// - without it, by `link`, which refuses an existing `path` of any kind (a dangling
///   symbolic link included), so an existing secret is never replaced by accident.
///
/// Either the old file or the complete new one is at `path`, never a truncated or
/// world-readable mix; on an error the temporary file is removed.
pub fn write_creds(path: &Path, contents: &str, overwrite: bool) -> Result<(), String> {
    let exists_error = || {
        format!(
            "{} exists; give --force to replace it, or another --out",
            path.display()
        )
    };
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists_error());
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("--out {} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (temp, mut file) = create_temp_file(dir, file_name)?;
    // From here on, every error removes the temporary file.
    let result = (|| {
        let written = file
            .write_all(contents.as_bytes())
            .and_then(|()| file.sync_all());
        written.map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
        drop(file);
        if overwrite {
            std::fs::rename(&temp, path)
                .map_err(|e| format!("cannot replace {}: {e}", path.display()))
        } else {
            std::fs::hard_link(&temp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists_error()
                } else {
                    format!("cannot write {}: {e}", path.display())
                }
            })
        }
    })();
    // After a rename there is nothing left to remove; after a link, the second name goes.
    let _ = std::fs::remove_file(&temp);
    result?;
    // The new directory entry survives a crash (best effort: not every filesystem lets a
    // directory be synced).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new, empty file next to the destination, created exclusively (`O_CREAT|O_EXCL`, which
/// also refuses to follow a symbolic link planted at its name) with mode 0600.
fn create_temp_file(
    dir: &Path,
    file_name: &std::ffi::OsStr,
) -> Result<(std::path::PathBuf, std::fs::File), String> {
    let mut last_error = None;
    for _ in 0..8 {
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.tmp", nuid::next()));
        let temp = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&temp) {
            Ok(file) => {
                // The umask can only take bits away; this makes it exactly 0600.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                        let _ = std::fs::remove_file(&temp);
                        return Err(format!("cannot restrict {}: {e}", temp.display()));
                    }
                }
                return Ok((temp, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(format!(
                    "cannot create a file in {} for the new credentials: {e}",
                    dir.display()
                ))
            }
        }
    }
    Err(format!(
        "cannot create a file in {} for the new credentials: {}",
        dir.display(),
        last_error.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Parses an expiry such as `90d`, `12h`, `30m`, `3600s`, `2w` or `1y` (365 days).
pub fn parse_expiry(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let hint = "expected a number and a unit, e.g. 90d, 12h, 30m, 2w or 1y";
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expiry {text:?} is invalid: {hint}"))?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(format!("expiry {text:?} has no known unit: {hint}")),
    };
    if n == 0 {
        return Err(format!("expiry {text:?} would expire at once: {hint}"));
    }
    // A century is plenty, and keeps every expiry a valid date.
    n.checked_mul(seconds_per)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("expiry {text:?} is more than 100 years away"))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms() -> Permissions {
        Permissions {
            publish: Rules {
                allow: vec!["a.>".into(), "$KV.X.>".into()],
                deny: vec!["$JS.API.STREAM.DELETE.>".into()],
            },
            subscribe: Rules {
                allow: vec!["_INBOX.>".into()],
                deny: vec![],
            },
            allow_responses: true,
        }
    }

    #[test]
    fn user_jwt_is_signed_by_the_account_and_carries_the_permissions() {
        let account = KeyPair::new_account();
        let signer = AccountSigner::new(account, None).unwrap();
        let user = signer
            .mint_user("host", &perms(), Some(2_000_000_000))
            .unwrap();
        let claims = decode_jwt(&user.jwt).unwrap();
        assert_eq!(claims["iss"], json!(signer.account()));
        assert_eq!(claims["sub"], json!(user.public_key));
        assert_eq!(claims["exp"], json!(2_000_000_000));
        assert_eq!(claims["nats"]["pub"]["allow"], json!(["a.>", "$KV.X.>"]));
        assert_eq!(
            claims["nats"]["pub"]["deny"],
            json!(["$JS.API.STREAM.DELETE.>"])
        );
        assert_eq!(claims["nats"]["sub"], json!({"allow": ["_INBOX.>"]}));
        assert_eq!(claims["nats"]["resp"], json!({"max": 1, "ttl": 0}));
        assert_eq!(claims["nats"]["type"], "user");
        assert_eq!(claims["nats"]["version"], 2);
        assert!(claims["nats"].get("issuer_account").is_none());
        assert!(user.seed.starts_with("SU"));
        let header = URL_SAFE_NO_PAD
            .decode(user.jwt.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, JWT_HEADER.as_bytes());
    }

    #[test]
    fn signing_key_sets_issuer_account() {
        let account = KeyPair::new_account();
        let signing_key = KeyPair::new_account();
        let signer = AccountSigner::new(signing_key, Some(&account.public_key())).unwrap();
        let user = signer.mint_user("wadm", &perms(), None).unwrap();
        let claims = decode_jwt(&user.jwt).unwrap();
        assert_eq!(
            claims["nats"]["issuer_account"],
            json!(account.public_key())
        );
        assert_ne!(claims["iss"], json!(account.public_key()));
        assert!(claims.get("exp").is_none());
        assert_eq!(signer.account(), account.public_key());
    }

    #[test]
    fn jti_is_the_digest_of_the_standard_claims() {
        // The digest input nats-io/jwt hashes for these claims, written out by hand.
        let issuer = KeyPair::new_account();
        let jwt = encode_jwt(json!({"sub": "UXYZ", "name": "a<b", "exp": 5}), &issuer, 7).unwrap();
        let claims = decode_jwt(&jwt).unwrap();
        let go_json = format!(
            r#"{{"exp":5,"iat":7,"iss":"{}","name":"a\u003cb","sub":"UXYZ"}}"#,
            issuer.public_key()
        );
        let want = data_encoding::BASE32_NOPAD.encode(&Sha512_256::digest(go_json.as_bytes()));
        assert_eq!(claims["jti"], json!(want));
        assert_eq!(want.len(), 52);
    }

    #[test]
    fn tampered_jwt_is_refused() {
        let signer = AccountSigner::new(KeyPair::new_account(), None).unwrap();
        let user = signer.mint_user("host", &perms(), None).unwrap();
        let mut parts: Vec<String> = user.jwt.split('.').map(String::from).collect();
        let mut claims = decode_jwt(&user.jwt).unwrap();
        claims["nats"]["pub"]["allow"] = json!([">"]);
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(decode_jwt(&parts.join("."))
            .unwrap_err()
            .contains("signature does not match"));
    }

    #[test]
    fn creds_file_has_the_nsc_layout() {
        let text = format_creds("eyJhbGc.x.y", "SUAEXAMPLE");
        let want = "-----BEGIN NATS USER JWT-----\neyJhbGc.x.y\n------END NATS USER JWT------\n\n\
************************* IMPORTANT *************************\n\
NKEY Seed printed below can be used to sign and prove identity.\n\
NKEYs are sensitive and should be treated as secrets.\n\n\
-----BEGIN USER NKEY SEED-----\nSUAEXAMPLE\n------END USER NKEY SEED------\n\n\
*************************************************************\n";
        assert_eq!(text, want);
    }

    #[test]
    fn seed_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let account = KeyPair::new_account();
        let path = dir.path().join("a.nk");
        std::fs::write(&path, format!("{}\n", account.seed().unwrap())).unwrap();
        let signer = AccountSigner::from_seed_file(&path, None).unwrap();
        assert_eq!(signer.account(), account.public_key());
        std::fs::write(&path, KeyPair::new_operator().seed().unwrap()).unwrap();
        assert!(AccountSigner::from_seed_file(&path, None)
            .err()
            .unwrap()
            .contains("operator seed"));
        std::fs::write(&path, "nothing here").unwrap();
        assert!(AccountSigner::from_seed_file(&path, None)
            .err()
            .unwrap()
            .contains("holds no nkey seed"));
        let other = KeyPair::new_account();
        assert!(AccountSigner::new(other, Some("UNOTANACCOUNT"))
            .err()
            .unwrap()
            .contains("not an account public key"));
    }

    #[test]
    fn expiry_parsing() {
        assert_eq!(
            parse_expiry("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_expiry("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(
            parse_expiry("1y").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
        assert!(parse_expiry("soon").is_err());
        assert!(parse_expiry("10").is_err());
        assert!(parse_expiry("0d").is_err());
        assert!(parse_expiry("101y").is_err());
    }

    #[test]
    fn write_refuses_to_replace_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.creds");
        write_creds(&path, "one", false).unwrap();
        assert!(write_creds(&path, "two", false)
            .unwrap_err()
            .contains("--force"));
        write_creds(&path, "two", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
