//! Minting, encoding, the `.creds` layout, seed files, expiries and safe writes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha512_256};

use super::jwt::JWT_HEADER;
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
        .to_string()
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
        .to_string()
        .contains("operator seed"));
    std::fs::write(&path, "nothing here").unwrap();
    assert!(AccountSigner::from_seed_file(&path, None)
        .err()
        .unwrap()
        .to_string()
        .contains("holds no nkey seed"));
    let other = KeyPair::new_account();
    assert!(AccountSigner::new(other, Some("UNOTANACCOUNT"))
        .err()
        .unwrap()
        .to_string()
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
        .to_string()
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

/// `creds --expiry 1h` promises a JWT valid for exactly an hour from its issue time: one
/// clock reading for both (two could straddle a second and give 3599).
#[test]
fn a_user_valid_for_a_duration_expires_exactly_that_long_after_its_issue() {
    let signer = AccountSigner::new(KeyPair::new_account(), None).unwrap();
    for _ in 0..50 {
        let user = signer
            .mint_user_valid_for("host", &perms(), Some(Duration::from_secs(3600)))
            .unwrap();
        let claims = decode_jwt(&user.jwt).unwrap();
        let (exp, iat) = (
            claims["exp"].as_i64().unwrap(),
            claims["iat"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 3600);
        assert_eq!(user.expires_at, Some(exp));
    }
    let never = signer.mint_user_valid_for("host", &perms(), None).unwrap();
    assert_eq!(never.expires_at, None);
    assert!(decode_jwt(&never.jwt).unwrap().get("exp").is_none());
}
