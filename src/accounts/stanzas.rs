//! `permissions --role provisioner --tenant-account <name>…`: the account blocks that let
//! one provisioner serve many accounts (see the module docs of `accounts`): the export in
//! the provisioner's account, the import in each tenant's, and the permissions of the
//! provisioner's user in each tenant account. `conf` renders them for a nats-server
//! config, `nsc` as `nsc add export` / `nsc add import` command lines.

use crate::config_error::ConfigError;
use crate::permissions::{quote, Permissions, Rules, Template};
use crate::subjects::SUBJECT_PREFIX;

/// What the provisioner's account exports and each tenant account imports.
pub fn service_subject() -> String {
    format!("{SUBJECT_PREFIX}.>")
}

/// The name of the export and the imports (`nsc`).
const EXPORT_NAME: &str = "wasmcloud-provisioner";

/// Where the provisioner serves and whom.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The provisioner's own account (its name in a static config; in operator mode the
    /// name nsc knows it by).
    pub provisioner: String,
    pub tenants: Vec<String>,
}

impl Layout {
    /// Checks the names: account names as a config and nsc take them, distinct, and no
    /// tenant is the provisioner's own account.
    pub fn new(provisioner: String, tenants: Vec<String>) -> Result<Layout, ConfigError> {
        for name in std::iter::once(&provisioner).chain(&tenants) {
            if !crate::permissions::is_name_token(name) {
                return Err(ConfigError::Invalid(format!(
                    "account {name:?}: use A-Z, a-z, 0-9, `_` and `-` (a name or public key)"
                )));
            }
        }
        if tenants.contains(&provisioner) {
            return Err(ConfigError::Invalid(format!(
                "--tenant-account {provisioner} is the provisioner's own account \
                 (--provisioner-account): its requests are served without an import"
            )));
        }
        let mut unique = tenants.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != tenants.len() {
            return Err(ConfigError::Invalid(
                "a --tenant-account is named twice".into(),
            ));
        }
        Ok(Layout {
            provisioner,
            tenants,
        })
    }
}

/// The permissions of the provisioner's user in a tenant account: the provisioner's
/// JetStream and advisory grants (from its template), nothing of the service (requests
/// arrive in the provisioner's own account; audit events are published there), and
/// `$SYS.REQ.USER.INFO`, with which it checks that the connection is in that account.
pub fn tenant_user(provisioner: &Template) -> Permissions {
    let service =
        |s: &String| s.starts_with(&format!("{SUBJECT_PREFIX}.")) || s.starts_with("$SRV.");
    let p = &provisioner.permissions;
    let mut publish_allow: Vec<String> = p
        .publish
        .allow
        .iter()
        .filter(|s| !service(s))
        .cloned()
        .collect();
    publish_allow.push(crate::subjects::USER_INFO_SUBJECT.to_string());
    Permissions {
        publish: Rules {
            allow: publish_allow,
            deny: p.publish.deny.clone(),
        },
        subscribe: Rules {
            allow: p
                .subscribe
                .allow
                .iter()
                .filter(|s| !service(s))
                .cloned()
                .collect(),
            deny: p.subscribe.deny.clone(),
        },
        allow_responses: false,
    }
}

/// Marks the end of the account blocks in `conf` output.
pub const END_ACCOUNTS: &str = "# end accounts";
/// Marks the end of the tenant user's permissions in `conf` output.
pub const END_TENANT_USER: &str = "# end tenant user permissions";

/// The account blocks and the tenant user's permissions, for a nats-server config.
pub fn conf(layout: &Layout, tenant_user: &Permissions) -> String {
    let subject = quote(&service_subject());
    let mut out = String::from(
        "# Accounts: merge into the accounts of your server config (users, JetStream and limits are\n\
         # yours; a service import's responses need no further grant).\n\
         accounts {\n",
    );
    out.push_str(&format!(
        "  {}: {{\n    exports: [\n      {{service: {subject}}}\n    ]\n  }}\n",
        layout.provisioner
    ));
    for tenant in &layout.tenants {
        out.push_str(&format!(
            "  {tenant}: {{\n    imports: [\n      {{service: {{account: {}, subject: {subject}}}}}\n    ]\n  }}\n",
            layout.provisioner
        ));
    }
    out.push_str("}\n");
    out.push_str(END_ACCOUNTS);
    out.push('\n');
    out.push_str(
        "# The provisioner's user in each tenant account (`[accounts.<name>]` in its config file):\n",
    );
    out.push_str(&tenant_user.to_conf());
    out.push_str(END_TENANT_USER);
    out.push('\n');
    out
}

/// `nsc` command lines for the same.
pub fn nsc(layout: &Layout, tenant_user: &Permissions) -> String {
    let subject = service_subject();
    let prov = &layout.provisioner;
    let mut out = format!(
        "# The provisioner's account exports its service:\n\
         nsc add export --account {prov} --service --name {EXPORT_NAME} --subject '{subject}'\n\
         # Each tenant account imports it (--src-account takes the exporting account's public key):\n"
    );
    for tenant in &layout.tenants {
        out.push_str(&format!(
            "nsc add import --account {tenant} --service --name {EXPORT_NAME} \\\n  \
             --src-account \"$(nsc describe account {prov} --field sub | tr -d '\"')\" \\\n  \
             --remote-subject '{subject}' --local-subject '{subject}'\n"
        ));
    }
    out.push_str(
        "# The provisioner's user in each tenant account (`[accounts.<public key>]` in its \
         config file):\n",
    );
    for tenant in &layout.tenants {
        let mut line = format!("nsc add user --account {tenant} --name wasmcloud-provisioner");
        for (flag, list) in [
            ("--allow-pub", &tenant_user.publish.allow),
            ("--deny-pub", &tenant_user.publish.deny),
            ("--allow-sub", &tenant_user.subscribe.allow),
            ("--deny-sub", &tenant_user.subscribe.deny),
        ] {
            for s in list {
                line.push_str(&format!(" \\\n  {flag} '{s}'"));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(
        "# Then: nsc push (or update the resolver), and give each tenant account JetStream.\n",
    );
    out
}

/// What `permissions --tenant-account …` adds after the provisioner's own template.
pub fn render(
    provisioner: &Template,
    provisioner_account: String,
    tenants: Vec<String>,
    format: crate::permissions::Format,
) -> Result<String, ConfigError> {
    use crate::permissions::Format;
    if provisioner.role != crate::permissions::Role::Provisioner || !provisioner.also.is_empty() {
        return Err(ConfigError::Invalid(
            "--tenant-account is for --role provisioner alone".into(),
        ));
    }
    let layout = Layout::new(provisioner_account, tenants)?;
    let user = tenant_user(provisioner);
    Ok(match format {
        Format::Conf => conf(&layout, &user),
        Format::Nsc => nsc(&layout, &user),
        Format::Json => {
            let imports: Vec<serde_json::Value> = layout
                .tenants
                .iter()
                .map(|t| {
                    serde_json::json!({"account": t, "service": {
                        "account": layout.provisioner, "subject": service_subject()}})
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "provisioner_account": layout.provisioner,
                "export": {"service": service_subject()},
                "imports": imports,
                "tenant_user": user,
            }))
            .unwrap_or_default();
            s.push('\n');
            s
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{template_union, PlatformOptions, Role, Template, TemplateOptions};

    /// The provisioner's template, as a tenant's user is derived from it.
    fn provisioner() -> Template {
        template_union(
            &[Role::Provisioner],
            &TemplateOptions::default(),
            PlatformOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_tenant_user_has_jetstream_and_no_service() {
        let t = provisioner();
        let p = tenant_user(&t);
        assert!(p
            .publish
            .allow
            .iter()
            .any(|s| s == "$JS.API.STREAM.CREATE.*"));
        assert!(p.publish.allow.iter().any(|s| s == "$SYS.REQ.USER.INFO"));
        assert!(p
            .publish
            .deny
            .iter()
            .any(|s| s == "$JS.API.STREAM.DELETE.>"));
        let all: Vec<&String> = p.publish.allow.iter().chain(&p.subscribe.allow).collect();
        assert!(
            all.iter()
                .all(|s| !s.starts_with("wasmcloud.provision") && !s.starts_with("$SRV")),
            "{all:?}"
        );
        assert!(!p.allow_responses);
    }

    #[test]
    fn nsc_lines_export_import_and_add_the_tenant_users() {
        let t = provisioner();
        let layout = Layout::new("PROV".into(), vec!["A".into(), "B".into()]).unwrap();
        let out = nsc(&layout, &tenant_user(&t));
        assert!(out.contains(
            "nsc add export --account PROV --service --name wasmcloud-provisioner --subject \
             'wasmcloud.provision.>'\n"
        ));
        for tenant in ["A", "B"] {
            assert!(out.contains(&format!(
                "nsc add import --account {tenant} --service --name wasmcloud-provisioner"
            )));
            assert!(out.contains(&format!(
                "nsc add user --account {tenant} --name wasmcloud-provisioner"
            )));
        }
        assert!(
            out.contains("--src-account \"$(nsc describe account PROV --field sub | tr -d '\"')\"")
        );
        assert!(out.contains("--allow-pub '$SYS.REQ.USER.INFO'"));
        assert!(out.contains(
            "--remote-subject 'wasmcloud.provision.>' --local-subject 'wasmcloud.provision.>'"
        ));
    }

    #[test]
    fn layouts_with_bad_names_are_refused() {
        let ok = Layout::new("PROV".into(), vec!["A".into(), "B".into()]);
        assert!(ok.is_ok());
        for (prov, tenants) in [
            ("PROV", vec!["PROV"]),
            ("PROV", vec!["A", "A"]),
            ("PROV", vec!["A B"]),
            ("P}", vec!["A"]),
            ("PROV", vec![""]),
        ] {
            let tenants = tenants.into_iter().map(String::from).collect();
            assert!(Layout::new(prov.into(), tenants).is_err(), "{prov}");
        }
    }
}
