//! Least-privilege permission templates for the parties: a wasmCloud host, wadm, the
//! provisioner itself and the wasmCloud Kubernetes operator. Derived from the catalog, never listed by hand: each row's
//! [`crate::catalog::Access`] says what its app does with the resource once it exists, and
//! [`crate::catalog::MESSAGING`] holds the apps' own control and RPC subjects. Adding a resource
//! to the catalog updates every template.
//!
//! A [`Template`] is one value (`publish`/`subscribe` allow and deny lists plus
//! `allow_responses`) rendered for a nats-server config (`conf`) or as JSON; other
//! renderers (nsc command lines, user JWT claims) take the same value.
//!
//! Facts the templates rest on (`shared/spec/permissions.md`, proven with host 1.9.2 and
//! wadm 0.21.1 against nats-server 2.10–2.12):
//! - NATS wildcards match whole tokens only, so per-lattice resources are named exactly
//!   (`$JS.API.STREAM.INFO.KV_LATTICEDATA_<l>`), never with a `KV_LATTICEDATA_*` token.
//! - A server in JetStream domain `D` maps `$JS.D.API.…` to `$JS.API.…` *before* it checks
//!   permissions, so the `$JS.API` names are what matter even when the apps use a domain.
//!   With `js_domain` set, the `$JS.D.API` forms are listed as well.
//! - Across a leaf connection none of that holds: the hub checks the leaf user's
//!   permissions on the unmapped `$JS.D.API` subjects and ignores `allow_responses`, so a
//!   host behind a leaf gets its own form ([`PlatformOptions::via_leaf`]).
//! - `allow_responses` lets a user answer the requests it receives (control interface
//!   replies) and covers JetStream flow-control replies and acks of KV watches.

use serde::{Deserialize, Serialize};

use crate::catalog::{App, Kind, Operator, CATALOG};
use crate::config_error::ConfigError;
use crate::subjects;

mod builder;
mod render;
mod roles;

pub use render::Format;
pub use roles::{template, template_for, template_union};

/// The party a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A wasmCloud host (1.9.x), for the lattices given.
    Host,
    /// wadm (0.21.x, single tenant); it serves every lattice.
    Wadm,
    /// This service: creates resources, never deletes or purges them.
    Provisioner,
    /// The wasmCloud Kubernetes operator (`--operator 0.4|0.5`), for the lattices
    /// given: wadm's API and its own consumer on its stream.
    Operator,
    /// A `backup` job: snapshots of the streams `backup --all` takes for the lattices
    /// given (and wadm's), nothing else; it cannot restore, create or change a stream.
    Backup,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Wadm => "wadm",
            Role::Provisioner => "provisioner",
            Role::Operator => "operator",
            Role::Backup => "backup",
        }
    }
}

/// Where the parties run in the wasmCloud platform (Kubernetes): kept apart from
/// [`TemplateOptions`] because only the host and operator roles use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformOptions {
    /// Host: it reaches the hub through a leaf node (the operator's sidecar), and the
    /// template is for the leaf connection's user on the hub. Needs `js_domain` (the hub's
    /// domain, `default` in the platform chart).
    pub via_leaf: bool,
    /// Operator role: its version, which names its stream and consumers.
    pub operator: Option<Operator>,
}

/// What a template is made for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// Host: the lattices it joins (`default` when empty). Provisioner: name the lattices'
    /// streams exactly (when empty, any stream name). Ignored for wadm, which serves all.
    pub lattices: Vec<String>,
    /// JetStream domain of the resources; adds the `$JS.<domain>.API` forms.
    pub js_domain: Option<String>,
}

/// Allow and deny lists for one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl Rules {
    fn push(list: &mut Vec<String>, subject: String) {
        if !list.contains(&subject) {
            list.push(subject);
        }
    }
}

/// A user's permissions, as nats-server and user JWTs both express them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub publish: Rules,
    pub subscribe: Rules,
    /// Publish to the reply subject of a received request (one reply each).
    pub allow_responses: bool,
}

impl Permissions {
    /// The `permissions: {…}` block of a user in a nats-server config.
    pub fn to_conf(&self) -> String {
        let mut out = String::from("permissions: {\n");
        for (direction, rules) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            if rules.allow.is_empty() && rules.deny.is_empty() {
                continue;
            }
            out.push_str(&format!("  {direction}: {{\n"));
            for (kind, list) in [("allow", &rules.allow), ("deny", &rules.deny)] {
                if list.is_empty() {
                    continue;
                }
                out.push_str(&format!("    {kind}: [\n"));
                for subject in list {
                    out.push_str(&format!("      {}\n", quote(subject)));
                }
                out.push_str("    ]\n");
            }
            out.push_str("  }\n");
        }
        out.push_str(&format!(
            "  allow_responses: {}\n}}\n",
            self.allow_responses
        ));
        out
    }
}

/// A role's permissions and what they were made for.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub role: Role,
    /// Further roles the same user holds (see [`template_union`]); usually empty.
    pub also: Vec<Role>,
    pub options: TemplateOptions,
    pub platform: PlatformOptions,
    pub permissions: Permissions,
    /// The provisioner's own reply prefix, when it has one (see
    /// [`Template::with_inbox_prefix`]).
    pub inbox_prefix: Option<String>,
}

/// Checks a reply-subject prefix: `.`-separated tokens of `A-Z a-z 0-9 _ -` (no
/// wildcards), the first starting with `_`, the space NATS keeps for replies, so that it
/// cannot overlap a lattice's subjects (lattice names never start with `_`) or an app's;
/// the server's own reply mappings `_R_` and `_GR_` are refused.
pub fn validate_inbox_prefix(prefix: &str) -> Result<String, ConfigError> {
    let prefix = prefix.trim().trim_end_matches('.');
    let tokens_ok = !prefix.is_empty()
        && prefix.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    let first = prefix.split('.').next().unwrap_or_default();
    if !tokens_ok || !first.starts_with('_') || matches!(first, "_R_" | "_GR_") {
        return Err(ConfigError::Invalid(format!(
            "inbox prefix {prefix:?} is invalid: use a subject prefix starting with `_` such \
             as `_INBOX_provisioner` (tokens of A-Z, a-z, 0-9, `_` and `-`, no wildcards; not \
             the server's `_R_` or `_GR_`)"
        )));
    }
    Ok(prefix.to_string())
}

/// A name that is one subject token and one word in a config or on a command line: not
/// empty, only `A-Z a-z 0-9 _ -` (JetStream domains, account names and public keys).
pub fn is_name_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks a JetStream domain: the one rule for `--js-domain`, the config file's
/// `js_domain` and a context's `jetstream_domain` (a domain is one subject token of
/// `$JS.<domain>.API`, so a `.`, a wildcard or a space would name other subjects).
pub fn validate_js_domain(domain: &str) -> Result<(), ConfigError> {
    if !is_name_token(domain) {
        return Err(ConfigError::Invalid(format!(
            "JetStream domain {domain:?} is invalid: use A-Z, a-z, 0-9, `_` and `-`"
        )));
    }
    Ok(())
}

/// Audit events of the changes the service makes (`wasmcloud.provision.events.<action>`).
pub fn audit_events_subject() -> String {
    format!("{}.>", subjects::EVENTS_PREFIX)
}

/// The subject a host sends its bootstrap request to: the scoped form, so that a host's
/// permissions name its own lattices only.
pub fn host_bootstrap_subject(lattice: &str) -> String {
    format!("{}.{lattice}", subjects::HOST_SUBJECT)
}

/// A double-quoted config string (quoted, `$JS…` is not read as a variable).
pub(crate) fn quote(subject: &str) -> String {
    serde_json::to_string(subject).unwrap_or_else(|_| format!("\"{subject}\""))
}

/// KV buckets an app binds, by catalog key, for a lattice (what a bootstrap reply lists).
pub fn buckets_for(app: App, lattice: &str) -> Vec<(&'static str, String)> {
    CATALOG
        .iter()
        .filter(|r| r.needed_by == app && r.kind() == Kind::Kv)
        .map(|r| (r.key, r.name_for(lattice)))
        .collect()
}

#[cfg(test)]
mod platform_tests;
#[cfg(test)]
mod tests;
