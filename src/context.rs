//! natscli contexts: connect the way the `nats` command already does.
//!
//! natscli (through jsm.go's `natscontext`) keeps one JSON file per context in
//! `$XDG_CONFIG_HOME/nats/context/<name>.json` (`~/.config/nats/context/<name>.json` when
//! `XDG_CONFIG_HOME` is unset), and the name of the selected one in
//! `…/nats/context.txt`. `--context <name>` reads that file; without it, the selected
//! context is used, if there is one.
//!
//! Fields used: `url`, `user`, `password`, `token`, `creds`, `nkey`, `user_jwt` +
//! `user_seed`, `cert`, `key`, `ca`, `tls_first`, `inbox_prefix`, `jetstream_domain`. Paths
//! get the same `~` and `$VAR` expansion natscli applies. Settings this tool cannot honour
//! (an `nsc` lookup, credential URIs other than `file://`, a custom JetStream API prefix, a
//! SOCKS proxy, the Windows certificate store) are refused with a message, rather than
//! silently connecting some other way.

use std::path::{Path, PathBuf};

use crate::config_error::ConfigError;
use serde::Deserialize;

/// One natscli context, as stored. natscli writes `""` for unset fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NatsContext {
    pub description: String,
    pub url: String,
    pub token: String,
    pub user: String,
    pub password: String,
    pub creds: String,
    pub nkey: String,
    pub cert: String,
    pub key: String,
    pub ca: String,
    pub nsc: String,
    pub jetstream_domain: String,
    pub jetstream_api_prefix: String,
    pub inbox_prefix: String,
    pub user_jwt: String,
    pub user_seed: String,
    pub tls_first: bool,
    pub socks_proxy: String,
    pub windows_cert_store: String,
}

/// A context read from disk, with its name and file.
#[derive(Debug, Clone)]
pub struct LoadedContext {
    pub name: String,
    pub path: PathBuf,
    pub settings: NatsContext,
}

/// `$XDG_CONFIG_HOME/nats`, or `~/.config/nats`.
pub fn nats_config_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("nats"));
    }
    home_dir().map(|h| h.join(".config").join("nats"))
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The context selected with `nats context select`, if any.
pub fn selected_context() -> Option<String> {
    let file = nats_config_dir()?.join("context.txt");
    let name = std::fs::read_to_string(file).ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Loads the named context, or the selected one when `name` is `None`. Without a name
/// and without a selection there is no context (`Ok(None)`); a named or selected context
/// that cannot be read is an error.
pub fn load(name: Option<&str>) -> Result<Option<LoadedContext>, ConfigError> {
    let (name, how) = match name {
        Some(n) => (n.to_string(), "named with --context or in the config file"),
        None => match selected_context() {
            Some(n) => (n, "selected in natscli's context.txt"),
            None => return Ok(None),
        },
    };
    if name.is_empty() || name.contains("..") || name.contains('/') || name.contains('\\') {
        return Err(ConfigError::Invalid(format!(
            "context name {name:?} ({how}) is invalid: a context name has no `/` and no `..`"
        )));
    }
    let dir = nats_config_dir().ok_or(ConfigError::File(
        "cannot find natscli's contexts: neither XDG_CONFIG_HOME nor HOME is set".to_string(),
    ))?;
    let path = dir.join("context").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::File(format!(
            "cannot read NATS context {name:?} ({how}) from {}: {e} (`nats context ls` lists \
             the known contexts)",
            path.display()
        ))
    })?;
    let settings =
        parse(&text).map_err(|e| e.within(format!("NATS context {}", path.display())))?;
    Ok(Some(LoadedContext {
        name,
        path,
        settings,
    }))
}

/// Parses a context file and expands the paths in it, refusing what cannot be honoured.
pub fn parse(text: &str) -> Result<NatsContext, ConfigError> {
    let mut c: NatsContext = serde_json::from_str(text)
        .map_err(|e| ConfigError::Invalid(format!("not a valid context file: {e}")))?;
    let unsupported = |field: &str, why: &str| {
        Err(ConfigError::Invalid(format!(
            "`{field}` is not supported: {why}"
        )))
    };
    if !c.nsc.is_empty() {
        return unsupported(
            "nsc",
            "run `nsc generate creds` and put the file's path in `creds`",
        );
    }
    if !c.jetstream_api_prefix.is_empty() {
        return unsupported(
            "jetstream_api_prefix",
            "the provisioner addresses JetStream by domain; set `jetstream_domain` instead",
        );
    }
    if !c.socks_proxy.is_empty() {
        return unsupported("socks_proxy", "connect directly or through a leaf node");
    }
    if !c.windows_cert_store.is_empty() {
        return unsupported("windows_cert_store", "give `cert`, `key` and `ca` as files");
    }
    for (field, value) in [
        ("creds", &mut c.creds),
        ("nkey", &mut c.nkey),
        ("cert", &mut c.cert),
        ("key", &mut c.key),
        ("ca", &mut c.ca),
    ] {
        *value = expand_path(field, value)?;
    }
    for (field, value) in [
        ("password", &c.password),
        ("token", &c.token),
        ("user_jwt", &c.user_jwt),
        ("user_seed", &c.user_seed),
    ] {
        if let Some(scheme) = uri_scheme(value) {
            return unsupported(
                field,
                &format!("the `{scheme}://` reference cannot be resolved here; put the value in the context"),
            );
        }
    }
    Ok(c)
}

/// `op://…`, `env://…` → `Some("op")`; a plain value → `None`.
fn uri_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once("://")?;
    (!scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())).then_some(scheme)
}

/// natscli's expansion of a path field: `file://` stripped, `$VAR` and `${VAR}` replaced,
/// then a leading `~` replaced by the home directory.
fn expand_path(field: &str, value: &str) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let value = match uri_scheme(value) {
        Some("file") => &value["file://".len()..],
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "`{field}` is not supported: the `{other}://` reference cannot be resolved \
                 here; give a file path"
            )))
        }
        None => value,
    };
    let expanded = expand_env(value);
    match expanded.strip_prefix('~') {
        Some(rest) => {
            let home = home_dir().ok_or(ConfigError::Invalid(format!(
                "`{field}` starts with `~` but HOME is not set"
            )))?;
            Ok(format!("{}{rest}", home.display()))
        }
        None => Ok(expanded),
    }
}

/// Replaces `$VAR` and `${VAR}` with the environment's value (empty when unset), as Go's
/// `os.ExpandEnv` does.
fn expand_env(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if consumed == 0 || name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

impl NatsContext {
    /// A non-empty field, for the `Option` chains of config resolution.
    pub fn get(value: &str) -> Option<String> {
        (!value.is_empty()).then(|| value.to_string())
    }

    /// A non-empty path field.
    pub fn path(value: &str) -> Option<PathBuf> {
        (!value.is_empty()).then(|| Path::new(value).to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natscli_fields_are_read_and_paths_expanded() {
        let home = std::env::var("HOME").unwrap_or_default();
        let c = parse(
            r#"{"description":"prod","url":"tls://a:4222,tls://b:4222","token":"","user":"",
                "password":"","creds":"~/creds/prov.creds","nkey":"","cert":"file:///etc/c.pem",
                "key":"/etc/k.pem","ca":"","nsc":"","jetstream_domain":"hub",
                "jetstream_api_prefix":"","jetstream_event_prefix":"","inbox_prefix":"_I",
                "user_jwt":"","user_seed":"","color_scheme":"","tls_first":true}"#,
        )
        .unwrap();
        assert_eq!(c.url, "tls://a:4222,tls://b:4222");
        assert_eq!(c.creds, format!("{home}/creds/prov.creds"));
        assert_eq!(c.cert, "/etc/c.pem");
        assert_eq!(c.jetstream_domain, "hub");
        assert_eq!(c.inbox_prefix, "_I");
        assert!(c.tls_first);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        assert!(parse(r#"{"nsc":"nsc://op/acc/user"}"#)
            .unwrap_err()
            .to_string()
            .contains("`nsc` is not supported"));
        assert!(parse(r#"{"creds":"op://vault/item"}"#)
            .unwrap_err()
            .to_string()
            .contains("`op://` reference"));
        assert!(parse(r#"{"password":"env://PW"}"#)
            .unwrap_err()
            .to_string()
            .contains("`env://` reference"));
        assert!(parse(r#"{"jetstream_api_prefix":"x.API"}"#)
            .unwrap_err()
            .to_string()
            .contains("jetstream_domain"));
        assert!(parse("not json")
            .unwrap_err()
            .to_string()
            .contains("not a valid context"));
    }

    #[test]
    fn env_expansion_follows_go() {
        std::env::set_var("WCP_CTX_TEST_DIR", "/srv");
        assert_eq!(expand_env("$WCP_CTX_TEST_DIR/a"), "/srv/a");
        assert_eq!(expand_env("${WCP_CTX_TEST_DIR}x"), "/srvx");
        assert_eq!(expand_env("a$"), "a$");
        assert_eq!(expand_env("$WCP_CTX_TEST_UNSET_VAR/b"), "/b");
    }
}
