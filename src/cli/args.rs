//! The arguments of the commands whose bodies live in this module.

use crate::catalog::Operator;
use crate::permissions::{Format, PlatformOptions, Role};

#[derive(clap::Args)]
pub struct CredsArgs {
    /// Whose permissions the user gets (repeatable: one user for several roles)
    #[arg(long, value_enum, required = true)]
    pub role: Vec<Role>,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Lattice (repeatable; host: the lattices it joins [default: default])
    #[arg(long = "lattice", short = 'l')]
    pub lattices: Vec<String>,
    /// File with the seed (SA…) of the account, or of one of its signing keys
    #[arg(long)]
    pub account_seed: std::path::PathBuf,
    /// The account's public key (A…), when --account-seed is a signing key
    #[arg(long)]
    pub account: Option<String>,
    /// How long the JWT is valid, e.g. 90d, 12h, 2w, 1y [default: no expiry]
    #[arg(long)]
    pub expiry: Option<String>,
    /// User name in the JWT [default: wasmcloud-host-<lattice>, wadm, …]
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write the .creds file (created readable by its owner only)
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct PermissionsArgs {
    /// Whose permissions (repeatable: one user for several roles, e.g. `--role host --role
    /// operator --via-leaf` for the wasmcloud-platform chart's shared leaf/operator user)
    #[arg(long, value_enum, required = true)]
    pub role: Vec<Role>,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Lattice (repeatable). Host: the lattices it joins [default: default]. Provisioner:
    /// name these lattices' streams exactly instead of any stream. Backup: the lattices
    /// whose buckets it backs up (wadm's are always included). Ignored for wadm.
    #[arg(long = "lattice", short = 'l')]
    pub lattices: Vec<String>,
    /// `conf`: a `permissions` block for a nats-server user; `json`: the same as JSON;
    /// `nsc`: `nsc add user` / `nsc edit user` command lines (operator mode)
    #[arg(long, value_enum, default_value = "conf")]
    pub format: Format,
    /// Provisioner: also print the account blocks (export, imports) and the provisioner's
    /// user in each of these tenant accounts (repeatable; see "Tenants in separate
    /// accounts")
    #[arg(long = "tenant-account")]
    pub tenant_accounts: Vec<String>,
    /// The provisioner's own account, for --tenant-account
    #[arg(long, default_value = "PROV")]
    pub provisioner_account: String,
    /// With --tenant-account: also wasmCloud's multitenant blocks for a `wadm
    /// --multitenant` in this account (the tenants export their hosts' events and control
    /// interface to it, it exports its API to them; it imports the provisioner's service)
    #[arg(long, requires = "tenant_accounts")]
    pub wadm_account: Option<String>,
}

/// Where the parties run in the wasmCloud platform (Kubernetes).
#[derive(clap::Args)]
pub struct PlatformArgs {
    /// Host: the template is for the user of the leaf connection that carries the host's
    /// traffic to the hub (the operator's leaf sidecar); needs --js-domain <hub's domain>
    #[arg(long)]
    pub via_leaf: bool,
    /// Operator role: its stream's name (0.4: wasmcloud-operator 0.4.x and 0.5.0; 0.5:
    /// wadm-operator, from 0.5.1)
    #[arg(long, value_enum)]
    pub operator: Option<Operator>,
}

impl PlatformArgs {
    pub fn options(&self) -> PlatformOptions {
        PlatformOptions {
            via_leaf: self.via_leaf,
            operator: self.operator,
        }
    }
}

#[derive(clap::Args)]
pub struct TargetArgs {
    /// Lattice to provision (repeatable)
    #[arg(long = "lattice", short = 'l')]
    pub lattices: Vec<String>,
    /// Also wadm's buckets and streams
    #[arg(long)]
    pub wadm: bool,
    /// wadm runs with --multitenant
    #[arg(long, requires = "wadm")]
    pub multitenant: bool,
    /// With --wadm: also the Kubernetes operator's stream of this version (0.4:
    /// wasmcloud_operator_events; 0.5: wadm_operator_events), after wadm_events
    #[arg(long, value_enum, requires = "wadm")]
    pub operator: Option<Operator>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a JetStream API answer
    #[arg(long, default_value_t = 5)]
    pub js_timeout: u64,
}
