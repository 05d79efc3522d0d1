//! The one place subjects are collected into a template: per catalog row and access, per
//! app, and for the provisioner's and a backup job's own needs.

use super::{audit_events_subject, Permissions, Rules};
use crate::catalog::{self, Access, App, Operator, Row, Scope, CATALOG};
use crate::config_error::ConfigError;
use crate::subjects;

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
pub(super) const INBOX: &str = "_INBOX.>";

/// The Services API (ADR-32) discovery prefix and verbs the service answers.
const SERVICE_DISCOVERY: &str = "$SRV";
const SERVICE_VERBS: [&str; 3] = ["PING", "INFO", "STATS"];

/// Collects subjects in order, without duplicates, adding domain forms where asked.
pub(super) struct Builder {
    pub(super) permissions: Permissions,
    domain: Option<String>,
    /// Only the `$JS.<domain>.API` forms, and replies as plain publishes: a leaf
    /// connection's user (see [`Builder::via_leaf`]).
    via_leaf: bool,
}

impl Builder {
    pub(super) fn new(domain: Option<String>) -> Self {
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
    pub(super) fn via_leaf(domain: String) -> Self {
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

    pub(super) fn allow_publish(&mut self, subject: String) {
        Rules::push(&mut self.permissions.publish.allow, subject);
    }

    pub(super) fn allow_subscribe(&mut self, subject: String) {
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
    pub(super) fn app(&mut self, app: App, lattices: &[String], operator: Option<Operator>) {
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
    pub(super) fn backup(&mut self, lattices: &[String]) -> Result<(), ConfigError> {
        for l in lattices {
            crate::request::validate_lattice(l).map_err(|e| ConfigError::Invalid(e.message))?;
        }
        for s in crate::catalog::backup_set(lattices, true, true) {
            let stream = &s.stream;
            self.allow_js(&format!("STREAM.INFO.{stream}"));
            self.allow_js(&format!("STREAM.SNAPSHOT.{stream}"));
            self.allow_publish(format!("$JS.SNAPSHOT.ACK.{stream}.>"));
        }
        self.allow_publish(format!("{}.backed_up", subjects::EVENTS_PREFIX));
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

    pub(super) fn provisioner(&mut self, lattices: &[String]) {
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
        self.allow_publish(format!("{}._drain.>", subjects::SUBJECT_PREFIX));
        self.allow_subscribe(format!("{}.>", subjects::SUBJECT_PREFIX));
        for verb in SERVICE_VERBS {
            self.allow_subscribe(format!("{SERVICE_DISCOVERY}.{verb}"));
        }
        let name = subjects::SERVICE_NAME;
        self.allow_subscribe(format!("{SERVICE_DISCOVERY}.*.{name}"));
        self.allow_subscribe(format!("{SERVICE_DISCOVERY}.*.{name}.*"));
        self.allow_subscribe(INBOX.to_string());
        for subject in subjects::STREAM_ADVISORIES {
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
