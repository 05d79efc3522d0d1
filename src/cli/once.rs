//! `apply` and `plan`: the resources of the targets, ensured once or only planned.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{check_lattice_names, TargetArgs, EXIT_CHANGES, EXIT_DRIFT, EXIT_OK};
use crate::audit::{AuditPublisher, Instance};
use crate::config::{self, Resolved};
use crate::config_error::ConfigError;
use crate::jsapi::JetStreamApi;
use crate::origin::Origin;
use crate::plan::{Action, ResourceReport};
use crate::policy::LatticePolicy;
use crate::provisioner::{Provisioner, Target};
use crate::reconcile::Reconciler;
use crate::report;

/// `apply` and `plan`.
pub async fn once(
    resolved: Resolved,
    policy: LatticePolicy,
    args: TargetArgs,
    dry_run: bool,
) -> Result<u8, ConfigError> {
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
        return Err(ConfigError::Invalid(
            "nothing to do: give --lattice <name> (repeatable) and/or --wadm".into(),
        ));
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
    let result = crate::origin::with_origin(
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
            return Err(ConfigError::Other(e.message));
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
