//! `permissions --role provisioner --tenant-account <name>…`: the account blocks that let
//! one provisioner serve many accounts (see the module docs of `accounts`): the export in
//! the provisioner's account, the import in each tenant's, and the permissions of the
//! provisioner's user in each tenant account. `conf` renders them for a nats-server
//! config, `nsc` as `nsc add export` / `nsc add import` command lines.

use super::wiring::Wiring;
use crate::config_error::ConfigError;
use crate::permissions::{Permissions, Rules, Template};
use crate::subjects::SUBJECT_PREFIX;

/// What the provisioner's account exports and each tenant account imports.
pub fn service_subject() -> String {
    format!("{SUBJECT_PREFIX}.>")
}

/// Where the provisioner serves and whom.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The provisioner's own account (its name in a static config; in operator mode the
    /// name nsc knows it by).
    pub provisioner: String,
    pub tenants: Vec<String>,
    /// wasmCloud's multitenant wadm's account (`--wadm-account`): the tenants' hosts
    /// export their events and control interface to it, it exports its API to them.
    pub wadm: Option<String>,
}

impl Layout {
    /// Checks the names: account names as a config and nsc take them, distinct, and no
    /// tenant is the provisioner's own account; wadm's account is neither the
    /// provisioner's (it imports the service) nor, if named as a tenant too, the only
    /// tenant (its own hosts would not be heard: wadm listens to other accounts' events).
    pub fn new(
        provisioner: String,
        tenants: Vec<String>,
        wadm: Option<String>,
    ) -> Result<Layout, ConfigError> {
        for name in std::iter::once(&provisioner)
            .chain(&tenants)
            .chain(wadm.as_ref())
        {
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
        if let Some(wadm) = &wadm {
            if *wadm == provisioner {
                return Err(ConfigError::Invalid(format!(
                    "--wadm-account {wadm} is the provisioner's own account: give wadm an \
                     account of its own (it imports the tenants' events under their names)"
                )));
            }
            if tenants.iter().all(|t| t == wadm) {
                return Err(ConfigError::Invalid(format!(
                    "--wadm-account {wadm}: name the accounts of the hosts with \
                     --tenant-account (wadm's own account is served without naming it)"
                )));
            }
        }
        Ok(Layout {
            provisioner,
            tenants,
            wadm,
        })
    }

    /// The accounts the provisioner serves: the tenants, and wadm's account (it sends the
    /// `wadm` request: wadm's resources are created there).
    pub fn served(&self) -> Vec<String> {
        let mut served = self.tenants.clone();
        if let Some(wadm) = &self.wadm {
            if !served.contains(wadm) {
                served.push(wadm.clone());
            }
        }
        served
    }

    /// Every account's exports and imports: the provisioner's service and, with a wadm
    /// account, wasmCloud's multitenant mode. One value, so that each account is one
    /// block (a server config cannot name an account twice).
    pub fn wiring(&self) -> Wiring {
        let mut wiring = Wiring::default();
        wiring.provisioner(&self.provisioner, &self.served());
        if let Some(wadm) = &self.wadm {
            let hosts: Vec<String> = self
                .tenants
                .iter()
                .filter(|t| *t != wadm)
                .cloned()
                .collect();
            wiring.wadm_multitenant(wadm, &hosts);
        }
        wiring
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
    let mut out = String::from(
        "# Accounts: merge into the accounts of your server config (users, JetStream and limits are\n\
         # yours; a service import's responses need no further grant).\n",
    );
    if let Some(wadm) = &layout.wadm {
        out.push_str(&format!(
            "# With wasmCloud's multitenant mode: each tenant exports its hosts' events (a stream)\n\
             # and control interface (a service) to {wadm}, which imports them under the tenant's\n\
             # name; {wadm} exports wadm's API with the importer's name as its first token.\n"
        ));
    }
    out.push_str(&layout.wiring().conf());
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
    let mut out = String::from(
        "# The exports, then the imports (--src-account takes the exporting account's public key;\n\
         # so does a subject whose first token names an account):\n",
    );
    out.push_str(&layout.wiring().nsc());
    out.push_str(
        "# The provisioner's user in each tenant account (`[accounts.<public key>]` in its \
         config file):\n",
    );
    for tenant in &layout.served() {
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

/// The JSON form: the accounts' exports and imports (the model `conf` and `nsc` render)
/// and the tenant user's permissions.
#[derive(serde::Serialize)]
struct JsonForm<'a> {
    provisioner_account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wadm_account: Option<&'a str>,
    #[serde(flatten)]
    wiring: Wiring,
    tenant_user: &'a Permissions,
}

/// What `permissions --tenant-account …` adds after the provisioner's own template.
pub fn render(
    provisioner: &Template,
    provisioner_account: String,
    tenants: Vec<String>,
    wadm: Option<String>,
    format: crate::permissions::Format,
) -> Result<String, ConfigError> {
    use crate::permissions::Format;
    if provisioner.role != crate::permissions::Role::Provisioner || !provisioner.also.is_empty() {
        return Err(ConfigError::Invalid(
            "--tenant-account (and --wadm-account) is for --role provisioner alone".into(),
        ));
    }
    let layout = Layout::new(provisioner_account, tenants, wadm)?;
    let user = tenant_user(provisioner);
    Ok(match format {
        Format::Conf => conf(&layout, &user),
        Format::Nsc => nsc(&layout, &user),
        Format::Json => {
            let form = JsonForm {
                provisioner_account: &layout.provisioner,
                wadm_account: layout.wadm.as_deref(),
                wiring: layout.wiring(),
                tenant_user: &user,
            };
            let mut s = serde_json::to_string_pretty(&form)
                .map_err(|e| ConfigError::Invalid(format!("the account blocks as JSON: {e}")))?;
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
        let layout = Layout::new("PROV".into(), vec!["A".into(), "B".into()], None).unwrap();
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
        let ok = Layout::new("PROV".into(), vec!["A".into(), "B".into()], None);
        assert!(ok.is_ok());
        let named_as_tenant = vec!["A".into(), "WADM".into()];
        assert!(Layout::new("PROV".into(), named_as_tenant, Some("WADM".into())).is_ok());
        for (tenants, wadm) in [
            (vec!["A"], "PROV"),
            (vec!["WADM"], "WADM"),
            (vec!["A"], "W ADM"),
            (vec!["A"], ""),
        ] {
            let tenants = tenants.into_iter().map(String::from).collect();
            assert!(
                Layout::new("PROV".into(), tenants, Some(wadm.into())).is_err(),
                "{wadm}"
            );
        }
        for (prov, tenants) in [
            ("PROV", vec!["PROV"]),
            ("PROV", vec!["A", "A"]),
            ("PROV", vec!["A B"]),
            ("P}", vec!["A"]),
            ("PROV", vec![""]),
        ] {
            let tenants = tenants.into_iter().map(String::from).collect();
            assert!(Layout::new(prov.into(), tenants, None).is_err(), "{prov}");
        }
    }

    /// Without `--wadm-account` the blocks are today's: the export and the imports only.
    #[test]
    fn conf_without_wadm_is_the_service_export_and_imports() {
        let t = provisioner();
        let layout = Layout::new("PROV".into(), vec!["A".into(), "B".into()], None).unwrap();
        let out = conf(&layout, &tenant_user(&t));
        let accounts = &out[out.find("accounts {").unwrap()..out.find(END_ACCOUNTS).unwrap()];
        assert_eq!(
            accounts,
            "accounts {\n  PROV: {\n    exports: [\n      {service: \"wasmcloud.provision.>\"}\n    ]\n  }\n\
             \x20 A: {\n    imports: [\n      {service: {account: PROV, subject: \"wasmcloud.provision.>\"}}\n    ]\n  }\n\
             \x20 B: {\n    imports: [\n      {service: {account: PROV, subject: \"wasmcloud.provision.>\"}}\n    ]\n  }\n}\n"
        );
    }

    /// With `--wadm-account` each account is still one block; wadm's account imports the
    /// service and gets the provisioner's user, and no host exports of its own.
    #[test]
    fn with_wadm_each_account_is_one_block_and_wadm_is_served() {
        let t = provisioner();
        let layout = Layout::new(
            "PROV".into(),
            vec!["A".into(), "B".into()],
            Some("WADM".into()),
        )
        .unwrap();
        assert_eq!(layout.served(), ["A", "B", "WADM"]);
        let out = conf(&layout, &tenant_user(&t));
        for name in ["PROV", "A", "B", "WADM"] {
            assert_eq!(out.matches(&format!("  {name}: {{\n")).count(), 1, "{out}");
        }
        let wadm = &out[out.find("  WADM: {").unwrap()..out.find(END_ACCOUNTS).unwrap()];
        assert!(wadm.contains("{service: {account: PROV, subject: \"wasmcloud.provision.>\"}}"));
        assert!(wadm.contains("{service: \"*.wadm.api.>\", account_token_position: 1}"));
        assert!(!wadm.contains("{stream: \"wasmbus.evt.*.>\"}"), "{wadm}");
        assert!(out.contains("}\n# end accounts\n"));
        let nsc = nsc(&layout, &tenant_user(&t));
        assert!(nsc.contains("nsc add user --account WADM --name wasmcloud-provisioner"));
        assert!(
            nsc.contains("nsc add import --account WADM --service --name wasmcloud-provisioner")
        );
        assert!(nsc.contains("nsc add import --account WADM --name wasmbus-events-A"));
    }

    /// The JSON form is the model: accounts with their exports and imports.
    #[test]
    fn json_is_the_wiring() {
        let t = provisioner();
        let out = render(
            &t,
            "PROV".into(),
            vec!["A".into()],
            Some("WADM".into()),
            crate::permissions::Format::Json,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["provisioner_account"], "PROV");
        assert_eq!(v["wadm_account"], "WADM");
        let names: Vec<&str> = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["PROV", "A", "WADM"]);
        assert_eq!(
            v["accounts"][2]["exports"][0],
            serde_json::json!({"kind": "service", "subject": "*.wadm.api.>",
                "account_token_position": 1, "name": "wadm-api"})
        );
        assert!(v["tenant_user"]["publish"]["allow"].is_array());
    }
}
