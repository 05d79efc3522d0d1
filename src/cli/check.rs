//! `config check <file>`: the file validated, and the effective settings printed.

use std::fmt::Write;

use serde_json::{json, Value};

use super::EXIT_OK;
use crate::config::{self, AccountConfig, ConnectArgs, Resolved};
use crate::config_error::ConfigError;
use crate::host_auth::{HostAuth, HostAuthArgs};
use crate::policy::{LatticePolicy, LatticePolicyArgs};
use crate::report;
use crate::server_url;

/// `config check <file>`: validates the file and prints the effective settings.
pub fn config_check(
    connect: &ConnectArgs,
    settings: &config::SettingsArgs,
    lattice_flags: &LatticePolicyArgs,
    file: std::path::PathBuf,
    json: bool,
) -> Result<u8, ConfigError> {
    let connect = ConnectArgs {
        config: Some(file.clone()),
        ..connect.clone()
    };
    let resolved = config::resolve(&connect, settings)?;
    let lattices = resolved.lattice_policy(lattice_flags);
    let policy = LatticePolicy::from_args(&lattices)?;
    let hosts = HostAuth::from_args(&HostAuthArgs::default().or_file(&resolved.file_hosts))
        .map_err(|e| ConfigError::from(e).within(format!("{}: [hosts]", file.display())))?;
    let missing = resolved.missing_files();
    if !missing.is_empty() {
        return Err(ConfigError::File(missing.join("; ")).within(file.display()));
    }
    // `[accounts.*]` (issue 12): checked here so that a mistake fails before `serve`.
    let accounts =
        AccountConfig::check_all(&resolved, &policy).map_err(|e| e.within(file.display()))?;
    let checked = Checked {
        file,
        resolved,
        lattices,
        policy,
        hosts,
        accounts,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checked.to_json()).unwrap_or_default()
        );
    } else {
        print!("{}", checked.to_text());
    }
    Ok(EXIT_OK)
}

/// What `config check` found valid, for printing.
struct Checked {
    file: std::path::PathBuf,
    resolved: Resolved,
    lattices: LatticePolicyArgs,
    policy: LatticePolicy,
    hosts: HostAuth,
    accounts: Vec<Value>,
}

impl Checked {
    fn to_json(&self) -> Value {
        let (resolved, hosts) = (&self.resolved, &self.hosts);
        json!({
            "file": self.file,
            "valid": true,
            "accounts": self.accounts,
            "connection": resolved.describe_connection(),
            "lattices": {
                "allow": self.lattices.allow_lattice,
                "max": self.lattices.max_lattices,
                "reserved": self.policy.reserved(),
            },
            "max_request_replicas": resolved.settings.max_request_replicas,
            "hosts": {
                "require_signed": hosts.require_signed,
                "trusted_keys": hosts.trusted.as_ref().map(|t| t.len()),
                "keys_bound_to_lattices": hosts.lattices.len(),
                "signature_max_age": hosts.max_age.as_secs(),
            },
            "resources": resolved.effective_resources(),
        })
    }

    fn to_text(&self) -> String {
        let mut out = format!(
            "{} is valid. Effective settings (flags > environment > file > context):\n",
            self.file.display()
        );
        for (name, value) in self.settings() {
            let _ = writeln!(out, "  {:<14}{value}", format!("{name}:"));
        }
        out.push('\n');
        let rows: Vec<[String; 5]> = self
            .resolved
            .effective_resources()
            .iter()
            .map(|r| {
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                };
                [
                    text(&r["key"]),
                    text(&r["replicas"]),
                    text(&r["storage"]),
                    text(&r["max_bytes"]),
                    text(&r["placement"]),
                ]
            })
            .collect();
        let headers = ["RESOURCE", "REPLICAS", "STORAGE", "MAX_BYTES", "PLACEMENT"];
        for line in report::columns(headers, &rows) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The effective settings, one `(name, value)` per line of the text output.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let (resolved, lattices) = (&self.resolved, &self.lattices);
        let mut lines = vec![("servers", server_url::redact(&resolved.servers))];
        if let Some((name, path)) = &resolved.context {
            lines.push(("context", format!("{name} ({})", path.display())));
        }
        lines.push(("auth", resolved.auth.describe()));
        if resolved.tls.is_set() {
            let c = resolved.describe_connection();
            lines.push(("tls", c["tls"].to_string()));
        }
        let js_domain = resolved.js_domain.as_deref().unwrap_or("(none)");
        lines.push(("js_domain", js_domain.to_string()));
        let allow = if lattices.allow_lattice.is_empty() {
            "all".to_string()
        } else {
            lattices.allow_lattice.join(", ")
        };
        let max = lattices
            .max_lattices
            .map(|m| m.to_string())
            .unwrap_or_else(|| "unlimited".into());
        lines.push(("lattices", format!("{allow} (at most {max})")));
        let requests = match resolved.settings.max_request_replicas {
            Some(m) => format!("may raise replicas up to {m}"),
            None => "may not raise replicas (the settings below are a floor)".into(),
        };
        lines.push(("requests", requests));
        lines.push(("hosts", self.hosts_line()));
        if !self.policy.reserved().is_empty() {
            let reserved = self.policy.reserved().join(", ");
            lines.push((
                "reserved",
                format!("{reserved} (besides the built-in reserved names)"),
            ));
        }
        for account in &self.accounts {
            let summary = account["summary"].as_str().unwrap_or_default();
            lines.push(("account", summary.to_string()));
        }
        lines
    }

    fn hosts_line(&self) -> String {
        let hosts = &self.hosts;
        match (
            hosts.require_signed,
            hosts.trusted.as_ref().map(|t| t.len()),
        ) {
            (_, Some(n)) => format!(
                "signed, {n} trusted key(s) ({} bound to lattices), max age {} s",
                hosts.lattices.len(),
                hosts.max_age.as_secs()
            ),
            (true, None) => format!("signed, any key, max age {} s", hosts.max_age.as_secs()),
            (false, None) => "unsigned requests accepted".to_string(),
        }
    }
}
