//! The exports and imports between accounts, as one value rendered three ways (a
//! nats-server config, `nsc` command lines, JSON): the provisioner's service, and
//! wasmCloud's multitenant mode beside it (issue 12).
//!
//! One model, because a server config cannot name an account twice: the provisioner's
//! import and wasmCloud's exports of a tenant account must land in the same block.
//!
//! wasmCloud's multitenant mode (wadm 0.21 `--multitenant`, read from its source:
//! `DEFAULT_MULTITENANT_EVENTS_TOPIC`, `topic_prefix` in connections.rs, the API server's
//! `*.{prefix}` subscription) runs one wadm in an account of its own:
//! - it listens to `*.wasmbus.evt.*.>`, the first token naming the tenant account the
//!   event came from: each tenant exports its hosts' events (a stream), and wadm's
//!   account imports them under that account's name;
//! - it sends its commands to `<account>.wasmbus.ctl.…`: each tenant exports
//!   `wasmbus.ctl.>` as a service, imported by wadm's account under the same prefix;
//! - it answers its API on `*.wadm.api.>`: wadm's account exports that service with the
//!   account token in position 1, so a tenant can import only its own `<account>.wadm.api.>`
//!   (the server refuses an import of another account's token), as `wadm.api.>`.
//!
//! The account's name is the token in a static config; in operator mode it is the
//! account's public key (what the server uses as the account's name there).

use serde::Serialize;

use crate::subjects::SUBJECT_PREFIX;

/// What a tenant's hosts publish their events on (wasmCloud 1.9's `wasmbus.evt.<lattice>.<type>`).
pub const HOST_EVENTS: &str = "wasmbus.evt.*.>";
/// The control interface the hosts answer on; wadm sends commands there.
pub const HOST_CONTROL: &str = "wasmbus.ctl.>";
/// wadm's API, as a tenant's clients (wash) call it.
pub const WADM_API: &str = "wadm.api.>";

/// The export and imports' name in `nsc`.
const PROVISIONER_EXPORT: &str = "wasmcloud-provisioner";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Requests with replies.
    Service,
    /// Messages one way.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Export {
    pub kind: Kind,
    pub subject: String,
    /// The token (1-based) that must be the importing account's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_token_position: Option<u8>,
    /// `nsc`'s name for it.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub kind: Kind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// The subject in the importing account.
    pub to: String,
    pub name: String,
    /// `subject`'s first token is the importing account's name (wadm's API prefix).
    #[serde(skip)]
    pub subject_names_importer: bool,
    /// `to`'s first token is the exporting account's name (a tenant's events and control
    /// as wadm sees them).
    #[serde(skip)]
    pub to_names_exporter: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub exports: Vec<Export>,
    pub imports: Vec<Import>,
}

/// Every account's exports and imports, in the order the accounts were first named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Wiring {
    pub accounts: Vec<Account>,
}

impl Wiring {
    fn account(&mut self, name: &str) -> &mut Account {
        let at = match self.accounts.iter().position(|a| a.name == name) {
            Some(at) => at,
            None => {
                self.accounts.push(Account {
                    name: name.to_string(),
                    ..Account::default()
                });
                self.accounts.len() - 1
            }
        };
        &mut self.accounts[at]
    }

    /// The provisioner's account exports its service; each tenant imports it unchanged.
    pub fn provisioner(&mut self, provisioner: &str, tenants: &[String]) {
        let subject = format!("{SUBJECT_PREFIX}.>");
        self.account(provisioner).exports.push(Export {
            kind: Kind::Service,
            subject: subject.clone(),
            account_token_position: None,
            name: PROVISIONER_EXPORT.into(),
        });
        for tenant in tenants {
            self.account(tenant).imports.push(Import {
                kind: Kind::Service,
                account: provisioner.to_string(),
                subject: subject.clone(),
                to: subject.clone(),
                name: PROVISIONER_EXPORT.into(),
                subject_names_importer: false,
                to_names_exporter: false,
            });
        }
    }

    /// wasmCloud's multitenant mode: `wadm` runs in its own account and serves every
    /// tenant's hosts (module docs).
    pub fn wadm_multitenant(&mut self, wadm: &str, tenants: &[String]) {
        self.account(wadm).exports.push(Export {
            kind: Kind::Service,
            subject: format!("*.{WADM_API}"),
            account_token_position: Some(1),
            name: "wadm-api".into(),
        });
        for tenant in tenants {
            let exports = &mut self.account(tenant).exports;
            exports.push(Export {
                kind: Kind::Stream,
                subject: HOST_EVENTS.into(),
                account_token_position: None,
                name: "wasmbus-events".into(),
            });
            exports.push(Export {
                kind: Kind::Service,
                subject: HOST_CONTROL.into(),
                account_token_position: None,
                name: "wasmbus-control".into(),
            });
            self.account(tenant).imports.push(Import {
                kind: Kind::Service,
                account: wadm.to_string(),
                subject: format!("{tenant}.{WADM_API}"),
                to: WADM_API.into(),
                name: "wadm-api".into(),
                subject_names_importer: true,
                to_names_exporter: false,
            });
            let imports = &mut self.account(wadm).imports;
            for (kind, subject, name) in [
                (Kind::Stream, HOST_EVENTS, "wasmbus-events"),
                (Kind::Service, HOST_CONTROL, "wasmbus-control"),
            ] {
                imports.push(Import {
                    kind,
                    account: tenant.clone(),
                    subject: subject.into(),
                    to: format!("{tenant}.{subject}"),
                    name: format!("{name}-{tenant}"),
                    subject_names_importer: false,
                    to_names_exporter: true,
                });
            }
        }
    }

    /// An `accounts { … }` block for a nats-server config (users, JetStream and limits
    /// are the operator's to merge in).
    pub fn conf(&self) -> String {
        let mut out = String::from("accounts {\n");
        for account in &self.accounts {
            out.push_str(&format!("  {}: {{\n", account.name));
            if !account.exports.is_empty() {
                out.push_str("    exports: [\n");
                for e in &account.exports {
                    let position = e
                        .account_token_position
                        .map(|p| format!(", account_token_position: {p}"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "      {{{}: {}{position}}}\n",
                        kind_word(e.kind),
                        quote(&e.subject)
                    ));
                }
                out.push_str("    ]\n");
            }
            if !account.imports.is_empty() {
                out.push_str("    imports: [\n");
                for i in &account.imports {
                    let to = if i.to == i.subject {
                        String::new()
                    } else {
                        format!(", to: {}", quote(&i.to))
                    };
                    out.push_str(&format!(
                        "      {{{}: {{account: {}, subject: {}}}{to}}}\n",
                        kind_word(i.kind),
                        i.account,
                        quote(&i.subject)
                    ));
                }
                out.push_str("    ]\n");
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
        out
    }

    /// `nsc add export` / `nsc add import` lines. In operator mode an account's name in a
    /// subject is its public key, which the lines look up with `nsc describe account`.
    pub fn nsc(&self) -> String {
        let mut out = String::new();
        for account in &self.accounts {
            for e in &account.exports {
                let service = if e.kind == Kind::Service {
                    " --service"
                } else {
                    ""
                };
                let position = e
                    .account_token_position
                    .map(|p| format!(" --account-token-position {p}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "nsc add export --account {}{service} --name {} --subject '{}'{position}\n",
                    account.name, e.name, e.subject
                ));
            }
        }
        for account in &self.accounts {
            for i in &account.imports {
                let service = if i.kind == Kind::Service {
                    " --service"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "nsc add import --account {}{service} --name {} \\\n  \
                     --src-account {} \\\n  --remote-subject {} --local-subject {}\n",
                    account.name,
                    i.name,
                    public_key(&i.account),
                    nsc_subject(&i.subject, i.subject_names_importer),
                    nsc_subject(&i.to, i.to_names_exporter),
                ));
            }
        }
        out
    }
}

/// A subject for a shell line: when its first token is an account's name (`named`, as the
/// model says, never guessed from the text: an account may be called `wadm`), that token
/// becomes the account's public key, looked up by nsc.
fn nsc_subject(subject: &str, named: bool) -> String {
    match subject.split_once('.') {
        Some((account, rest)) if named => format!("{}'.{rest}'", public_key(account)),
        _ => format!("'{subject}'"),
    }
}

/// The shell expression for an account's public key.
fn public_key(account: &str) -> String {
    format!("\"$(nsc describe account {account} --field sub | tr -d '\"')\"")
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "service",
        Kind::Stream => "stream",
    }
}

/// A double-quoted config string (`$…` is not read as a variable inside quotes).
fn quote(subject: &str) -> String {
    serde_json::to_string(subject).unwrap_or_else(|_| format!("\"{subject}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Wiring {
        let tenants = vec!["A".to_string(), "B".to_string()];
        let mut w = Wiring::default();
        let mut provisioner_tenants = tenants.clone();
        provisioner_tenants.push("WADM".into());
        w.provisioner("PROV", &provisioner_tenants);
        w.wadm_multitenant("WADM", &tenants);
        w
    }

    #[test]
    fn each_account_is_one_block_with_all_its_exports_and_imports() {
        let conf = layout().conf();
        for name in ["PROV", "A", "B", "WADM"] {
            assert_eq!(
                conf.matches(&format!("  {name}: {{\n")).count(),
                1,
                "{name}:\n{conf}"
            );
        }
        assert!(conf.contains("{service: \"*.wadm.api.>\", account_token_position: 1}"));
        assert!(conf.contains(
            "{stream: {account: A, subject: \"wasmbus.evt.*.>\"}, to: \"A.wasmbus.evt.*.>\"}"
        ));
        assert!(conf.contains(
            "{service: {account: B, subject: \"wasmbus.ctl.>\"}, to: \"B.wasmbus.ctl.>\"}"
        ));
        assert!(conf
            .contains("{service: {account: WADM, subject: \"A.wadm.api.>\"}, to: \"wadm.api.>\"}"));
        assert!(
            conf.contains("{service: {account: PROV, subject: \"wasmcloud.provision.>\"}}"),
            "{conf}"
        );
    }

    #[test]
    fn nsc_lines_name_public_keys_where_a_subject_names_an_account() {
        let nsc = layout().nsc();
        assert!(nsc.contains(
            "nsc add export --account WADM --service --name wadm-api --subject '*.wadm.api.>' \
             --account-token-position 1\n"
        ));
        assert!(nsc.contains(
            "--remote-subject \"$(nsc describe account A --field sub | tr -d '\"')\"'.wadm.api.>' \
             --local-subject 'wadm.api.>'"
        ));
        assert!(nsc.contains(
            "nsc add export --account A --name wasmbus-events --subject 'wasmbus.evt.*.>'\n"
        ));
    }

    /// An account may be called like a subject's first token: only the tokens the model
    /// marks as account names become public keys.
    #[test]
    fn an_account_named_like_a_subject_token_is_not_substituted() {
        let mut w = Wiring::default();
        w.provisioner("wasmcloud", &["A".into(), "wadm".into()]);
        w.wadm_multitenant("wadm", &["A".into()]);
        let nsc = w.nsc();
        assert!(
            nsc.contains("--local-subject 'wadm.api.>'"),
            "wadm's API in the tenant keeps its name:\n{nsc}"
        );
        assert!(
            nsc.contains(
                "--remote-subject 'wasmcloud.provision.>' --local-subject 'wasmcloud.provision.>'"
            ),
            "{nsc}"
        );
        assert!(nsc.contains(
            "--remote-subject 'wasmbus.evt.*.>' --local-subject \"$(nsc describe account A \
             --field sub | tr -d '\"')\"'.wasmbus.evt.*.>'"
        ));
    }
}
