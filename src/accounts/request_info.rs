//! `Nats-Request-Info`: which account a request comes from, and whether the server that
//! stamped it can be believed.
//!
//! When a request crosses a service import the server sets this header (JSON; `acc` names
//! the requesting account) and, from nats-server 2.11.15 / 2.12.6 on (CVE-2026-33223),
//! replaces any value the client sent. Within one account the server sets nothing and
//! passes a client's header through unchanged (checked on 2.12.8, `tests/accounts.rs`).
//! So the header decides the target account only when both hold:
//! - the server guarantees it ([`server_guarantees`]);
//! - the request came through an import: its reply subject is one the server made for the
//!   import's response mapping (`_R_.…`). A client within the provisioner's own account
//!   can pick such a reply subject too, so this refuses careless forgeries, not a
//!   determined user of that account: the provisioner's account must hold no other user
//!   that may publish on `wasmcloud.provision.>` (README, "Tenants in separate accounts").

use serde::Deserialize;

use crate::subjects::REQUEST_INFO_HEADER as HEADER;

/// Longest header value considered: the same bound as what the audit trail keeps of it
/// (the server's own is well under 1 KiB, but with `share: true` it carries the user's
/// JWT and connection name, which a raised `max_control_line` lets grow past 4 KiB).
const MAX_LEN: usize = crate::subjects::MAX_REQUEST_INFO_BYTES;

/// Longest account name or public key accepted (a public key is 56 characters).
const MAX_ACCOUNT_LEN: usize = 256;

#[derive(Deserialize)]
struct Info<'a> {
    #[serde(borrow, default)]
    acc: Option<std::borrow::Cow<'a, str>>,
}

/// The requesting account named by a `Nats-Request-Info` value, or why it cannot be read.
pub fn account(value: &str) -> Result<String, String> {
    if value.len() > MAX_LEN {
        return Err(format!("{HEADER} is longer than {MAX_LEN} bytes"));
    }
    let info: Info = serde_json::from_str(value)
        .map_err(|e| format!("{HEADER} is not the JSON object the server sets: {e}"))?;
    let acc = info
        .acc
        .ok_or_else(|| format!("{HEADER} has no `acc` (requesting account)"))?;
    if acc.is_empty()
        || acc.len() > MAX_ACCOUNT_LEN
        || !acc.chars().all(|c| c.is_ascii_graphic())
        || acc.contains(['.', '*', '>'])
    {
        return Err(format!(
            "{HEADER} names an account that is not a valid account name"
        ));
    }
    Ok(acc.into_owned())
}

/// The first nats-server patch release of each minor line that replaces a client-sent
/// `Nats-Request-Info` (CVE-2026-33223); every minor line after the last listed has it.
const FIXED: &[(u64, u64, u64)] = &[(2, 11, 15), (2, 12, 6)];

/// What to tell an operator whose server is older.
pub const REQUIRED: &str = "nats-server 2.11.15, 2.12.6 or later";

/// Whether a server of this version (`server_info().version`, e.g. `2.12.8`) replaces a
/// client-sent `Nats-Request-Info`. Unknown or unparsable versions do not; a pre-release
/// of a fixed version (`2.12.6-RC.1`) does not either, as it may predate the fix.
pub fn server_guarantees(version: &str) -> bool {
    let version = version.trim().trim_start_matches('v');
    let (numbers, pre_release) = match version.split_once(['-', '+']) {
        Some((n, rest)) => (n, !rest.is_empty() && version.as_bytes()[n.len()] == b'-'),
        None => (version, false),
    };
    let parts: Vec<Option<u64>> = numbers.split('.').map(|p| p.parse().ok()).collect();
    let [Some(major), Some(minor), Some(patch)] = parts[..] else {
        return false;
    };
    let (last_major, last_minor, _) = FIXED[FIXED.len() - 1];
    if (major, minor) > (last_major, last_minor) {
        return true;
    }
    match FIXED
        .iter()
        .find(|(ma, mi, _)| (*ma, *mi) == (major, minor))
    {
        Some(&(_, _, fixed)) => patch > fixed || (patch == fixed && !pre_release),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_replace_a_forged_header() {
        for v in [
            "2.12.6",
            "2.12.8",
            "v2.12.8",
            "2.11.15",
            "2.11.16",
            "2.13.0",
            "2.13.0-RC.1",
            "3.0.0",
            "2.12.7+build",
        ] {
            assert!(server_guarantees(v), "{v}");
        }
        for v in [
            "2.12.5",
            "2.11.14",
            "2.10.29",
            "2.9.0",
            "2.12.6-RC.1",
            "1.4.0",
            "",
            "2.12",
            "x.y.z",
            "2.12.x",
        ] {
            assert!(!server_guarantees(v), "{v}");
        }
    }

    #[test]
    fn account_from_the_servers_header() {
        assert_eq!(
            account(r#"{"acc":"TENANT_A","rtt":682034}"#).unwrap(),
            "TENANT_A"
        );
        let key = "ACZSWBJ4SYILK7QVDELO64VX3EFWB6CXCPMEBN3VZE5UZE7YK7ZWH4XO";
        assert_eq!(account(&format!(r#"{{"acc":"{key}"}}"#)).unwrap(), key);
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"rtt":1}"#,
            r#"{"acc":""}"#,
            r#"{"acc":"A B"}"#,
            r#"{"acc":"A.B"}"#,
            r#"{"acc":"*"}"#,
            r#"{"acc":7}"#,
        ] {
            assert!(account(bad).is_err(), "{bad}");
        }
        let long = format!(r#"{{"acc":"{}"}}"#, "A".repeat(300));
        assert!(account(&long).is_err());
        // A server-set value with a long JWT or connection name is read; past the audit
        // trail's bound it is not.
        let long_jwt = format!(r#"{{"acc":"A","jwt":"{}"}}"#, "x".repeat(5000));
        assert_eq!(account(&long_jwt).unwrap(), "A");
        let huge = format!(r#"{{"acc":"A","pad":"{}"}}"#, "x".repeat(MAX_LEN));
        assert!(account(&huge).is_err());
    }
}
