//! `wasmcloud-provisioner`: a thin command line over the library. See `lib.rs` for the
//! architecture and the README for operator documentation.

// Issue 11: no function over 80 lines (threshold in clippy.toml); `make lint` denies it.
#![warn(clippy::too_many_lines)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use wasmcloud_provisioner::bootstrap::{self, BootstrapCommand};
use wasmcloud_provisioner::catalog::Operator;
use wasmcloud_provisioner::cli::{
    self, CredsArgs, PermissionsArgs, TargetArgs, EXIT_ERROR, EXIT_OK,
};
use wasmcloud_provisioner::config::{self, ConnectArgs, Resolved, SettingsArgs};
use wasmcloud_provisioner::config_error::ConfigError;
use wasmcloud_provisioner::host_auth::{HostAuth, HostAuthArgs};
use wasmcloud_provisioner::ping::{self, PingArgs};
use wasmcloud_provisioner::policy::{LatticePolicy, LatticePolicyArgs};
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::{backup, request};

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

async fn run(cli: Cli) -> Result<u8, ConfigError> {
    request::compile_schemas()?;
    let command = match cli.command {
        Command::Config(ConfigCommand::Check { file, json }) => {
            return cli::config_check(&cli.connect, &cli.settings, &cli.lattice_policy, file, json)
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
        Command::Bootstrap(b) => Ok(bootstrap::run(&resolved, b).await?),
        Command::Ping(p) => ping::run(&resolved, p).await,
        Command::Apply(t) => cli::once(resolved, policy, t, false).await,
        Command::Plan(t) => cli::once(resolved, policy, t, true).await,
        Command::Permissions(p) => cli::print_permissions(&resolved, &policy, p),
        Command::Creds(c) => cli::mint_creds(&resolved, &policy, c),
        Command::Backup(b) => backup::cli::run_backup(&resolved, b).await,
        Command::Restore(r) => backup::cli::run_restore(&resolved, r, cli.settings.replicas).await,
        Command::Config(_) => Err(ConfigError::Other(
            "unreachable: config is handled above".into(),
        )),
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

async fn serve(
    resolved: Resolved,
    guard: Guard,
    cache_ttl: u64,
    drain_timeout: u64,
    js_timeout: u64,
) -> Result<u8, ConfigError> {
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
