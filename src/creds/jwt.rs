//! The NATS JWT encoding (nats-io/jwt v2): header, claims, the `jti` digest, the ed25519
//! signature; and decoding with the signature checked.

use crate::config_error::ConfigError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512_256};

/// The JOSE header of every NATS JWT (field order as nats-io/jwt writes it).
pub(super) const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

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
fn claims_id(claims: &Map<String, Value>) -> Result<String, ConfigError> {
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
        .map_err(|e| ConfigError::Credentials(format!("cannot serialize the JWT claims: {e}")))?;
    let digest = Sha512_256::digest(go_json_escape(&json).as_bytes());
    Ok(data_encoding::BASE32_NOPAD.encode(&digest))
}

/// Signs `claims` (a JSON object with at least `sub`) as `issuer`: sets `iss`, `iat`
/// (`now`, Unix seconds) and `jti`, and returns the encoded JWT. Operator, account and
/// user JWTs are all made this way; only the claims differ.
pub fn encode_jwt(claims: Value, issuer: &KeyPair, now: i64) -> Result<String, ConfigError> {
    let Value::Object(mut claims) = claims else {
        return Err(ConfigError::Credentials(
            "JWT claims must be a JSON object".into(),
        ));
    };
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ConfigError::Credentials(
            "JWT claims need a subject (`sub`)".into(),
        ));
    }
    claims.insert("iss".into(), json!(issuer.public_key()));
    claims.insert("iat".into(), json!(now));
    claims.remove("jti");
    let jti = claims_id(&claims)?;
    claims.insert("jti".into(), json!(jti));
    let payload = serde_json::to_string(&Value::Object(claims))
        .map_err(|e| ConfigError::Credentials(format!("cannot serialize the JWT claims: {e}")))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|e| ConfigError::Credentials(format!("cannot sign the JWT: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Decodes a JWT and checks its signature against its `iss`; returns the claims.
pub fn decode_jwt(jwt: &str) -> Result<Value, ConfigError> {
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ConfigError::Credentials(
            "a JWT has three parts separated by `.`".into(),
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD.decode(part).map_err(|e| {
            ConfigError::Credentials(format!("the JWT's {what} is not base64url: {e}"))
        })
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|e| ConfigError::Credentials(format!("the JWT's header is not JSON: {e}")))?;
    if header["alg"] != "ed25519-nkey" {
        return Err(ConfigError::Credentials(format!(
            "the JWT's algorithm is {}, not ed25519-nkey",
            header["alg"]
        )));
    }
    let claims: Value = serde_json::from_slice(&decode(payload, "claims")?)
        .map_err(|e| ConfigError::Credentials(format!("the JWT's claims are not JSON: {e}")))?;
    let issuer = claims["iss"]
        .as_str()
        .ok_or_else(|| ConfigError::Credentials("the JWT has no issuer (`iss`)".into()))?;
    let key = KeyPair::from_public_key(issuer).map_err(|e| {
        ConfigError::Credentials(format!("the JWT's issuer {issuer} is not an nkey: {e}"))
    })?;
    let signed = &jwt.trim()[..jwt.trim().rfind('.').unwrap_or(0)];
    key.verify(signed.as_bytes(), &decode(signature, "signature")?)
        .map_err(|_| {
            ConfigError::Credentials(format!(
                "the JWT's signature does not match its issuer {issuer}"
            ))
        })?;
    Ok(claims)
}
