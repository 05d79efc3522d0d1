//! Lattice names that would capture other parties' subjects, refused everywhere a lattice
//! name enters (requests, subjects, CLI flags, config, templates, creds).
//!
//! Why: a host's template grants publish and subscribe on `<lattice>.>` (wRPC needs it),
//! and wildcards match whole tokens, so `<lattice>.>` overlaps exactly the subjects whose
//! **first token** is the lattice name. A host of lattice `wasmbus` could stop every other
//! lattice's hosts (`wasmbus.ctl.v1.<other>.host.stop`), one of `wadm` could delete their
//! applications through wadm's API, one of `wasmcloud` could provision any lattice and
//! forge this service's audit events, one of `_INBOX` could read and inject replies. So a
//! lattice name must never equal a first token that wasmCloud, wadm, NATS or this service
//! use. [`check`] is the one place that decides; `request::validate_lattice` calls it for
//! the built-in list, the lattice policy (`policy.rs`) for the operator's own additions.
//!
//! Case: NATS subjects are case-sensitive (`WADM.>` does not match `wadm.api.x`), so
//! `WADM` captures nothing and is allowed; only exact tokens are reserved.
//!
//! Also here, as the other rule about what a lattice may be called: the lattice globs of
//! `--allow-lattice` and of trusted host keys ([`validate_glob`], [`glob_match`]).

use crate::error::ProvisionError;

/// Longest lattice name. Stream and consumer names embed it (`KV_LATTICEDATA_<l>`,
/// `wadm_event_consumer-<l>`), and the server stores streams as directories, so this keeps
/// every derived name well under the 255-byte file name limit.
pub const MAX_LATTICE_LEN: usize = 128;

/// First tokens that other parties' subjects start with, and what a host of a lattice of
/// that name would capture. A unit test checks that every first token of every subject in
/// the catalog, the templates and this service's own subjects is here (or starts with
/// `_`/`$`), so a new subject cannot slip past.
pub const RESERVED: &[(&str, &str)] = &[
    (
        "wasmcloud",
        "this provisioner's requests and audit events (`wasmcloud.provision.>`) and \
         wasmCloud's secrets and policy services (`wasmcloud.secrets.>`, `wasmcloud.policy.>`)",
    ),
    (
        "wasmbus",
        "every lattice's host control interface, events and RPC (`wasmbus.ctl.v1.<l>.>`, \
         `wasmbus.evt.<l>.>`, `wasmbus.rpc.<l>.>`, `wasmbus.cfg.<l>.>`)",
    ),
    (
        "wadm",
        "wadm's API, commands, events, status and notifications (`wadm.api.>`, `wadm.cmd.*`, \
         `wadm.evt.*.>`, `wadm.status.*.*`, `wadm.notify.*`)",
    ),
    (
        "wadm_event_consumer",
        "the subjects wadm's event work queue stores (`wadm_event_consumer.evt.<l>.>`)",
    ),
    (
        "wadm_operator_events",
        "the wasmcloud-operator 0.5 event stream's subjects (`wadm_operator_events.<l>.>`)",
    ),
    (
        "wasmcloud_operator_events",
        "the wasmcloud-operator 0.4 event stream's subjects (`wasmcloud_operator_events.<l>.>`)",
    ),
];

/// What a name starting with `_` captures: reply inboxes and the server's reply mappings.
const UNDERSCORE: &str = "reply subjects: every client's `_INBOX.>`, the server's `_R_.>` and \
                          `_GR_.>` reply mappings; names starting with `_` are reserved for NATS";

/// What a name starting with `$` captures: the server's own subject spaces.
const DOLLAR: &str = "NATS system subjects (`$JS.>`, `$KV.>`, `$SYS.>`, `$SRV.>`, …); names \
                      starting with `$` are reserved for NATS";

/// Why a lattice name is reserved, if it is: by the built-in list, by its first character,
/// because it is an account public key, or because the operator reserved it (`extra`).
pub fn reason(name: &str, extra: &[String]) -> Option<String> {
    if let Some((_, why)) = RESERVED.iter().find(|(token, _)| *token == name) {
        return Some((*why).to_string());
    }
    if name.starts_with('_') {
        return Some(UNDERSCORE.to_string());
    }
    if name.starts_with('$') {
        return Some(DOLLAR.to_string());
    }
    if is_account_key(name) {
        return Some(format!(
            "the subjects a multitenant wadm imports under that account's prefix \
             (`{name}.wasmbus.evt.>`, `{name}.wadm.api.>`); account public keys are reserved"
        ));
    }
    if extra.iter().any(|t| t == name) {
        return Some(
            "subjects the operator reserved for another service (--reserve-lattice-name)"
                .to_string(),
        );
    }
    None
}

/// A multitenant wadm prefixes every subject it imports with the account's public key
/// (56 characters, `A…`, with a checksum).
fn is_account_key(name: &str) -> bool {
    name.len() == 56
        && name.starts_with('A')
        && nkeys::KeyPair::from_public_key(name)
            .map(|k| k.key_pair_type() == nkeys::KeyPairType::Account)
            .unwrap_or(false)
}

/// Refuses a reserved lattice name with a 400 that says which subjects it would capture.
pub fn check(name: &str, extra: &[String]) -> Result<(), ProvisionError> {
    match reason(name, extra) {
        None => Ok(()),
        Some(why) => {
            let shown: String = name.chars().take(60).collect();
            Err(ProvisionError::bad_request(format!(
                "the lattice name {shown:?} is reserved: a host of that lattice is granted \
                 `{shown}.>`, which would capture {why}; choose another lattice name"
            )))
        }
    }
}

/// Checks the operator's own reserved tokens: each must be something a lattice could be
/// called (otherwise reserving it protects nothing, which is likely a typo).
pub fn validate_extra(tokens: &[String]) -> Result<(), String> {
    for t in tokens {
        let ok = !t.is_empty()
            && t.len() <= MAX_LATTICE_LEN
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "--reserve-lattice-name {t:?} is not a first subject token a lattice could be \
                 named after: give the first token of your service's subjects (e.g. \
                 `billing` for `billing.>`), 1 to 128 of A-Z, a-z, 0-9, `_` and `-`"
            ));
        }
    }
    Ok(())
}

/// Whether a lattice name matches a lattice glob: `*` matches any run of characters (also
/// none), `?` exactly one, everything else itself; the whole name, case-sensitive (as NATS
/// subjects are). The README promises exactly this for `--allow-lattice`; `wildmatch`
/// implements it (no character classes, no escapes: [`validate_glob`] admits neither).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(text)
}

/// Checks a lattice glob: lattice characters plus `*` and `?`. `origin` names where the
/// glob came from (a flag, a file line) for the message.
pub fn validate_glob(g: &str, origin: &str) -> Result<(), String> {
    if g.is_empty()
        || !g
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '?'))
    {
        return Err(format!(
            "{origin} {g:?} is not a lattice glob: use A-Z, a-z, 0-9, `_`, `-` and the \
             wildcards `*` (any run) and `?` (one character)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_say_what_they_would_capture() {
        for (name, needle) in [
            ("wasmcloud", "wasmcloud.provision.>"),
            ("wasmbus", "wasmbus.ctl.v1"),
            ("wadm", "wadm.api.>"),
            ("_INBOX", "_INBOX.>"),
            ("_R_", "_R_"),
            ("_anything", "reserved for NATS"),
            ("$JS", "$JS.>"),
            ("wadm_event_consumer", "wadm_event_consumer.evt"),
        ] {
            let e = check(name, &[]).unwrap_err();
            assert_eq!(e.code(), 400);
            assert!(e.message.contains(needle), "{name}: {}", e.message);
            assert!(e.message.contains("reserved"), "{}", e.message);
        }
        let account = nkeys::KeyPair::new_account().public_key();
        assert!(check(&account, &[])
            .unwrap_err()
            .message
            .contains("account"));
        // Subjects are case-sensitive: other spellings capture nothing.
        for ok in [
            "WADM",
            "Wasmbus",
            "wadm-prod",
            "wasmcloudx",
            "default",
            "INBOX",
        ] {
            assert!(check(ok, &[]).is_ok(), "{ok}");
        }
        // A server key looks like an account key but is not one.
        assert!(check(&nkeys::KeyPair::new_server().public_key(), &[]).is_ok());
    }

    /// Every request schema refuses exactly the built-in reserved names (the code also
    /// refuses account keys and the operator's names, which no schema file can know).
    #[test]
    fn the_schemas_list_the_reserved_names() {
        for file in ["lattice_request", "status_request", "host_request"] {
            let path = format!("{}/schemas/{file}.json", env!("CARGO_MANIFEST_DIR"));
            let schema: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let lattice = &schema["properties"]["lattice"];
            let listed: Vec<&str> = lattice["not"]["anyOf"][0]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: no reserved list"))
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let reserved: Vec<&str> = RESERVED.iter().map(|(t, _)| *t).collect();
            assert_eq!(listed, reserved, "{file}");
            let validator = jsonschema::validator_for(lattice).unwrap();
            for name in ["wadm", "_INBOX", "_x", "wasmbus"] {
                assert!(
                    !validator.is_valid(&serde_json::json!(name)),
                    "{file}: {name}"
                );
                assert!(check(name, &[]).is_err());
            }
            for name in ["WADM", "default", "x_"] {
                assert!(
                    validator.is_valid(&serde_json::json!(name)),
                    "{file}: {name}"
                );
                assert!(check(name, &[]).is_ok());
            }
        }
    }

    #[test]
    fn operator_tokens_are_reserved_and_checked() {
        let extra = vec!["billing".to_string()];
        let e = check("billing", &extra).unwrap_err();
        assert!(
            e.message.contains("--reserve-lattice-name"),
            "{}",
            e.message
        );
        assert!(check("billing-2", &extra).is_ok());
        assert!(validate_extra(&extra).is_ok());
        for bad in ["", "a.b", "x>", "*", "with space"] {
            assert!(validate_extra(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
