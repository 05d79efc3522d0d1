//! `permissions` and `creds`: a role's template, printed or minted into a `.creds` file.

use super::{check_lattice_names, CredsArgs, PermissionsArgs, PlatformArgs, EXIT_OK};
use crate::config::Resolved;
use crate::config_error::ConfigError;
use crate::creds::{self, AccountSigner};
use crate::permissions::{self, Format, Role, Template, TemplateOptions};
use crate::policy::LatticePolicy;

/// The template of the roles for the lattices (checked against the policy first), with
/// the connection's JetStream domain and inbox prefix: what `permissions` prints and
/// `creds` signs.
fn role_template(
    resolved: &Resolved,
    policy: &LatticePolicy,
    roles: &[Role],
    platform: &PlatformArgs,
    lattices: Vec<String>,
) -> Result<Template, ConfigError> {
    check_lattice_names(policy, &lattices)?;
    let options = TemplateOptions {
        lattices,
        js_domain: resolved.js_domain.clone(),
    };
    permissions::template_union(roles, &options, platform.options())?
        .with_inbox_prefix(resolved.inbox_prefix.as_deref())
}

/// `permissions`: prints a role's template.
pub fn print_permissions(
    resolved: &Resolved,
    policy: &LatticePolicy,
    args: PermissionsArgs,
) -> Result<u8, ConfigError> {
    let template = role_template(resolved, policy, &args.role, &args.platform, args.lattices)?;
    // Issue 12: one provisioner serving many accounts. Rendered before anything is
    // printed, so that a refused name leaves no half of an answer on stdout.
    let accounts = if args.tenant_accounts.is_empty() {
        String::new()
    } else {
        crate::accounts::stanzas::render(
            &template,
            args.provisioner_account,
            args.tenant_accounts,
            args.wadm_account,
            args.format,
        )?
    };
    print!("{}{accounts}", template.render(args.format));
    Ok(EXIT_OK)
}

/// `creds`: mints a user JWT with the role's template and writes a `.creds` file.
pub fn mint_creds(
    resolved: &Resolved,
    policy: &LatticePolicy,
    args: CredsArgs,
) -> Result<u8, ConfigError> {
    let template = role_template(resolved, policy, &args.role, &args.platform, args.lattices)?;
    let signer = AccountSigner::from_seed_file(&args.account_seed, args.account.as_deref())?;
    let valid_for = args
        .expiry
        .as_deref()
        .map(creds::parse_expiry)
        .transpose()?;
    let name = args.name.unwrap_or_else(|| template.user_name());
    let user = signer.mint_user_valid_for(&name, &template.permissions, valid_for)?;
    creds::write_creds(
        &args.out,
        &creds::format_creds(&user.jwt, &user.seed),
        args.force,
    )?;
    let expiry = match user
        .expires_at
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
