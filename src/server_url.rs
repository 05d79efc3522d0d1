//! Server URLs as every NATS tool takes them, credentials included:
//! `nats://user:password@host:4222` (user and password) or `nats://token@host:4222` (a
//! token), percent-encoded where needed, as natscli and nats.go read them.
//!
//! async-nats ignores the user info of a URL, so it is taken out here and becomes the
//! connection's authentication ([`split`]). Nothing outside this module ever holds the URL
//! with its secret: what is kept, logged and printed is [`redact`]'s form
//! (`nats://user:***@host:4222`, `nats://***@host:4222`), which [`without_user_info`]
//! turns into the address to dial.

use crate::config_error::ConfigError;
use percent_encoding::percent_decode_str;

/// Credentials found in a server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

/// A comma-separated server list with the credentials taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList {
    /// The list as it may be shown: every secret replaced by `***`.
    pub redacted: String,
    /// The URLs' credentials (all URLs that carry any must carry the same).
    pub credentials: Option<UrlCredentials>,
}

/// The parts of one URL: everything before the user info, the user info (without its
/// `@`), and everything after it. Total: a string that is not a URL has no user info.
///
/// The user info ends at the last `@` of the URL, not only of its authority: a password
/// with an unencoded `/`, `?` or `#` (common in generated passwords) would otherwise end
/// the authority early, so the URL would seem to carry no secret and be shown whole.
/// NATS URLs have no path, query or fragment that could hold an `@` themselves.
fn parts(url: &str) -> (&str, Option<&str>, &str) {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[authority_start..];
    match rest.rfind('@') {
        Some(at) => (&url[..authority_start], Some(&rest[..at]), &rest[at + 1..]),
        None => (url, None, ""),
    }
}

/// The URLs of a comma-separated list. Where the list's URLs have a scheme, a piece with
/// an `@` but no scheme, after a URL without user info, continues that URL: it is the
/// rest of a password holding an unencoded `,` (`nats://u:pa,ss@host`), which must be
/// redacted with it rather than shown as a URL of its own.
fn urls(servers: &str) -> Vec<String> {
    let schemed = servers.contains("://");
    let mut out: Vec<String> = Vec::new();
    for piece in servers.split(',') {
        match out.last_mut() {
            Some(last)
                if schemed
                    && !piece.contains("://")
                    && piece.contains('@')
                    && parts(last).1.is_none() =>
            {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// The one function that makes a server URL (or a comma-separated list of them) safe to
/// show: a password or a token becomes `***`, a user name stays. Used for every message,
/// log line and report that names a server.
pub fn redact(servers: &str) -> String {
    urls(servers)
        .iter()
        .map(|url| match parts(url) {
            (before, Some(user_info), after) => match user_info.split_once(':') {
                Some((user, _)) => format!("{before}{user}:***@{after}"),
                None => format!("{before}***@{after}"),
            },
            (url, None, _) => url.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One URL without its user info: the address to dial.
pub fn without_user_info(url: &str) -> String {
    match parts(url) {
        (before, Some(_), after) => format!("{before}{after}"),
        (url, None, _) => url.to_string(),
    }
}

/// Splits a server list into its redacted form and the credentials its URLs carry.
/// Errors never contain a secret.
pub fn split(servers: &str) -> Result<ServerList, ConfigError> {
    let mut credentials: Option<UrlCredentials> = None;
    for url in urls(servers) {
        let url = url.as_str();
        let Some(user_info) = parts(url).1 else {
            continue;
        };
        let decode = |what: &str, text: &str| {
            percent_decode_str(text)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    ConfigError::Invalid(format!(
                        "the {what} in server URL {} is not valid percent-encoded UTF-8",
                        redact(url.trim())
                    ))
                })
        };
        let found = match user_info.split_once(':') {
            Some((user, password)) => {
                let user = decode("user", user)?;
                if user.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "server URL {} has a password but no user: write \
                         nats://user:password@host, or nats://token@host for a token",
                        redact(url.trim())
                    )));
                }
                UrlCredentials::UserPassword {
                    user,
                    password: decode("password", password)?,
                }
            }
            None if user_info.is_empty() => continue,
            None => UrlCredentials::Token(decode("token", user_info)?),
        };
        match &credentials {
            Some(c) if *c != found => {
                return Err(ConfigError::Invalid(format!(
                    "the server URLs {} carry different credentials: give them once, in \
                     every URL alike or with --user/--password or --token",
                    redact(servers)
                )))
            }
            _ => credentials = Some(found),
        }
    }
    Ok(ServerList {
        redacted: redact(servers),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_hosts_kept() {
        assert_eq!(
            redact("nats://prov:s3cret@127.0.0.1:4222"),
            "nats://prov:***@127.0.0.1:4222"
        );
        assert_eq!(redact("nats://t0ken@host:4222"), "nats://***@host:4222");
        assert_eq!(redact("tls://host:4222"), "tls://host:4222");
        assert_eq!(redact("u:p@host:4222"), "u:***@host:4222");
        // A password with an unencoded `@` and `/`: the authority ends at the last `@`
        // before the first `/`.
        assert_eq!(
            redact("nats://u:p@ss@h1:4222,nats://u:p@ss@h2:4222/x"),
            "nats://u:***@h1:4222,nats://u:***@h2:4222/x"
        );
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn unencoded_delimiters_in_a_password_never_show_it() {
        for (url, shown) in [
            ("nats://u:pa#ss@h:4222", "nats://u:***@h:4222"),
            ("nats://u:pa/ss@h:4222", "nats://u:***@h:4222"),
            ("nats://u:pa?ss@h:4222", "nats://u:***@h:4222"),
            ("nats://u:pa,ss@h:4222", "nats://u:***@h:4222"),
            (
                "nats://u:a,b@h1:1,nats://u:a,b@h2:2",
                "nats://u:***@h1:1,nats://u:***@h2:2",
            ),
            ("tls://tok#en@h:4222", "tls://***@h:4222"),
            ("nats://u:p@[::1]:4222", "nats://u:***@[::1]:4222"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            let list = split(url).unwrap();
            assert_eq!(list.redacted, shown, "{url}");
        }
        // The whole password is taken, so the connection uses what the user wrote.
        assert_eq!(
            split("nats://u:pa,s#s@h:4222").unwrap().credentials,
            Some(UrlCredentials::UserPassword {
                user: "u".into(),
                password: "pa,s#s".into()
            })
        );
        // Lists without schemes, or pieces without user info, are split on every comma.
        assert_eq!(redact("a:1,u:p@b:2"), "a:1,u:***@b:2");
        assert_eq!(redact("nats://a:1,b:2"), "nats://a:1,b:2");
        assert_eq!(
            split("nats://a:1,b:2,nats://c:3").unwrap().credentials,
            None
        );
    }

    #[test]
    fn credentials_are_taken_out_and_decoded() {
        let list = split("nats://prov:p%40ss%3Aword@127.0.0.1:4222").unwrap();
        assert_eq!(
            list.credentials,
            Some(UrlCredentials::UserPassword {
                user: "prov".into(),
                password: "p@ss:word".into()
            })
        );
        assert_eq!(list.redacted, "nats://prov:***@127.0.0.1:4222");
        assert_eq!(
            split("nats://tok@a:1, nats://b:2").unwrap().credentials,
            Some(UrlCredentials::Token("tok".into()))
        );
        assert_eq!(split("nats://a:1").unwrap().credentials, None);
        assert_eq!(
            without_user_info("nats://prov:***@127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn clashing_or_broken_credentials_are_refused_without_the_secret() {
        let err = split("nats://u:one1@a:1,nats://u:two2@b:2").unwrap_err();
        assert!(
            !err.to_string().contains("one1") && !err.to_string().contains("two2"),
            "{err}"
        );
        let err = split("nats://:s3cret@a:1").unwrap_err();
        assert!(
            !err.to_string().contains("s3cret") && err.to_string().contains("no user"),
            "{err}"
        );
        let err = split("nats://u:%ff%fe@a:1").unwrap_err();
        assert!(!err.to_string().contains("%ff"), "{err}");
    }
}
