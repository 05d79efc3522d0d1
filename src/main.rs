//! `wasmcloud-provisioner`: a thin command line over the library. See `lib.rs` for the
//! architecture and the README for operator documentation.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use wasmcloud_provisioner::config::{self, ConnectArgs, Resolved, SettingsArgs};
use wasmcloud_provisioner::jsapi::JetStreamApi;
use wasmcloud_provisioner::metrics::Metrics;
use wasmcloud_provisioner::provisioner::{Provisioner, Target};
use wasmcloud_provisioner::reconcile::{Action, KnownStreams, Reconciler, ResourceReport};
use wasmcloud_provisioner::service::{self, ServeOptions};
use wasmcloud_provisioner::{advisories, report, request};

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
    after_help = "Exit codes: 0 ok, 1 error, 2 `plan` found changes, 3 drift found.\n\
                  Examples:\n  wasmcloud-provisioner serve --replicas 3\n  \
                  wasmcloud-provisioner apply --lattice default --wadm\n  \
                  wasmcloud-provisioner plan --lattice default --json"
)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    settings: SettingsArgs,
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
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Seconds to wait for a JetStream API answer
    #[arg(long, default_value_t = 5)]
    js_timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(cli: Cli) -> Result<u8, String> {
    request::compile_schemas()?;
    let resolved = config::resolve(&cli.connect, &cli.settings)?;
    match cli.command {
        Command::Serve {
            cache_ttl,
            drain_timeout,
            js_timeout,
        } => serve(resolved, cache_ttl, drain_timeout, js_timeout).await,
        Command::Apply(t) => once(resolved, t, false).await,
        Command::Plan(t) => once(resolved, t, true).await,
    }
}

async fn serve(
    resolved: Resolved,
    cache_ttl: u64,
    drain_timeout: u64,
    js_timeout: u64,
) -> Result<u8, String> {
    let known = Arc::new(KnownStreams::default());
    let client = config::connect(&resolved, service::SERVICE_NAME, Some(known.clone())).await?;
    advisories::watch(client.clone(), known.clone())
        .await
        .map_err(|e| format!("cannot subscribe to stream advisories: {e}"))?;
    let js = JetStreamApi::new(
        client.clone(),
        resolved.js_domain.clone(),
        Duration::from_secs(js_timeout),
    );
    let reconciler = Arc::new(Reconciler::new(js, known, Duration::from_secs(cache_ttl)));
    let settings = resolved.settings.clone();
    let mut metadata = std::collections::HashMap::from([
        (
            "js_domain".to_string(),
            resolved.js_domain.clone().unwrap_or_default(),
        ),
        ("replicas".to_string(), settings.all.replicas().to_string()),
        ("subjects".to_string(), "wasmcloud.provision.>".to_string()),
    ]);
    if let Some(storage) = settings.all.storage {
        metadata.insert("storage".to_string(), storage.as_str().to_string());
    }
    let provisioner = Arc::new(Provisioner::new(reconciler, settings));
    let options = ServeOptions {
        drain_timeout: Duration::from_secs(drain_timeout),
        metadata,
    };
    service::serve(
        client,
        provisioner,
        Arc::new(Metrics::default()),
        options,
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("the service failed: {e}"))?;
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
async fn once(resolved: Resolved, args: TargetArgs, dry_run: bool) -> Result<u8, String> {
    let mut targets = Vec::new();
    for l in &args.lattices {
        request::validate_lattice(l).map_err(|e| e.message)?;
        targets.push(Target::Lattice(l.clone()));
    }
    if args.wadm {
        targets.push(Target::Wadm {
            multitenant: args.multitenant,
        });
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
    let reconciler = Arc::new(Reconciler::new(
        js,
        Arc::new(KnownStreams::default()),
        Duration::ZERO,
    ));
    let provisioner = Provisioner::new(reconciler, resolved.settings.clone());
    let result = provisioner.run(&targets, None, dry_run).await;
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
