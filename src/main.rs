//! `wasmcloud-provisioner`: a thin command line over the library. See `lib.rs` for the
//! architecture and the README for operator documentation.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use wasmcloud_provisioner::audit::{self, AuditPublisher, Instance, Origin};
use wasmcloud_provisioner::bootstrap::{self, BootstrapCommand};
use wasmcloud_provisioner::catalog::Operator;
use wasmcloud_provisioner::config::{self, ConnectArgs, Resolved, SettingsArgs};
use wasmcloud_provisioner::creds::{self, AccountSigner};
use wasmcloud_provisioner::jsapi::JetStreamApi;
use wasmcloud_provisioner::permissions::{self, Format, PlatformOptions, Role, TemplateOptions};
use wasmcloud_provisioner::ping::{self, PingArgs};
use wasmcloud_provisioner::policy::{HostAuth, HostAuthArgs, LatticePolicy, LatticePolicyArgs};
use wasmcloud_provisioner::provisioner::{Provisioner, Target};
use wasmcloud_provisioner::reconcile::{Action, Reconciler, ResourceReport};
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::{backup, report, request};

/// Exit code: success, nothing (more) to do.
const EXIT_OK: u8 = 0;
/// Exit code: an error (connection, JetStream, bad arguments).
const EXIT_ERROR: u8 = 1;
/// Exit code of `plan`: something would be created or updated.
const EXIT_CHANGES: u8 = 2;
/// Exit code: a resource exists but would break host or wadm (left untouched).
const EXIT_DRIFT: u8 = 3;

#[derive(Parser)]
#[command(
    name = "wasmcloud-provisioner",
    version,
    about = "Creates the JetStream buckets and streams that wasmCloud hosts and wadm need, so \
             they can run with least privilege",
    after_help = "Connection: flags, then environment, then --config, then the NATS context \
                  (--context, or the one `nats context select` chose).\n\
                  Exit codes: 0 ok; 1 error (connection, JetStream, invalid arguments or \
                  config); 2 `plan` found something to create or update; 3 drift found (left \
                  untouched).\n\
                  Examples:\n  \
                  wasmcloud-provisioner serve --context prod --replicas 3\n  \
                  wasmcloud-provisioner apply --lattice default --wadm\n  \
                  wasmcloud-provisioner plan --lattice default --json\n  \
                  wasmcloud-provisioner permissions --role host --lattice default --format nsc\n  \
                  wasmcloud-provisioner creds --role host --lattice default --account-seed \
                  account.nk --out host.creds\n  \
                  wasmcloud-provisioner config check examples/provisioner.toml"
)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    lattice_policy: LatticePolicyArgs,
    /// Log format on stderr (RUST_LOG sets the level, default info)
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the micro service on wasmcloud.provision.> until SIGINT/SIGTERM.
    ///
    /// Example: wasmcloud-provisioner serve --server nats://127.0.0.1:4222 --replicas 3
    Serve {
        /// Seconds a seen resource is trusted without a JetStream call
        #[arg(long, default_value_t = 30)]
        cache_ttl: u64,
        /// Longest wait in seconds for in-flight requests at shutdown
        #[arg(long, default_value_t = 30)]
        drain_timeout: u64,
        /// Seconds to wait for a JetStream API answer
        #[arg(long, default_value_t = 5)]
        js_timeout: u64,
        #[command(flatten)]
        host_auth: HostAuthArgs,
        /// Write this instance's id here once it serves, for `ping --self-file` (removed
        /// at shutdown)
        #[arg(long, env = "WASMCLOUD_PROVISIONER_ID_FILE")]
        id_file: Option<std::path::PathBuf>,
        /// Every wadm request (and status report of wadm) also covers the Kubernetes
        /// operator's stream of this version, unless the request names one
        #[arg(long, value_enum, env = "WASMCLOUD_PROVISIONER_OPERATOR")]
        operator: Option<Operator>,
        /// Seconds a tenant account's connection stays open without a request
        /// (`[accounts.*]`, see "Tenants in separate accounts")
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        account_idle_timeout: u64,
    },
    /// Ensure the resources once and exit (for CI pipelines that pre-create).
    ///
    /// Example: wasmcloud-provisioner apply --lattice default --lattice prod --wadm
    Apply(TargetArgs),
    /// Print what `apply` would do and change nothing. Exits 0 when nothing would change,
    /// 2 when something would, 3 on drift, 1 on error.
    ///
    /// Example: wasmcloud-provisioner plan --lattice default --wadm --json
    Plan(TargetArgs),
    /// Print the least-privilege NATS permissions of a host, wadm, this service or a backup
    /// job, derived
    /// from the resource catalog (`--js-domain` adds the `$JS.<domain>.API` forms).
    ///
    /// Example: wasmcloud-provisioner permissions --role host --lattice default --format conf
    Permissions(PermissionsArgs),
    /// Mint a user for operator mode: a new user nkey and a user JWT carrying exactly the
    /// role's permissions, signed by the account (or one of its signing keys), written as a
    /// `.creds` file that async-nats, natscli and the wasmCloud host accept.
    ///
    /// Example: wasmcloud-provisioner creds --role host --lattice default --account-seed
    /// account.nk --expiry 90d --out host.creds
    Creds(CredsArgs),
    /// Send a host's, wadm's or the operator's request and wait for the provisioner:
    /// retries (with backoff) while NATS or the service is not up yet, JetStream is
    /// unavailable (5xx) or a request times out; exits 0 once everything exists, 1 on a 4xx
    /// at once or when --timeout passes. For init containers and ExecStartPre.
    ///
    /// Example: wasmcloud-provisioner bootstrap host --lattice default --timeout 120
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Liveness check: exit 0 when the service (with --self-file: this pod's instance)
    /// answers `$SRV.PING` within --timeout, 1 otherwise.
    ///
    /// Example: wasmcloud-provisioner ping --self-file /run/wasmcloud-provisioner/id
    Ping(PingArgs),
    /// Back up the lattices' buckets (and wadm's with --wadm) into a new folder, in
    /// natscli's layout plus a checksummed manifest.
    ///
    /// Example: wasmcloud-provisioner backup --lattice default --wadm --out backups/2026-01-01
    Backup(backup::cli::BackupArgs),
    /// Restore a backup folder; never over an existing stream. `--replicas N` (1, 3, 5)
    /// replaces the backed-up replicas.
    ///
    /// Example: wasmcloud-provisioner restore --from backups/2026-01-01 --dry-run
    Restore(backup::cli::RestoreArgs),
    /// Work with the config file.
    ///
    /// Example: wasmcloud-provisioner config check examples/provisioner.toml
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file and print the effective settings: connection (without
    /// secrets), lattice policy, and what each resource is created with after flags,
    /// environment, file and context are combined. Exits 0 when valid, 1 otherwise.
    ///
    /// Example: wasmcloud-provisioner config check /etc/wasmcloud-provisioner.toml --json
    Check {
        /// The TOML file to check
        file: std::path::PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct CredsArgs {
    /// Whose permissions the user gets (repeatable: one user for several roles)
    #[arg(long, value_enum, required = true)]
    role: Vec<Role>,
    #[command(flatten)]
    platform: PlatformArgs,
    /// Lattice (repeatable; host: the lattices it joins [default: default])
    #[arg(long = "lattice", short = 'l')]
    lattices: Vec<String>,
    /// File with the seed (SA…) of the account, or of one of its signing keys
    #[arg(long)]
    account_seed: std::path::PathBuf,
    /// The account's public key (A…), when --account-seed is a signing key
    #[arg(long)]
    account: Option<String>,
    /// How long the JWT is valid, e.g. 90d, 12h, 2w, 1y [default: no expiry]
    #[arg(long)]
    expiry: Option<String>,
    /// User name in the JWT [default: wasmcloud-host-<lattice>, wadm, …]
    #[arg(long)]
    name: Option<String>,
    /// Where to write the .creds file (created readable by its owner only)
    #[arg(long)]
    out: std::path::PathBuf,
    /// Replace --out if it exists
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
struct PermissionsArgs {
    /// Whose permissions (repeatable: one user for several roles, e.g. `--role host --role
    /// operator --via-leaf` for the wasmcloud-platform chart's shared leaf/operator user)
    #[arg(long, value_enum, required = true)]
    role: Vec<Role>,
    #[command(flatten)]
    platform: PlatformArgs,
    /// Lattice (repeatable). Host: the lattices it joins [default: default]. Provisioner:
    /// name these lattices' streams exactly instead of any stream. Backup: the lattices
    /// whose buckets it backs up (wadm's are always included). Ignored for wadm.
    #[arg(long = "lattice", short = 'l')]
    lattices: Vec<String>,
    /// `conf`: a `permissions` block for a nats-server user; `json`: the same as JSON;
    /// `nsc`: `nsc add user` / `nsc edit user` command lines (operator mode)
    #[arg(long, value_enum, default_value = "conf")]
    format: Format,
    /// Provisioner: also print the account blocks (export, imports) and the provisioner's
    /// user in each of these tenant accounts (repeatable; see "Tenants in separate
    /// accounts")
    #[arg(long = "tenant-account")]
    tenant_accounts: Vec<String>,
    /// The provisioner's own account, for --tenant-account
    #[arg(long, default_value = "PROV")]
    provisioner_account: String,
}

/// Where the parties run in the wasmCloud platform (Kubernetes).
#[derive(clap::Args)]
struct PlatformArgs {
    /// Host: the template is for the user of the leaf connection that carries the host's
    /// traffic to the hub (the operator's leaf sidecar); needs --js-domain <hub's domain>
    #[arg(long)]
    via_leaf: bool,
    /// Operator role: its stream's name (0.4: wasmcloud-operator 0.4.x and 0.5.0; 0.5:
    /// wadm-operator, from 0.5.1)
    #[arg(long, value_enum)]
    operator: Option<Operator>,
}

impl PlatformArgs {
    fn options(&self) -> PlatformOptions {
        PlatformOptions {
            via_leaf: self.via_leaf,
            operator: self.operator,
        }
    }
}

#[derive(clap::Args)]
struct TargetArgs {
    /// Lattice to provision (repeatable)
    #[arg(long = "lattice", short = 'l')]
    lattices: Vec<String>,
    /// Also wadm's buckets and streams
    #[arg(long)]
    wadm: bool,
    /// wadm runs with --multitenant
    #[arg(long, requires = "wadm")]
    multitenant: bool,
    /// With --wadm: also the Kubernetes operator's stream of this version (0.4:
    /// wasmcloud_operator_events; 0.5: wadm_operator_events), after wadm_events
    #[arg(long, value_enum, requires = "wadm")]
    operator: Option<Operator>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Seconds to wait for a JetStream API answer
    #[arg(long, default_value_t = 5)]
    js_timeout: u64,
}

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which `plan` uses for "changes found": map it to 1.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    // The one-shot commands print their own report; logs stay quiet unless asked for.
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal: a log file or collector gets plain text, and the
    // escape codes were a measurable part of formatting each request's span.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // One object per line: the event's fields at the top, the request span's fields
        // (endpoint, subject, lattice, outcome, duration_us) under "span".
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(cli: Cli) -> Result<u8, String> {
    request::compile_schemas()?;
    let command = match cli.command {
        Command::Config(ConfigCommand::Check { file, json }) => {
            return config_check(&cli.connect, &cli.settings, &cli.lattice_policy, file, json)
        }
        other => other,
    };
    let resolved = config::resolve(&cli.connect, &cli.settings)?;
    let policy = LatticePolicy::from_args(&resolved.lattice_policy(&cli.lattice_policy))?;
    match command {
        Command::Serve {
            cache_ttl,
            drain_timeout,
            js_timeout,
            host_auth,
            id_file,
            operator,
            account_idle_timeout,
        } => {
            let guard = Guard {
                policy,
                host_auth: HostAuth::from_args(&host_auth.or_file(&resolved.file_hosts))?,
                id_file,
                operator,
                account_idle: Duration::from_secs(account_idle_timeout),
            };
            serve(resolved, guard, cache_ttl, drain_timeout, js_timeout).await
        }
        Command::Bootstrap(b) => bootstrap::run(&resolved, b).await,
        Command::Ping(p) => ping::run(&resolved, p).await,
        Command::Apply(t) => once(resolved, policy, t, false).await,
        Command::Plan(t) => once(resolved, policy, t, true).await,
        Command::Permissions(p) => print_permissions(&resolved, &policy, p),
        Command::Creds(c) => mint_creds(&resolved, &policy, c),
        Command::Backup(b) => backup::cli::run_backup(&resolved, b).await,
        Command::Restore(r) => backup::cli::run_restore(&resolved, r, cli.settings.replicas).await,
        Command::Config(_) => Err("unreachable: config is handled above".into()),
    }
}

/// The service's access policy: lattices served and host bootstrap authentication; and
/// where it tells `ping --self-file` its id.
struct Guard {
    policy: LatticePolicy,
    host_auth: HostAuth,
    id_file: Option<std::path::PathBuf>,
    operator: Option<Operator>,
    account_idle: Duration,
}

/// Refuses lattice names that are invalid or reserved (built in, or by the operator's
/// `--reserve-lattice-name`), before a template names them or anything connects.
fn check_lattice_names(policy: &LatticePolicy, lattices: &[String]) -> Result<(), String> {
    for l in lattices {
        policy.check_name(l).map_err(|e| e.message)?;
    }
    Ok(())
}

/// `permissions`: prints a role's template.
fn print_permissions(
    resolved: &Resolved,
    policy: &LatticePolicy,
    args: PermissionsArgs,
) -> Result<u8, String> {
    check_lattice_names(policy, &args.lattices)?;
    let options = TemplateOptions {
        lattices: args.lattices,
        js_domain: resolved.js_domain.clone(),
    };
    let template = permissions::template_union(&args.role, &options, args.platform.options())?
        .with_inbox_prefix(resolved.inbox_prefix.as_deref())?;
    print!("{}", template.render(args.format));
    if !args.tenant_accounts.is_empty() {
        // Issue 12: one provisioner serving many accounts.
        print!(
            "{}",
            wasmcloud_provisioner::accounts::stanzas::render(
                &template,
                args.provisioner_account,
                args.tenant_accounts,
                args.format,
            )?
        );
    }
    Ok(EXIT_OK)
}

async fn serve(
    resolved: Resolved,
    guard: Guard,
    cache_ttl: u64,
    drain_timeout: u64,
    js_timeout: u64,
) -> Result<u8, String> {
    let setup = ServiceSetup {
        cache_ttl: Duration::from_secs(cache_ttl),
        js_timeout: Duration::from_secs(js_timeout),
        drain_timeout: Duration::from_secs(drain_timeout),
        policy: guard.policy,
        host_auth: guard.host_auth,
        id_file: guard.id_file,
        operator: guard.operator,
        account_idle: guard.account_idle,
        ..ServiceSetup::new(resolved)
    };
    setup.connect().await?.serve(shutdown_signal()).await?;
    Ok(EXIT_OK)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `apply` and `plan`.
async fn once(
    resolved: Resolved,
    policy: LatticePolicy,
    args: TargetArgs,
    dry_run: bool,
) -> Result<u8, String> {
    let mut targets = Vec::new();
    check_lattice_names(&policy, &args.lattices)?;
    for l in &args.lattices {
        targets.push(Target::Lattice(l.clone()));
    }
    if args.wadm {
        targets.push(Target::Wadm {
            multitenant: args.multitenant,
        });
    }
    if let Some(operator) = args.operator {
        targets.push(Target::Operator(operator));
    }
    if targets.is_empty() {
        return Err("nothing to do: give --lattice <name> (repeatable) and/or --wadm".into());
    }
    let client = config::connect(&resolved, "wasmcloud-provisioner-cli", None).await?;
    let js = JetStreamApi::new(
        client.clone(),
        resolved.js_domain.clone(),
        Duration::from_secs(args.js_timeout),
    );
    // `apply` publishes audit events like the service does.
    let audit = AuditPublisher::start(
        client.clone(),
        Instance::new("wasmcloud-provisioner-cli"),
        resolved.js_domain.clone(),
    );
    let reconciler = Arc::new(Reconciler::uncached(js).with_listener(audit.listener()));
    let provisioner = Provisioner::new(reconciler, resolved.settings.clone()).with_policy(policy);
    let command = if dry_run { "plan" } else { "apply" };
    let result = audit::with_origin(
        Origin::cli(command),
        provisioner.run(&targets, None, dry_run),
    )
    .await;
    audit.close(Duration::from_secs(5)).await;
    let _ = client.flush().await;
    let reports = match result {
        Ok(reports) => reports,
        Err(e) => {
            if args.json {
                println!("{}", e.body());
            }
            return Err(e.message);
        }
    };
    if args.json {
        let body = json!({
            "dry_run": dry_run,
            "js_domain": resolved.js_domain,
            "resources": reports,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        print!("{}", report::table(&reports));
    }
    Ok(exit_code(&reports, dry_run))
}

fn exit_code(reports: &[ResourceReport], dry_run: bool) -> u8 {
    if reports.iter().any(|r| r.action == Action::Drift) {
        eprintln!("drift found: those resources were left untouched; fix them by hand");
        EXIT_DRIFT
    } else if dry_run && reports.iter().any(|r| r.action.is_change()) {
        EXIT_CHANGES
    } else {
        EXIT_OK
    }
}

/// `creds`: mints a user JWT with the role's template and writes a `.creds` file.
fn mint_creds(resolved: &Resolved, policy: &LatticePolicy, args: CredsArgs) -> Result<u8, String> {
    check_lattice_names(policy, &args.lattices)?;
    let options = TemplateOptions {
        lattices: args.lattices,
        js_domain: resolved.js_domain.clone(),
    };
    let template = permissions::template_union(&args.role, &options, args.platform.options())?
        .with_inbox_prefix(resolved.inbox_prefix.as_deref())?;
    let signer = AccountSigner::from_seed_file(&args.account_seed, args.account.as_deref())?;
    let expires_at = match &args.expiry {
        Some(e) => Some(creds::unix_now() + creds::parse_expiry(e)?.as_secs() as i64),
        None => None,
    };
    let name = args.name.unwrap_or_else(|| template.user_name());
    let user = signer.mint_user(&name, &template.permissions, expires_at)?;
    creds::write_creds(
        &args.out,
        &creds::format_creds(&user.jwt, &user.seed),
        args.force,
    )?;
    let expiry = match expires_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }) {
        Some(t) => format!("expires {t}"),
        None => "never expires".to_string(),
    };
    println!(
        "wrote {}: user {name} ({}) of account {}, {expiry}",
        args.out.display(),
        user.public_key,
        signer.account()
    );
    println!(
        "its permissions are the role's template: `{}` prints them",
        template.command_line(Format::Json)
    );
    Ok(EXIT_OK)
}

/// `config check <file>`: validates the file and prints the effective settings.
fn config_check(
    connect: &ConnectArgs,
    settings: &config::SettingsArgs,
    lattice_flags: &LatticePolicyArgs,
    file: std::path::PathBuf,
    json: bool,
) -> Result<u8, String> {
    let connect = ConnectArgs {
        config: Some(file.clone()),
        ..connect.clone()
    };
    let resolved = config::resolve(&connect, settings)?;
    let lattices = resolved.lattice_policy(lattice_flags);
    let policy = LatticePolicy::from_args(&lattices)?;
    let hosts = HostAuth::from_args(&HostAuthArgs::default().or_file(&resolved.file_hosts))
        .map_err(|e| format!("{}: [hosts]: {e}", file.display()))?;
    let trusted = hosts.trusted.as_ref().map(|t| t.len());
    let missing = resolved.missing_files();
    if !missing.is_empty() {
        return Err(format!("{}: {}", file.display(), missing.join("; ")));
    }
    let resources = resolved.effective_resources();
    // `[accounts.*]` (issue 12): checked here so that a mistake fails before `serve`.
    let accounts = wasmcloud_provisioner::accounts::AccountConfig::check_all(&resolved, &policy)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if json {
        let body = json!({
            "file": file,
            "valid": true,
            "accounts": accounts,
            "connection": resolved.describe_connection(),
            "lattices": {
                "allow": lattices.allow_lattice,
                "max": lattices.max_lattices,
                "reserved": policy.reserved(),
            },
            "max_request_replicas": resolved.settings.max_request_replicas,
            "hosts": {
                "require_signed": hosts.require_signed,
                "trusted_keys": trusted,
                "keys_bound_to_lattices": hosts.lattices.len(),
                "signature_max_age": hosts.max_age.as_secs(),
            },
            "resources": resources,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    println!(
        "{} is valid. Effective settings (flags > environment > file > context):",
        file.display()
    );
    let c = resolved.describe_connection();
    println!(
        "  servers:      {}",
        wasmcloud_provisioner::server_url::redact(&resolved.servers)
    );
    if let Some((name, path)) = &resolved.context {
        println!("  context:      {name} ({})", path.display());
    }
    println!("  auth:         {}", resolved.auth.describe());
    if resolved.tls.is_set() {
        println!("  tls:          {}", c["tls"]);
    }
    println!(
        "  js_domain:    {}",
        resolved.js_domain.as_deref().unwrap_or("(none)")
    );
    let allow = if lattices.allow_lattice.is_empty() {
        "all".to_string()
    } else {
        lattices.allow_lattice.join(", ")
    };
    let max = lattices
        .max_lattices
        .map(|m| m.to_string())
        .unwrap_or_else(|| "unlimited".into());
    println!("  lattices:     {allow} (at most {max})");
    println!(
        "  requests:     {}",
        match resolved.settings.max_request_replicas {
            Some(m) => format!("may raise replicas up to {m}"),
            None => "may not raise replicas (the settings below are a floor)".into(),
        }
    );
    println!(
        "  hosts:        {}",
        match (hosts.require_signed, trusted) {
            (_, Some(n)) => format!(
                "signed, {n} trusted key(s) ({} bound to lattices), max age {} s",
                hosts.lattices.len(),
                hosts.max_age.as_secs()
            ),
            (true, None) => format!("signed, any key, max age {} s", hosts.max_age.as_secs()),
            (false, None) => "unsigned requests accepted".to_string(),
        }
    );
    if !policy.reserved().is_empty() {
        println!(
            "  reserved:     {} (besides the built-in reserved names)",
            policy.reserved().join(", ")
        );
    }
    for account in accounts.iter() {
        println!(
            "  account:      {}",
            account["summary"].as_str().unwrap_or_default()
        );
    }
    println!();
    let rows: Vec<[String; 5]> = resources
        .iter()
        .map(|r| {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
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
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for cells in std::iter::once(headers.map(String::from)).chain(rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(EXIT_OK)
}
