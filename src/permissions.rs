//! Least-privilege permission templates for the parties: a wasmCloud host, wadm, the
//! provisioner itself and the wasmCloud Kubernetes operator. Derived from the catalog, never listed by hand: each row's
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
//!   With `js_domain` set, the `$JS.D.API` forms are listed as well.
//! - Across a leaf connection none of that holds: the hub checks the leaf user's
//!   permissions on the unmapped `$JS.D.API` subjects and ignores `allow_responses`, so a
//!   host behind a leaf gets its own form ([`PlatformOptions::via_leaf`]).
//! - `allow_responses` lets a user answer the requests it receives (control interface
//!   replies) and covers JetStream flow-control replies and acks of KV watches.

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Access, App, Kind, Operator, Row, Scope, CATALOG};
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
pub fn validate_inbox_prefix(prefix: &str) -> Result<String, String> {
    let prefix = prefix.trim().trim_end_matches('.');
    let tokens_ok = !prefix.is_empty()
        && prefix.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    let first = prefix.split('.').next().unwrap_or_default();
    if !tokens_ok || !first.starts_with('_') || matches!(first, "_R_" | "_GR_") {
        return Err(format!(
            "inbox prefix {prefix:?} is invalid: use a subject prefix starting with `_` such \
             as `_INBOX_provisioner` (tokens of A-Z, a-z, 0-9, `_` and `-`, no wildcards; not \
             the server's `_R_` or `_GR_`)"
        ));
    }
    Ok(prefix.to_string())
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

/// Operations a backup user must never call: everything that changes a stream, and
/// restore (a backup job that could restore could overwrite what it backs up).
const DENIED_TO_BACKUP: &[&str] = &[
    "INFO",
    "STREAM.CREATE.>",
    "STREAM.UPDATE.>",
    "STREAM.DELETE.>",
    "STREAM.PURGE.>",
    "STREAM.RESTORE.>",
];

/// Where replies to requests (JetStream API, the service's endpoints) come back.
const INBOX: &str = "_INBOX.>";

/// The Services API (ADR-32) discovery prefix and verbs the service answers.
const SERVICE_DISCOVERY: &str = "$SRV";
const SERVICE_VERBS: [&str; 3] = ["PING", "INFO", "STATS"];

/// Audit events of the changes the service makes (`wasmcloud.provision.events.<action>`).
pub fn audit_events_subject() -> String {
    format!("{}.>", crate::subjects::EVENTS_PREFIX)
}

/// Collects subjects in order, without duplicates, adding domain forms where asked.
struct Builder {
    permissions: Permissions,
    domain: Option<String>,
    /// Only the `$JS.<domain>.API` forms, and replies as plain publishes: a leaf
    /// connection's user (see [`Builder::via_leaf`]).
    via_leaf: bool,
}

impl Builder {
    fn new(domain: Option<String>) -> Self {
        Builder {
            permissions: Permissions {
                allow_responses: true,
                ..Default::default()
            },
            domain,
            via_leaf: false,
        }
    }

    /// For the user of a leaf connection that carries a host's traffic to the hub. The hub
    /// checks that user's permissions as the leaf sends (publish) and receives (subscribe)
    /// subjects, without mapping `$JS.<domain>.API` to `$JS.API` first, and with
    /// `allow_responses` having no effect (`shared/spec/permissions.md`, "Hosts behind a
    /// leaf node"). So: only the domain forms (nats-server blocks `$JS.API.>` and `$KV.>`
    /// on a leaf connection between different domains anyway), and the replies a host
    /// sends — control replies on `_INBOX.>`, KV watch flow control on `$JS.FC.<stream>.>`
    /// — as plain publishes.
    fn via_leaf(domain: String) -> Self {
        Builder {
            permissions: Permissions::default(),
            domain: Some(domain),
            via_leaf: true,
        }
    }

    /// `$JS.API.<op>` (and `$JS.<domain>.API.<op>`), for publish allow or deny; through a
    /// leaf only the domain form.
    fn js_forms(&self, op: &str) -> Vec<String> {
        let mut forms = Vec::new();
        if !self.via_leaf {
            forms.push(format!("$JS.API.{op}"));
        }
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
        if !self.via_leaf {
            self.allow_publish(format!("$KV.{bucket}.>"));
        }
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
                if self.via_leaf {
                    // The watcher's flow-control replies (`allow_responses` covers them
                    // only on a direct connection).
                    self.allow_publish(format!("$JS.FC.{s}.>"));
                }
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
            Access::NamedPull { consumer } => {
                let c = consumer.replace("{lattice}", lattice);
                self.allow_js(&format!("STREAM.INFO.{s}"));
                self.allow_js(&format!("CONSUMER.INFO.{s}.{c}"));
                // async-nats appends the filter subject to a named create.
                self.allow_js(&format!("CONSUMER.CREATE.{s}.{c}.>"));
                self.allow_js(&format!("CONSUMER.MSG.NEXT.{s}.{c}"));
                self.allow_publish(format!("$JS.ACK.{s}.{c}.>"));
            }
        }
    }

    /// Everything an app needs: its rows' accesses, its lookups, its messaging. Of the
    /// operator's rows, only its version's.
    fn app(&mut self, app: App, lattices: &[String], operator: Option<Operator>) {
        let once = [String::new()];
        for row in CATALOG.iter().filter(|r| r.needed_by == app) {
            let per_row: &[String] = match row.scope {
                Scope::Lattice => lattices,
                Scope::Wadm | Scope::Provisioner => &once,
                // One stream, one consumer per lattice.
                Scope::Operator(v) if Some(v) == operator => lattices,
                Scope::Operator(_) => continue,
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
        if self.via_leaf {
            // Replies to control requests (and every other request the host answers).
            self.allow_publish(INBOX.to_string());
        }
        for op in DENIED_TO_APPS {
            self.deny_js(op);
        }
    }

    /// A backup job: per stream the look-up, the snapshot request and the acks of its
    /// chunks (`shared/spec/backup.md`); the inbox the chunks arrive on; and its own audit
    /// event. No `allow_responses`: it answers no requests, and the acks are named.
    fn backup(&mut self, lattices: &[String]) -> Result<(), String> {
        for s in crate::backup::selection(lattices, true, true)? {
            let stream = &s.stream;
            self.allow_js(&format!("STREAM.INFO.{stream}"));
            self.allow_js(&format!("STREAM.SNAPSHOT.{stream}"));
            self.allow_publish(format!("$JS.SNAPSHOT.ACK.{stream}.>"));
        }
        self.allow_publish(format!("{}.backed_up", crate::subjects::EVENTS_PREFIX));
        self.allow_subscribe(INBOX.to_string());
        for op in DENIED_TO_BACKUP {
            self.deny_js(op);
        }
        Rules::push(
            &mut self.permissions.publish.deny,
            "$JS.SNAPSHOT.RESTORE.>".to_string(),
        );
        self.permissions.allow_responses = false;
        Ok(())
    }

    fn provisioner(&mut self, lattices: &[String]) {
        let streams: Vec<String> = if lattices.is_empty() {
            vec!["*".to_string()]
        } else {
            let mut streams = Vec::new();
            for row in CATALOG {
                match row.scope {
                    Scope::Lattice => streams.extend(lattices.iter().map(|l| row.stream_for(l))),
                    Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => {
                        streams.push(row.stream_for(""))
                    }
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
        // What it serves: every subject under its prefix — its endpoints, and at shutdown
        // the witness (`witness.rs`), one subscription over the whole prefix that also
        // carries the witness's markers; the rest of the prefix is its own audit events,
        // which only it may publish. And its own discovery subjects (not every
        // service's), as async-nats subscribes them: `$SRV.<verb>`,
        // `$SRV.<verb>.<name>`, `$SRV.<verb>.<name>.<id>`.
        self.allow_publish(format!("{}._drain.>", endpoints::SUBJECT_PREFIX));
        self.allow_subscribe(format!("{}.>", endpoints::SUBJECT_PREFIX));
        for verb in SERVICE_VERBS {
            self.allow_subscribe(format!("{SERVICE_DISCOVERY}.{verb}"));
        }
        let name = crate::subjects::SERVICE_NAME;
        self.allow_subscribe(format!("{SERVICE_DISCOVERY}.*.{name}"));
        self.allow_subscribe(format!("{SERVICE_DISCOVERY}.*.{name}.*"));
        self.allow_subscribe(INBOX.to_string());
        for subject in crate::subjects::STREAM_ADVISORIES {
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
    template_for(role, options, PlatformOptions::default())
}

/// [`template`] for a party of the wasmCloud platform: a host behind a leaf node, or the
/// Kubernetes operator of a version.
pub fn template_for(
    role: Role,
    options: &TemplateOptions,
    platform: PlatformOptions,
) -> Result<Template, String> {
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
            if platform.via_leaf {
                let Some(domain) = options.js_domain.clone() else {
                    return Err("--via-leaf needs --js-domain <the hub's JetStream domain> \
                                (`default` in the wasmcloud-platform chart): the host reaches \
                                JetStream as `$JS.<domain>.API`"
                        .into());
                };
                b = Builder::via_leaf(domain);
            }
            b.app(App::Host, &options.lattices, None);
            for l in &options.lattices {
                b.allow_publish(host_bootstrap_subject(l));
            }
        }
        Role::Wadm => {
            options.lattices.clear();
            b.app(App::Wadm, &[], None);
            b.allow_publish(endpoints::wadm::SPEC.subject.to_string());
        }
        Role::Provisioner => b.provisioner(&options.lattices),
        Role::Operator => {
            let Some(operator) = platform.operator else {
                return Err(
                    "the operator's stream depends on its version: give --operator 0.4 \
                            (wasmcloud-operator 0.4.x and 0.5.0, stream \
                            wasmcloud_operator_events) or --operator 0.5 (wadm-operator, from \
                            0.5.1, stream wadm_operator_events)"
                        .into(),
                );
            };
            if options.lattices.is_empty() {
                options.lattices.push(request::DEFAULT_LATTICE.to_string());
            }
            // The operator connects to the hub directly and without a domain (`$JS.API`).
            b = Builder::new(None);
            // It only sends requests: nothing to respond to.
            b.permissions.allow_responses = false;
            b.app(App::Operator, &options.lattices, Some(operator));
            // `bootstrap operator`: ensures its lattices' buckets, then wadm's resources and
            // its stream, idempotently (the same power any host of those lattices has).
            for l in &options.lattices {
                b.allow_publish(format!("{}.{l}", endpoints::lattice::SPEC.subject));
            }
            b.allow_publish(endpoints::wadm::SPEC.subject.to_string());
        }
        Role::Backup => b.backup(&options.lattices)?,
    }
    Ok(Template {
        role,
        also: Vec::new(),
        options,
        platform,
        permissions: b.permissions,
        inbox_prefix: None,
    })
}

impl Template {
    /// The provisioner's replies come to `<prefix>.>` instead of `_INBOX.>` (the
    /// connection's `--inbox-prefix`), so its user no longer reads every client's
    /// replies (hosts' `DIRECT.GET` answers among them). Hosts and wadm keep `_INBOX.>`:
    /// the wasmCloud 1.9 host cannot be given a prefix (see the README's "Tenants"), so
    /// for those roles this changes nothing.
    pub fn with_inbox_prefix(mut self, prefix: Option<&str>) -> Result<Template, String> {
        let Some(prefix) = prefix else {
            return Ok(self);
        };
        if self.role != Role::Provisioner {
            return Ok(self);
        }
        let prefix = validate_inbox_prefix(prefix)?;
        let sub = &mut self.permissions.subscribe.allow;
        if let Some(at) = sub.iter().position(|s| s == INBOX) {
            sub[at] = format!("{prefix}.>");
        }
        self.inbox_prefix = Some(prefix);
        Ok(self)
    }
}

/// One user for several roles: every allow and deny of each, `allow_responses` if any has
/// it. For the wasmcloud-platform chart, where the operator and the hosts' leaf links use
/// one credentials secret (`--role host --role operator --via-leaf`). Roles are applied
/// in the order given, duplicates dropped.
pub fn template_union(
    roles: &[Role],
    options: &TemplateOptions,
    platform: PlatformOptions,
) -> Result<Template, String> {
    let mut unique: Vec<Role> = Vec::new();
    for r in roles {
        if !unique.contains(r) {
            unique.push(*r);
        }
    }
    let Some((first, rest)) = unique.split_first() else {
        return Err("give at least one --role".into());
    };
    if platform.via_leaf && !unique.contains(&Role::Host) {
        return Err("--via-leaf is for hosts behind a leaf node: add --role host".into());
    }
    if platform.operator.is_some() && !unique.contains(&Role::Operator) {
        return Err("--operator names the operator's stream for --role operator: add it".into());
    }
    let mut combined = template_for(*first, options, platform)?;
    for role in rest {
        let t = template_for(*role, options, platform)?;
        let p = &mut combined.permissions;
        for (mine, theirs) in [
            (&mut p.publish.allow, t.permissions.publish.allow),
            (&mut p.publish.deny, t.permissions.publish.deny),
            (&mut p.subscribe.allow, t.permissions.subscribe.allow),
            (&mut p.subscribe.deny, t.permissions.subscribe.deny),
        ] {
            for s in theirs {
                Rules::push(mine, s);
            }
        }
        p.allow_responses |= t.permissions.allow_responses;
        if combined.options.lattices.is_empty() {
            combined.options.lattices = t.options.lattices;
        }
        combined.also.push(*role);
    }
    Ok(combined)
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
        for r in &self.also {
            line.push_str(&format!(" --role {}", r.as_str()));
        }
        for l in &self.options.lattices {
            line.push_str(&format!(" --lattice {l}"));
        }
        if let Some(d) = &self.options.js_domain {
            line.push_str(&format!(" --js-domain {d}"));
        }
        if let Some(p) = &self.inbox_prefix {
            line.push_str(&format!(" --inbox-prefix {p}"));
        }
        if self.platform.via_leaf {
            line.push_str(" --via-leaf");
        }
        if let Some(v) = self.platform.operator {
            line.push_str(&format!(" --operator {}", v.as_str()));
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
        let mut out = format!("# {}\n", self.command_line(Format::Conf));
        out.push_str(&self.permissions.to_conf());
        out.push_str("# end wasmcloud-provisioner permissions\n");
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
        let leaf = if self.platform.via_leaf { "-leaf" } else { "" };
        match (self.role, self.options.lattices.as_slice()) {
            _ if !self.also.is_empty() => format!("wasmcloud-{}", self.roles_joined()),
            (Role::Host, [lattice]) => format!("wasmcloud-host{leaf}-{lattice}"),
            (Role::Host, _) => format!("wasmcloud-host{leaf}"),
            (Role::Wadm, _) => "wadm".to_string(),
            (Role::Provisioner, _) => "wasmcloud-provisioner".to_string(),
            (Role::Operator, _) => "wasmcloud-operator".to_string(),
            (Role::Backup, _) => "wasmcloud-provisioner-backup".to_string(),
        }
    }

    /// `host-operator` for a user of several roles.
    fn roles_joined(&self) -> String {
        std::iter::once(self.role)
            .chain(self.also.iter().copied())
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join("-")
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
            // Its endpoints, and at shutdown the witness over the whole prefix.
            "wasmcloud.provision.>",
            "$SRV.PING",
            "$SRV.INFO",
            "$SRV.STATS",
            "$SRV.*.wasmcloud-provisioner",
            "$SRV.*.wasmcloud-provisioner.*",
            "_INBOX.>",
            "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
            "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
        ] {
            assert!(sub.contains(s), "{s}");
        }
        // Subscribe only where it must: not other services' discovery subjects.
        assert_eq!(sub.len(), 9, "{sub:?}");

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
                Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => 1,
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

    /// With an inbox prefix the provisioner subscribes to its own replies only; hosts and
    /// wadm are unchanged; bad prefixes are refused.
    #[test]
    fn the_provisioner_can_have_its_own_inbox() {
        let t = template(Role::Provisioner, &TemplateOptions::default())
            .unwrap()
            .with_inbox_prefix(Some("_INBOX_prov"))
            .unwrap();
        let sub = set(&t.permissions.subscribe.allow);
        assert!(sub.contains("_INBOX_prov.>"), "{sub:?}");
        assert!(!sub.contains("_INBOX.>"), "{sub:?}");
        assert!(t
            .command_line(Format::Conf)
            .contains("--inbox-prefix _INBOX_prov"));
        let host = template(Role::Host, &lattice("a")).unwrap();
        assert_eq!(
            host.clone().with_inbox_prefix(Some("_INBOX_prov")).unwrap(),
            host
        );
        for bad in [
            "",
            "wasmbus",
            "INBOX",
            "_INBOX_a.*",
            "_INBOX_a..b",
            "_R_",
            "_GR_.x",
            "_a b",
        ] {
            assert!(validate_inbox_prefix(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_inbox_prefix("_INBOX_a.b.").unwrap(), "_INBOX_a.b");
    }

    /// `shared/spec/backup.md`, "Permissions involved": snapshot subjects per stream
    /// backed up, nothing that changes or restores a stream.
    #[test]
    fn backup_template_is_the_snapshot_subjects_only() {
        let t = template(Role::Backup, &lattice("default")).unwrap();
        let p = &t.permissions;
        let mut want: BTreeSet<String> = BTreeSet::new();
        for row in CATALOG
            .iter()
            .filter(|r| r.backup != catalog::Backup::Never)
        {
            let s = row.stream_for("default");
            want.insert(format!("$JS.API.STREAM.INFO.{s}"));
            want.insert(format!("$JS.API.STREAM.SNAPSHOT.{s}"));
            want.insert(format!("$JS.SNAPSHOT.ACK.{s}.>"));
        }
        want.insert("wasmcloud.provision.events.backed_up".to_string());
        assert_eq!(
            set(&p.publish.allow),
            want.iter().map(String::as_str).collect()
        );
        assert_eq!(set(&p.subscribe.allow), ["_INBOX.>"].into_iter().collect());
        let deny = set(&p.publish.deny);
        for s in SPEC_APP_DENY {
            assert!(deny.contains(s), "{s}");
        }
        assert!(deny.contains("$JS.API.STREAM.RESTORE.>"));
        assert!(deny.contains("$JS.SNAPSHOT.RESTORE.>"));
        assert!(!p.allow_responses);
        assert_eq!(t.user_name(), "wasmcloud-provisioner-backup");
        // Restore stays with an admin: the provisioner's own template cannot restore.
        let provisioner = template(Role::Provisioner, &TemplateOptions::default()).unwrap();
        assert!(!provisioner
            .permissions
            .publish
            .allow
            .iter()
            .any(|s| s.contains("RESTORE")));
        // With a domain, the API forms are listed twice; the acks are not API subjects.
        let d = template(
            Role::Backup,
            &TemplateOptions {
                lattices: vec!["default".into()],
                js_domain: Some("hub".into()),
            },
        )
        .unwrap();
        assert!(d
            .permissions
            .publish
            .allow
            .contains(&"$JS.hub.API.STREAM.SNAPSHOT.KV_CONFIGDATA_default".to_string()));
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

    fn leaf(domain: &str) -> (TemplateOptions, PlatformOptions) {
        (
            TemplateOptions {
                lattices: vec!["default".into()],
                js_domain: Some(domain.into()),
            },
            PlatformOptions {
                via_leaf: true,
                operator: None,
            },
        )
    }

    /// `shared/spec/permissions.md`, "Hosts behind a leaf node", for lattice `default` and
    /// hub domain `default`, entry by entry; the template adds only the bootstrap request.
    #[test]
    fn host_via_leaf_is_the_proven_list() {
        let (options, platform) = leaf("default");
        let t = template_for(Role::Host, &options, platform).unwrap();
        let mut want: BTreeSet<String> = BTreeSet::new();
        for b in ["LATTICEDATA_default", "CONFIGDATA_default"] {
            want.insert(format!("$JS.default.API.STREAM.INFO.KV_{b}"));
            want.insert(format!("$JS.default.API.CONSUMER.CREATE.KV_{b}"));
            want.insert(format!("$JS.default.API.DIRECT.GET.KV_{b}.>"));
            want.insert(format!("$JS.default.API.$KV.{b}.>"));
            want.insert(format!("$JS.FC.KV_{b}.>"));
        }
        for s in [
            "wasmbus.evt.default.>",
            "wasmbus.rpc.default.>",
            "default.>",
            "_INBOX.>",
            "wasmcloud.provision.host.default",
        ] {
            want.insert(s.to_string());
        }
        let p = &t.permissions;
        assert_eq!(
            set(&p.publish.allow),
            want.iter().map(String::as_str).collect()
        );
        assert_eq!(
            set(&p.subscribe.allow),
            ["_INBOX.>", "wasmbus.ctl.v1.default.>", "default.>"]
                .into_iter()
                .collect()
        );
        let deny: BTreeSet<String> = SPEC_APP_DENY
            .iter()
            .map(|d| d.replace("$JS.API.", "$JS.default.API."))
            .collect();
        assert_eq!(
            set(&p.publish.deny),
            deny.iter().map(String::as_str).collect()
        );
        // No effect through a leaf; the replies are plain publishes above.
        assert!(!p.allow_responses);
        assert_eq!(t.user_name(), "wasmcloud-host-leaf-default");
        assert!(t
            .command_line(Format::Json)
            .ends_with("--lattice default --js-domain default --via-leaf --format json"));
        // Without the hub's domain there is nothing to name.
        let no_domain = TemplateOptions {
            js_domain: None,
            ..options
        };
        assert!(template_for(Role::Host, &no_domain, platform)
            .unwrap_err()
            .contains("--js-domain"));
    }

    fn operator(v: Operator, lattices: &[&str]) -> Result<Template, String> {
        template_for(
            Role::Operator,
            &TemplateOptions {
                lattices: lattices.iter().map(|l| l.to_string()).collect(),
                // Ignored: the operator connects without a domain.
                js_domain: Some("default".into()),
            },
            PlatformOptions {
                via_leaf: false,
                operator: Some(v),
            },
        )
    }

    /// `shared/spec/permissions.md` has no operator list; this is `resources.md` §6 (what
    /// wasmcloud-operator 0.4.2 sends, async-nats 0.33's subjects) for two lattices.
    #[test]
    fn operator_template_names_its_stream_consumers_and_wadm_calls() {
        let t = operator(Operator::V0_4, &["a", "b"]).unwrap();
        let s = "wasmcloud_operator_events";
        let mut want: BTreeSet<String> = BTreeSet::new();
        want.insert(format!("$JS.API.STREAM.INFO.{s}"));
        for l in ["a", "b"] {
            let c = format!("wasmcloud_operator_service-{l}");
            want.insert(format!("$JS.API.CONSUMER.INFO.{s}.{c}"));
            want.insert(format!("$JS.API.CONSUMER.CREATE.{s}.{c}.>"));
            want.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{c}"));
            want.insert(format!("$JS.ACK.{s}.{c}.>"));
            for op in ["list", "get.*", "status.*", "put", "deploy.*", "del.*"] {
                want.insert(format!("wadm.api.{l}.model.{op}"));
            }
            want.insert(format!("wasmcloud.provision.lattice.{l}"));
        }
        want.insert("wasmcloud.provision.wadm".into());
        let p = &t.permissions;
        assert_eq!(
            set(&p.publish.allow),
            want.iter().map(String::as_str).collect()
        );
        assert_eq!(set(&p.subscribe.allow), BTreeSet::from(["_INBOX.>"]));
        assert_eq!(
            set(&p.publish.deny),
            SPEC_APP_DENY.iter().copied().collect()
        );
        assert!(!p.allow_responses);

        let v5 = operator(Operator::V0_5, &[]).unwrap();
        let allow = set(&v5.permissions.publish.allow);
        assert!(allow.contains("$JS.API.STREAM.INFO.wadm_operator_events"));
        assert!(allow.contains(
            "$JS.API.CONSUMER.CREATE.wadm_operator_events.wadm_operator_service-default.>"
        ));
        assert!(!allow.iter().any(|s| s.contains("wasmcloud_operator")));
        assert!(template_for(
            Role::Operator,
            &TemplateOptions::default(),
            PlatformOptions::default()
        )
        .unwrap_err()
        .contains("--operator 0.4"));
    }

    /// The platform chart's one secret for the operator and the hosts' leaf links.
    #[test]
    fn union_holds_every_entry_of_each_role() {
        let (options, mut platform) = leaf("default");
        platform.operator = Some(Operator::V0_4);
        let host = template_for(Role::Host, &options, platform).unwrap();
        let op = template_for(Role::Operator, &options, platform).unwrap();
        let both = template_union(
            &[Role::Host, Role::Operator, Role::Host],
            &options,
            platform,
        )
        .unwrap();
        for (mine, parts) in [
            (
                &both.permissions.publish.allow,
                [
                    &host.permissions.publish.allow,
                    &op.permissions.publish.allow,
                ],
            ),
            (
                &both.permissions.publish.deny,
                [&host.permissions.publish.deny, &op.permissions.publish.deny],
            ),
            (
                &both.permissions.subscribe.allow,
                [
                    &host.permissions.subscribe.allow,
                    &op.permissions.subscribe.allow,
                ],
            ),
        ] {
            let want: BTreeSet<&str> = parts.iter().flat_map(|l| set(l)).collect();
            assert_eq!(set(mine), want);
            assert_eq!(mine.len(), want.len(), "no duplicates");
        }
        assert!(!both.permissions.allow_responses);
        assert_eq!(both.also, vec![Role::Operator]);
        assert_eq!(both.user_name(), "wasmcloud-host-operator");
        assert!(both.command_line(Format::Conf).starts_with(
            "wasmcloud-provisioner permissions --role host --role operator --lattice default"
        ));
        assert!(template_union(&[], &options, platform).is_err());
        assert!(
            template_union(&[Role::Wadm, Role::Operator], &options, platform)
                .unwrap_err()
                .contains("--role host")
        );
        assert!(template_union(&[Role::Host], &options, platform)
            .unwrap_err()
            .contains("--role operator"));
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
