//! Least-privilege permission templates for the three parties: a wasmCloud host, wadm and
//! the provisioner itself. Derived from the catalog, never listed by hand: each row's
//! [`Access`] says what its app does with the resource once it exists, and
//! [`catalog::MESSAGING`] holds the apps' own control and RPC subjects. Adding a resource
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
//!   With `js_domain` set, the `$JS.D.API` forms are listed as well, for clients that reach
//!   the domain through a leaf node.
//! - `allow_responses` lets a user answer the requests it receives (control interface
//!   replies) and covers JetStream flow-control replies and acks of KV watches.

use serde::{Deserialize, Serialize};

use crate::advisories;
use crate::catalog::{self, Access, App, Kind, Row, Scope, CATALOG};
use crate::endpoints;
use crate::request;

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
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Wadm => "wadm",
            Role::Provisioner => "provisioner",
        }
    }
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

/// A role's permissions and what they were made for.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub role: Role,
    pub options: TemplateOptions,
    pub permissions: Permissions,
}

/// The JetStream API operations the apps must never call; denied explicitly as defence in
/// depth (an allow list that grows by mistake still cannot reach them).
const DENIED_TO_APPS: &[&str] = &[
    "INFO",
    "STREAM.CREATE.>",
    "STREAM.UPDATE.>",
    "STREAM.DELETE.>",
    "STREAM.PURGE.>",
];

/// The operations the provisioner never calls: it never loses data, and it creates KV
/// buckets as streams, so it needs no account info either.
const DENIED_TO_PROVISIONER: &[&str] = &["INFO", "STREAM.DELETE.>", "STREAM.PURGE.>"];

/// Where replies to requests (JetStream API, the service's endpoints) come back.
const INBOX: &str = "_INBOX.>";

/// The Services API (ADR-32) discovery subjects the service answers on.
const SERVICE_DISCOVERY: &str = "$SRV.>";

/// Audit events of the changes the service makes (`wasmcloud.provision.events.<action>`).
pub fn audit_events_subject() -> String {
    format!("{}.>", crate::audit::EVENTS_PREFIX)
}

/// Collects subjects in order, without duplicates, adding domain forms where asked.
struct Builder {
    permissions: Permissions,
    domain: Option<String>,
}

impl Builder {
    fn new(domain: Option<String>) -> Self {
        Builder {
            permissions: Permissions {
                allow_responses: true,
                ..Default::default()
            },
            domain,
        }
    }

    /// `$JS.API.<op>` (and `$JS.<domain>.API.<op>`), for publish allow or deny.
    fn js_forms(&self, op: &str) -> Vec<String> {
        let mut forms = vec![format!("$JS.API.{op}")];
        if let Some(d) = &self.domain {
            forms.push(format!("$JS.{d}.API.{op}"));
        }
        forms
    }

    fn allow_js(&mut self, op: &str) {
        for s in self.js_forms(op) {
            Rules::push(&mut self.permissions.publish.allow, s);
        }
    }

    fn deny_js(&mut self, op: &str) {
        for s in self.js_forms(op) {
            Rules::push(&mut self.permissions.publish.deny, s);
        }
    }

    /// KV writes and purges; with a domain the client may prefix them with the API.
    fn allow_kv(&mut self, bucket: &str) {
        self.allow_publish(format!("$KV.{bucket}.>"));
        if let Some(d) = &self.domain {
            let form = format!("$JS.{d}.API.$KV.{bucket}.>");
            self.allow_publish(form);
        }
    }

    fn allow_publish(&mut self, subject: String) {
        Rules::push(&mut self.permissions.publish.allow, subject);
    }

    fn allow_subscribe(&mut self, subject: String) {
        Rules::push(&mut self.permissions.subscribe.allow, subject);
    }

    /// What an app does with one resource (one row made concrete for a lattice).
    fn access(&mut self, row: &Row, lattice: &str, access: Access) {
        let s = row.stream_for(lattice);
        let name = row.name_for(lattice);
        match access {
            Access::Info => self.allow_js(&format!("STREAM.INFO.{s}")),
            Access::KvReadWriteWatch => {
                // Watches and key listings use unnamed ordered consumers.
                self.allow_js(&format!("CONSUMER.CREATE.{s}"));
                self.allow_js(&format!("DIRECT.GET.{s}.>"));
                self.allow_kv(&name);
            }
            Access::KvReadWrite => {
                self.allow_js(&format!("DIRECT.GET.{s}.>"));
                self.allow_kv(&name);
            }
            Access::DurablePull => {
                self.allow_js(&format!("CONSUMER.CREATE.{s}.>"));
                self.allow_js(&format!("CONSUMER.INFO.{s}.*"));
                self.allow_js(&format!("CONSUMER.LIST.{s}"));
                self.allow_js(&format!("CONSUMER.MSG.NEXT.{s}.>"));
                self.allow_publish(format!("$JS.ACK.{s}.>"));
            }
            Access::EphemeralPull => {
                self.allow_js(&format!("CONSUMER.CREATE.{s}"));
                self.allow_js(&format!("CONSUMER.MSG.NEXT.{s}.>"));
                self.allow_publish(format!("$JS.ACK.{s}.>"));
            }
            Access::DirectRead => {
                self.allow_js(&format!("DIRECT.GET.{s}.>"));
                self.allow_js(&format!("STREAM.MSG.GET.{s}"));
            }
            Access::Publish => {
                for subject in row.subjects_for(lattice, false) {
                    self.allow_publish(subject);
                }
            }
            Access::Subscribe => {
                for subject in row.subjects_for(lattice, false) {
                    self.allow_subscribe(subject);
                }
            }
        }
    }

    /// Everything an app needs: its rows' accesses, its lookups, its messaging.
    fn app(&mut self, app: App, lattices: &[String]) {
        let once = [String::new()];
        for row in CATALOG.iter().filter(|r| r.needed_by == app) {
            let per_row: &[String] = match row.scope {
                Scope::Lattice => lattices,
                Scope::Wadm | Scope::Provisioner => &once,
            };
            for lattice in per_row {
                for access in row.access {
                    self.access(row, lattice, *access);
                }
            }
        }
        for (_, stream) in catalog::LOOKED_UP_ONLY.iter().filter(|(a, _)| *a == app) {
            self.allow_js(&format!("STREAM.INFO.{stream}"));
        }
        for m in catalog::MESSAGING.iter().filter(|m| m.app == app) {
            for subject in m.publish {
                for s in per_lattice(subject, lattices) {
                    self.allow_publish(s);
                }
            }
            for subject in m.subscribe {
                for s in per_lattice(subject, lattices) {
                    self.allow_subscribe(s);
                }
            }
        }
        self.allow_subscribe(INBOX.to_string());
        for op in DENIED_TO_APPS {
            self.deny_js(op);
        }
    }

    fn provisioner(&mut self, lattices: &[String]) {
        let streams: Vec<String> = if lattices.is_empty() {
            vec!["*".to_string()]
        } else {
            let mut streams = Vec::new();
            for row in CATALOG {
                match row.scope {
                    Scope::Lattice => streams.extend(lattices.iter().map(|l| row.stream_for(l))),
                    Scope::Wadm | Scope::Provisioner => streams.push(row.stream_for("")),
                }
            }
            streams
        };
        // Its own bookkeeping (the `--max-lattices` reservations): read and written here.
        for row in CATALOG.iter().filter(|r| r.needed_by == App::Provisioner) {
            for access in row.access {
                self.access(row, "", *access);
            }
        }
        for op in ["INFO", "CREATE", "UPDATE"] {
            for s in &streams {
                self.allow_js(&format!("STREAM.{op}.{s}"));
            }
        }
        // Counting existing lattices for `--max-lattices`.
        self.allow_js("STREAM.NAMES");
        self.allow_publish(audit_events_subject());
        // The shutdown witness's markers (see `witness.rs`).
        self.allow_publish(format!("{}._drain.>", endpoints::SUBJECT_PREFIX));
        self.allow_subscribe(format!("{}.>", endpoints::SUBJECT_PREFIX));
        self.allow_subscribe(SERVICE_DISCOVERY.to_string());
        self.allow_subscribe(INBOX.to_string());
        for subject in advisories::SUBJECTS {
            self.allow_subscribe(subject.to_string());
        }
        for op in DENIED_TO_PROVISIONER {
            self.deny_js(op);
        }
    }
}

/// A subject with `{lattice}` once per lattice; others once.
fn per_lattice(subject: &str, lattices: &[String]) -> Vec<String> {
    if subject.contains("{lattice}") {
        lattices
            .iter()
            .map(|l| subject.replace("{lattice}", l))
            .collect()
    } else {
        vec![subject.to_string()]
    }
}

/// The subject a host sends its bootstrap request to: the scoped form, so that a host's
/// permissions name its own lattices only.
pub fn host_bootstrap_subject(lattice: &str) -> String {
    endpoints::host::scoped_subject(lattice)
}

/// Builds a role's template. Lattice names and the domain are checked as everywhere else.
pub fn template(role: Role, options: &TemplateOptions) -> Result<Template, String> {
    for l in &options.lattices {
        request::validate_lattice(l).map_err(|e| e.message)?;
    }
    if let Some(d) = &options.js_domain {
        if d.is_empty()
            || !d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "JetStream domain {d:?} is invalid: use A-Z, a-z, 0-9, `_` and `-`"
            ));
        }
    }
    let mut options = options.clone();
    let mut b = Builder::new(options.js_domain.clone());
    match role {
        Role::Host => {
            if options.lattices.is_empty() {
                options.lattices.push(request::DEFAULT_LATTICE.to_string());
            }
            b.app(App::Host, &options.lattices);
            for l in &options.lattices {
                b.allow_publish(host_bootstrap_subject(l));
            }
        }
        Role::Wadm => {
            options.lattices.clear();
            b.app(App::Wadm, &[]);
            b.allow_publish(endpoints::wadm::SPEC.subject.to_string());
        }
        Role::Provisioner => b.provisioner(&options.lattices),
    }
    Ok(Template {
        role,
        options,
        permissions: b.permissions,
    })
}

/// Output formats of `wasmcloud-provisioner permissions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A `permissions: {…}` block for a user in a nats-server config.
    Conf,
    /// The permissions as JSON (also valid nats-server config syntax).
    Json,
    /// `nsc add user` / `nsc edit user` command lines, for operator mode.
    Nsc,
}

impl Template {
    /// The command line that makes this template (the first line of `conf` output).
    pub fn command_line(&self, format: Format) -> String {
        let mut line = format!(
            "wasmcloud-provisioner permissions --role {}",
            self.role.as_str()
        );
        for l in &self.options.lattices {
            line.push_str(&format!(" --lattice {l}"));
        }
        if let Some(d) = &self.options.js_domain {
            line.push_str(&format!(" --js-domain {d}"));
        }
        let format = match format {
            Format::Conf => "conf",
            Format::Json => "json",
            Format::Nsc => "nsc",
        };
        line.push_str(&format!(" --format {format}"));
        line
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Conf => self.to_conf(),
            Format::Json => self.to_json(),
            Format::Nsc => self.to_nsc(),
        }
    }

    /// A block that pastes into a user of a nats-server config, between a first line
    /// naming the command that made it and an end marker (so that a config holding it can
    /// be checked against the current catalog).
    pub fn to_conf(&self) -> String {
        let p = &self.permissions;
        let mut out = format!("# {}\n", self.command_line(Format::Conf));
        out.push_str("permissions: {\n");
        for (direction, rules) in [("publish", &p.publish), ("subscribe", &p.subscribe)] {
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
        out.push_str(&format!("  allow_responses: {}\n", p.allow_responses));
        out.push_str("}\n# end wasmcloud-provisioner permissions\n");
        out
    }

    /// The permissions as pretty JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.permissions).unwrap_or_default();
        s.push('\n');
        s
    }
}

impl Template {
    /// The user name the `nsc` lines use: `wasmcloud-host-<lattice>` for a host of one
    /// lattice, else the role's name.
    pub fn user_name(&self) -> String {
        match (self.role, self.options.lattices.as_slice()) {
            (Role::Host, [lattice]) => format!("wasmcloud-host-{lattice}"),
            (Role::Host, _) => "wasmcloud-host".to_string(),
            (Role::Wadm, _) => "wadm".to_string(),
            (Role::Provisioner, _) => "wasmcloud-provisioner".to_string(),
        }
    }

    /// `nsc add user` for a new user and `nsc edit user` for an existing one, with the
    /// same flags; subjects are single-quoted for the shell (`$JS…`, `>`).
    pub fn to_nsc(&self) -> String {
        let p = &self.permissions;
        let mut flags = Vec::new();
        for (flag, list) in [
            ("--allow-pub", &p.publish.allow),
            ("--deny-pub", &p.publish.deny),
            ("--allow-sub", &p.subscribe.allow),
            ("--deny-sub", &p.subscribe.deny),
        ] {
            flags.extend(list.iter().map(|s| format!("{flag} '{s}'")));
        }
        if p.allow_responses {
            flags.push("--allow-pub-response".to_string());
        }
        let continued = |command: &str| {
            let mut line = command.to_string();
            for f in &flags {
                line.push_str(" \\\n  ");
                line.push_str(f);
            }
            line.push('\n');
            line
        };
        let name = self.user_name();
        let mut out = format!("# {}\n", self.command_line(Format::Nsc));
        out.push_str(
            "# Runs against nsc's current account; add --account <name> to choose another.\n\
             # A new user:\n",
        );
        out.push_str(&continued(&format!("nsc add user --name {name}")));
        out.push_str(
            "# An existing user (nsc edit adds these; remove stale grants with --rm <subject>):\n",
        );
        out.push_str(&continued(&format!("nsc edit user --name {name}")));
        out.push_str(&format!(
            "# Then: nsc generate creds --name {name} > {name}.creds (or use \
             `wasmcloud-provisioner creds`, which signs with the account key directly)\n"
        ));
        out
    }
}

/// A double-quoted config string (quoted, `$JS…` is not read as a variable).
fn quote(subject: &str) -> String {
    serde_json::to_string(subject).unwrap_or_else(|_| format!("\"{subject}\""))
}

/// KV buckets an app binds, by catalog key, for a lattice (what a bootstrap reply lists).
pub fn buckets_for(app: App, lattice: &str) -> Vec<(&'static str, String)> {
    CATALOG
        .iter()
        .filter(|r| r.needed_by == app && r.kind == Kind::Kv)
        .map(|r| (r.key, r.name_for(lattice)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn set(list: &[String]) -> BTreeSet<&str> {
        list.iter().map(String::as_str).collect()
    }

    fn lattice(l: &str) -> TemplateOptions {
        TemplateOptions {
            lattices: vec![l.to_string()],
            js_domain: None,
        }
    }

    /// The five denies the spec lists for host and wadm.
    const SPEC_APP_DENY: &[&str] = &[
        "$JS.API.INFO",
        "$JS.API.STREAM.CREATE.>",
        "$JS.API.STREAM.UPDATE.>",
        "$JS.API.STREAM.DELETE.>",
        "$JS.API.STREAM.PURGE.>",
    ];

    /// `shared/spec/permissions.md`, "Host", for lattice `default`, transcribed entry by
    /// entry; the template adds only the bootstrap request.
    #[test]
    fn host_template_is_the_proven_list() {
        let t = template(Role::Host, &lattice("default")).unwrap();
        let spec_publish = [
            "$JS.API.STREAM.INFO.KV_LATTICEDATA_default",
            "$JS.API.STREAM.INFO.KV_CONFIGDATA_default",
            "$JS.API.CONSUMER.CREATE.KV_LATTICEDATA_default",
            "$JS.API.CONSUMER.CREATE.KV_CONFIGDATA_default",
            "$JS.API.DIRECT.GET.KV_LATTICEDATA_default.>",
            "$JS.API.DIRECT.GET.KV_CONFIGDATA_default.>",
            "$KV.LATTICEDATA_default.>",
            "$KV.CONFIGDATA_default.>",
            "wasmbus.evt.default.>",
            "wasmbus.rpc.default.>",
            "default.>",
        ];
        let mut want: BTreeSet<&str> = spec_publish.into_iter().collect();
        want.insert("wasmcloud.provision.host.default");
        let p = &t.permissions;
        assert_eq!(set(&p.publish.allow), want);
        assert_eq!(
            set(&p.subscribe.allow),
            ["_INBOX.>", "wasmbus.ctl.v1.default.>", "default.>"]
                .into_iter()
                .collect()
        );
        assert_eq!(
            set(&p.publish.deny),
            SPEC_APP_DENY.iter().copied().collect()
        );
        assert!(p.subscribe.deny.is_empty());
        assert!(p.allow_responses);
    }

    /// `shared/spec/permissions.md`, "wadm", transcribed entry by entry (with the optional
    /// legacy-mirror lookups); the template adds only the bootstrap request.
    #[test]
    fn wadm_template_is_the_proven_list() {
        let t = template(Role::Wadm, &TemplateOptions::default()).unwrap();
        let mut want: BTreeSet<String> = BTreeSet::new();
        for s in [
            "wadm_events",
            "wadm_commands",
            "wadm_status",
            "wasmbus_events",
            "wadm_notify",
            "wadm_event_consumer",
            "KV_wadm_state",
            "KV_wadm_manifests",
            "wadm_mirror",
            "wadm_multitenant_mirror",
        ] {
            want.insert(format!("$JS.API.STREAM.INFO.{s}"));
        }
        for s in [
            "$JS.API.CONSUMER.CREATE.wadm_commands.>",
            "$JS.API.CONSUMER.CREATE.wadm_event_consumer.>",
            "$JS.API.CONSUMER.CREATE.wadm_notify",
            "$JS.API.CONSUMER.INFO.wadm_commands.*",
            "$JS.API.CONSUMER.INFO.wadm_event_consumer.*",
            "$JS.API.CONSUMER.LIST.wadm_commands",
            "$JS.API.CONSUMER.LIST.wadm_event_consumer",
            "$JS.API.DIRECT.GET.KV_wadm_state.>",
            "$JS.API.DIRECT.GET.KV_wadm_manifests.>",
            "$KV.wadm_state.>",
            "$KV.wadm_manifests.>",
            "$JS.API.DIRECT.GET.wadm_status.>",
            "$JS.API.STREAM.MSG.GET.wadm_status",
            "wadm.cmd.*",
            "wadm.evt.*.>",
            "wadm.status.*.*",
            "wadm.notify.*",
            "wasmbus.ctl.v1.*.>",
        ] {
            want.insert(s.to_string());
        }
        for s in ["wadm_commands", "wadm_event_consumer", "wadm_notify"] {
            want.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{s}.>"));
            want.insert(format!("$JS.ACK.{s}.>"));
        }
        want.insert("wasmcloud.provision.wadm".to_string());
        let p = &t.permissions;
        assert_eq!(
            set(&p.publish.allow),
            want.iter().map(String::as_str).collect()
        );
        assert_eq!(
            set(&p.subscribe.allow),
            ["wadm.api.>", "wasmbus.evt.*.>", "_INBOX.>"]
                .into_iter()
                .collect()
        );
        assert_eq!(
            set(&p.publish.deny),
            SPEC_APP_DENY.iter().copied().collect()
        );
        assert!(p.allow_responses);
        assert!(t.options.lattices.is_empty());
    }

    #[test]
    fn provisioner_names_streams_exactly_when_lattices_are_given() {
        let open = template(Role::Provisioner, &TemplateOptions::default()).unwrap();
        let p = &open.permissions.publish;
        for op in ["INFO", "CREATE", "UPDATE"] {
            assert!(p.allow.contains(&format!("$JS.API.STREAM.{op}.*")));
        }
        assert!(!p
            .allow
            .iter()
            .any(|s| s.contains("DELETE") || s.contains("PURGE")));
        assert!(!p.allow.contains(&"$JS.API.INFO".to_string()));
        assert_eq!(
            set(&p.deny),
            [
                "$JS.API.INFO",
                "$JS.API.STREAM.DELETE.>",
                "$JS.API.STREAM.PURGE.>"
            ]
            .into_iter()
            .collect()
        );
        let sub = set(&open.permissions.subscribe.allow);
        for s in [
            "wasmcloud.provision.>",
            "$SRV.>",
            "_INBOX.>",
            "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
            "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
        ] {
            assert!(sub.contains(s), "{s}");
        }

        let exact = template(
            Role::Provisioner,
            &TemplateOptions {
                lattices: vec!["a".into(), "b".into()],
                js_domain: None,
            },
        )
        .unwrap();
        let allow = set(&exact.permissions.publish.allow);
        // Every catalog stream of both lattices and of wadm, for each operation.
        let streams = CATALOG
            .iter()
            .map(|r| match r.scope {
                Scope::Lattice => 2,
                Scope::Wadm | Scope::Provisioner => 1,
            })
            .sum::<usize>();
        let stream_ops = allow
            .iter()
            .filter(|s| s.starts_with("$JS.API.STREAM.") && !s.ends_with("NAMES"))
            .count();
        assert_eq!(stream_ops, 3 * streams);
        assert!(allow.contains("$JS.API.STREAM.CREATE.KV_LATTICEDATA_b"));
        assert!(allow.contains("$JS.API.STREAM.UPDATE.wadm_event_consumer"));
        assert!(!allow.iter().any(|s| s.ends_with(".*")));
    }

    #[test]
    fn a_new_catalog_row_reaches_the_templates() {
        // The host template holds exactly one STREAM.INFO per host row and lattice.
        let t = template(Role::Host, &lattice("x")).unwrap();
        let infos = t
            .permissions
            .publish
            .allow
            .iter()
            .filter(|s| s.starts_with("$JS.API.STREAM.INFO."))
            .count();
        let rows = CATALOG.iter().filter(|r| r.needed_by == App::Host).count();
        assert_eq!(infos, rows);
    }

    #[test]
    fn domain_adds_the_prefixed_forms() {
        let t = template(
            Role::Host,
            &TemplateOptions {
                lattices: vec!["default".into()],
                js_domain: Some("hub".into()),
            },
        )
        .unwrap();
        let allow = set(&t.permissions.publish.allow);
        assert!(allow.contains("$JS.API.STREAM.INFO.KV_LATTICEDATA_default"));
        assert!(allow.contains("$JS.hub.API.STREAM.INFO.KV_LATTICEDATA_default"));
        assert!(allow.contains("$JS.hub.API.$KV.LATTICEDATA_default.>"));
        assert!(set(&t.permissions.publish.deny).contains("$JS.hub.API.STREAM.DELETE.>"));
        assert!(template(
            Role::Host,
            &TemplateOptions {
                lattices: vec![],
                js_domain: Some("a.b".into())
            }
        )
        .is_err());
    }

    #[test]
    fn host_without_lattice_is_for_default_and_bad_names_are_refused() {
        let t = template(Role::Host, &TemplateOptions::default()).unwrap();
        assert_eq!(t.options.lattices, vec!["default"]);
        assert!(template(Role::Host, &lattice("a.b")).is_err());
        assert!(template(Role::Provisioner, &lattice("*")).is_err());
    }

    #[test]
    fn conf_block_lists_every_subject_quoted() {
        let t = template(Role::Host, &lattice("default")).unwrap();
        let conf = t.to_conf();
        assert!(conf.starts_with(
            "# wasmcloud-provisioner permissions --role host --lattice default --format conf\n\
             permissions: {\n"
        ));
        assert!(conf.ends_with("}\n# end wasmcloud-provisioner permissions\n"));
        for s in t
            .permissions
            .publish
            .allow
            .iter()
            .chain(&t.permissions.publish.deny)
            .chain(&t.permissions.subscribe.allow)
        {
            assert!(conf.contains(&format!("\"{s}\"\n")), "{s}");
        }
        assert!(conf.contains("allow_responses: true"));
        let json: Permissions = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(json, t.permissions);
    }
}
