//! How a template is printed: a nats-server `permissions` block, JSON, or `nsc` lines.

use super::{Role, Template};

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
