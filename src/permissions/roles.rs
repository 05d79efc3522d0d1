//! A role's template, a union of roles, and the provisioner's own inbox.

use super::builder::{Builder, INBOX};
use super::{
    host_bootstrap_subject, validate_inbox_prefix, validate_js_domain, PlatformOptions, Role,
    Rules, Template, TemplateOptions,
};
use crate::catalog::App;
use crate::config_error::ConfigError;
use crate::request;
use crate::subjects;

/// Builds a role's template. Lattice names and the domain are checked as everywhere else.
pub fn template(role: Role, options: &TemplateOptions) -> Result<Template, ConfigError> {
    template_for(role, options, PlatformOptions::default())
}

/// [`template`] for a party of the wasmCloud platform: a host behind a leaf node, or the
/// Kubernetes operator of a version.
pub fn template_for(
    role: Role,
    options: &TemplateOptions,
    platform: PlatformOptions,
) -> Result<Template, ConfigError> {
    for l in &options.lattices {
        request::validate_lattice(l).map_err(|e| e.message)?;
    }
    if let Some(d) = &options.js_domain {
        validate_js_domain(d)?;
    }
    let mut options = options.clone();
    let b = match role {
        Role::Host => host(&mut options, platform)?,
        Role::Wadm => {
            options.lattices.clear();
            let mut b = Builder::new(options.js_domain.clone());
            b.app(App::Wadm, &[], None);
            b.allow_publish(subjects::WADM_SUBJECT.to_string());
            b
        }
        Role::Provisioner => {
            let mut b = Builder::new(options.js_domain.clone());
            b.provisioner(&options.lattices);
            b
        }
        Role::Operator => operator(&mut options, platform)?,
        Role::Backup => {
            let mut b = Builder::new(options.js_domain.clone());
            b.backup(&options.lattices)?;
            b
        }
    };
    Ok(Template {
        role,
        also: Vec::new(),
        options,
        platform,
        permissions: b.permissions,
        inbox_prefix: None,
    })
}

/// A host of its lattices (`default` when none is given), directly or behind a leaf.
fn host(options: &mut TemplateOptions, platform: PlatformOptions) -> Result<Builder, ConfigError> {
    if options.lattices.is_empty() {
        options.lattices.push(request::DEFAULT_LATTICE.to_string());
    }
    let mut b = Builder::new(options.js_domain.clone());
    if platform.via_leaf {
        let Some(domain) = options.js_domain.clone() else {
            return Err(ConfigError::Invalid(
                "--via-leaf needs --js-domain <the hub's JetStream domain> \
                        (`default` in the wasmcloud-platform chart): the host reaches \
                        JetStream as `$JS.<domain>.API`"
                    .into(),
            ));
        };
        b = Builder::via_leaf(domain);
    }
    b.app(App::Host, &options.lattices, None);
    for l in &options.lattices {
        b.allow_publish(host_bootstrap_subject(l));
    }
    Ok(b)
}

/// The Kubernetes operator of a version, for its lattices (`default` when none is given).
fn operator(
    options: &mut TemplateOptions,
    platform: PlatformOptions,
) -> Result<Builder, ConfigError> {
    let Some(operator) = platform.operator else {
        return Err(ConfigError::Invalid(
            "the operator's stream depends on its version: give --operator 0.4 \
                    (wasmcloud-operator 0.4.x and 0.5.0, stream \
                    wasmcloud_operator_events) or --operator 0.5 (wadm-operator, from \
                    0.5.1, stream wadm_operator_events)"
                .into(),
        ));
    };
    if options.lattices.is_empty() {
        options.lattices.push(request::DEFAULT_LATTICE.to_string());
    }
    // The operator connects to the hub directly and without a domain (`$JS.API`).
    let mut b = Builder::new(None);
    // It only sends requests: nothing to respond to.
    b.permissions.allow_responses = false;
    b.app(App::Operator, &options.lattices, Some(operator));
    // `bootstrap operator`: ensures its lattices' buckets, then wadm's resources and
    // its stream, idempotently (the same power any host of those lattices has).
    for l in &options.lattices {
        b.allow_publish(format!("{}.{l}", subjects::LATTICE_SUBJECT));
    }
    b.allow_publish(subjects::WADM_SUBJECT.to_string());
    Ok(b)
}

impl Template {
    /// The provisioner's replies come to `<prefix>.>` instead of `_INBOX.>` (the
    /// connection's `--inbox-prefix`), so its user no longer reads every client's
    /// replies (hosts' `DIRECT.GET` answers among them). Hosts and wadm keep `_INBOX.>`:
    /// the wasmCloud 1.9 host cannot be given a prefix (see the README's "Tenants"), so
    /// for those roles this changes nothing.
    pub fn with_inbox_prefix(mut self, prefix: Option<&str>) -> Result<Template, ConfigError> {
        let Some(prefix) = prefix else {
            return Ok(self);
        };
        if self.role != Role::Provisioner {
            return Ok(self);
        }
        let prefix = validate_inbox_prefix(prefix)?;
        let sub = &mut self.permissions.subscribe.allow;
        if let Some(at) = sub.iter().position(|s| s == INBOX) {
            sub[at] = format!("{prefix}.>");
        }
        self.inbox_prefix = Some(prefix);
        Ok(self)
    }
}

/// One user for several roles: every allow and deny of each, `allow_responses` if any has
/// it. For the wasmcloud-platform chart, where the operator and the hosts' leaf links use
/// one credentials secret (`--role host --role operator --via-leaf`). Roles are applied
/// in the order given, duplicates dropped.
pub fn template_union(
    roles: &[Role],
    options: &TemplateOptions,
    platform: PlatformOptions,
) -> Result<Template, ConfigError> {
    let mut unique: Vec<Role> = Vec::new();
    for r in roles {
        if !unique.contains(r) {
            unique.push(*r);
        }
    }
    let Some((first, rest)) = unique.split_first() else {
        return Err(ConfigError::Invalid("give at least one --role".into()));
    };
    if platform.via_leaf && !unique.contains(&Role::Host) {
        return Err(ConfigError::Invalid(
            "--via-leaf is for hosts behind a leaf node: add --role host".into(),
        ));
    }
    if platform.operator.is_some() && !unique.contains(&Role::Operator) {
        return Err(ConfigError::Invalid(
            "--operator names the operator's stream for --role operator: add it".into(),
        ));
    }
    let mut combined = template_for(*first, options, platform)?;
    for role in rest {
        let t = template_for(*role, options, platform)?;
        let p = &mut combined.permissions;
        for (mine, theirs) in [
            (&mut p.publish.allow, t.permissions.publish.allow),
            (&mut p.publish.deny, t.permissions.publish.deny),
            (&mut p.subscribe.allow, t.permissions.subscribe.allow),
            (&mut p.subscribe.deny, t.permissions.subscribe.deny),
        ] {
            for s in theirs {
                Rules::push(mine, s);
            }
        }
        p.allow_responses |= t.permissions.allow_responses;
        if combined.options.lattices.is_empty() {
            combined.options.lattices = t.options.lattices;
        }
        combined.also.push(*role);
    }
    Ok(combined)
}
