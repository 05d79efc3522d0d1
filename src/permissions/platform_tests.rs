//! The platform's parties (a host behind a leaf, the operator, one user of several roles)
//! and the `conf` rendering.

use std::collections::BTreeSet;

use super::tests::{assert_allows, lattice, set, SPEC_APP_DENY};
use super::*;

fn leaf(domain: &str) -> (TemplateOptions, PlatformOptions) {
    (
        TemplateOptions {
            lattices: vec!["default".into()],
            js_domain: Some(domain.into()),
        },
        PlatformOptions {
            via_leaf: true,
            operator: None,
        },
    )
}

/// `shared/spec/permissions.md`, "Hosts behind a leaf node", for lattice `default` and
/// hub domain `default`, entry by entry; the template adds only the bootstrap request.
#[test]
fn host_via_leaf_is_the_proven_list() {
    let (options, platform) = leaf("default");
    let t = template_for(Role::Host, &options, platform).unwrap();
    let mut want: BTreeSet<String> = BTreeSet::new();
    for b in ["LATTICEDATA_default", "CONFIGDATA_default"] {
        want.insert(format!("$JS.default.API.STREAM.INFO.KV_{b}"));
        want.insert(format!("$JS.default.API.CONSUMER.CREATE.KV_{b}"));
        want.insert(format!("$JS.default.API.DIRECT.GET.KV_{b}.>"));
        want.insert(format!("$JS.default.API.$KV.{b}.>"));
        want.insert(format!("$JS.FC.KV_{b}.>"));
    }
    for s in [
        "wasmbus.evt.default.>",
        "wasmbus.rpc.default.>",
        "default.>",
        "_INBOX.>",
        "wasmcloud.provision.host.default",
    ] {
        want.insert(s.to_string());
    }
    let p = &t.permissions;
    assert_allows(
        p,
        &want,
        &["_INBOX.>", "wasmbus.ctl.v1.default.>", "default.>"],
    );
    let deny: BTreeSet<String> = SPEC_APP_DENY
        .iter()
        .map(|d| d.replace("$JS.API.", "$JS.default.API."))
        .collect();
    assert_eq!(
        set(&p.publish.deny),
        deny.iter().map(String::as_str).collect()
    );
    // No effect through a leaf; the replies are plain publishes above.
    assert!(!p.allow_responses);
    assert_eq!(t.user_name(), "wasmcloud-host-leaf-default");
    assert!(t
        .command_line(Format::Json)
        .ends_with("--lattice default --js-domain default --via-leaf --format json"));
    // Without the hub's domain there is nothing to name.
    let no_domain = TemplateOptions {
        js_domain: None,
        ..options
    };
    assert!(template_for(Role::Host, &no_domain, platform)
        .unwrap_err()
        .to_string()
        .contains("--js-domain"));
}

fn operator(v: Operator, lattices: &[&str]) -> Result<Template, ConfigError> {
    template_for(
        Role::Operator,
        &TemplateOptions {
            lattices: lattices.iter().map(|l| l.to_string()).collect(),
            // Ignored: the operator connects without a domain.
            js_domain: Some("default".into()),
        },
        PlatformOptions {
            via_leaf: false,
            operator: Some(v),
        },
    )
}

/// `shared/spec/permissions.md` has no operator list; this is `resources.md` §6 (what
/// wasmcloud-operator 0.4.2 sends, async-nats 0.33's subjects) for two lattices.
#[test]
fn operator_template_names_its_stream_consumers_and_wadm_calls() {
    let t = operator(Operator::V0_4, &["a", "b"]).unwrap();
    let s = "wasmcloud_operator_events";
    let mut want: BTreeSet<String> = BTreeSet::new();
    want.insert(format!("$JS.API.STREAM.INFO.{s}"));
    for l in ["a", "b"] {
        let c = format!("wasmcloud_operator_service-{l}");
        want.insert(format!("$JS.API.CONSUMER.INFO.{s}.{c}"));
        want.insert(format!("$JS.API.CONSUMER.CREATE.{s}.{c}.>"));
        want.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{c}"));
        want.insert(format!("$JS.ACK.{s}.{c}.>"));
        for op in ["list", "get.*", "status.*", "put", "deploy.*", "del.*"] {
            want.insert(format!("wadm.api.{l}.model.{op}"));
        }
        want.insert(format!("wasmcloud.provision.lattice.{l}"));
    }
    want.insert("wasmcloud.provision.wadm".into());
    let p = &t.permissions;
    assert_eq!(
        set(&p.publish.allow),
        want.iter().map(String::as_str).collect()
    );
    assert_eq!(set(&p.subscribe.allow), BTreeSet::from(["_INBOX.>"]));
    assert_eq!(
        set(&p.publish.deny),
        SPEC_APP_DENY.iter().copied().collect()
    );
    assert!(!p.allow_responses);

    let v5 = operator(Operator::V0_5, &[]).unwrap();
    let allow = set(&v5.permissions.publish.allow);
    assert!(allow.contains("$JS.API.STREAM.INFO.wadm_operator_events"));
    assert!(allow
        .contains("$JS.API.CONSUMER.CREATE.wadm_operator_events.wadm_operator_service-default.>"));
    assert!(!allow.iter().any(|s| s.contains("wasmcloud_operator")));
    assert!(template_for(
        Role::Operator,
        &TemplateOptions::default(),
        PlatformOptions::default()
    )
    .unwrap_err()
    .to_string()
    .contains("--operator 0.4"));
}

/// The platform chart's one secret for the operator and the hosts' leaf links.
#[test]
fn union_holds_every_entry_of_each_role() {
    let (options, mut platform) = leaf("default");
    platform.operator = Some(Operator::V0_4);
    let host = template_for(Role::Host, &options, platform).unwrap();
    let op = template_for(Role::Operator, &options, platform).unwrap();
    let both = template_union(
        &[Role::Host, Role::Operator, Role::Host],
        &options,
        platform,
    )
    .unwrap();
    for (mine, parts) in [
        (
            &both.permissions.publish.allow,
            [
                &host.permissions.publish.allow,
                &op.permissions.publish.allow,
            ],
        ),
        (
            &both.permissions.publish.deny,
            [&host.permissions.publish.deny, &op.permissions.publish.deny],
        ),
        (
            &both.permissions.subscribe.allow,
            [
                &host.permissions.subscribe.allow,
                &op.permissions.subscribe.allow,
            ],
        ),
    ] {
        let want: BTreeSet<&str> = parts.iter().flat_map(|l| set(l)).collect();
        assert_eq!(set(mine), want);
        assert_eq!(mine.len(), want.len(), "no duplicates");
    }
    assert!(!both.permissions.allow_responses);
    assert_eq!(both.also, vec![Role::Operator]);
    assert_eq!(both.user_name(), "wasmcloud-host-operator");
    assert!(both.command_line(Format::Conf).starts_with(
        "wasmcloud-provisioner permissions --role host --role operator --lattice default"
    ));
    assert!(template_union(&[], &options, platform).is_err());
    assert!(
        template_union(&[Role::Wadm, Role::Operator], &options, platform)
            .unwrap_err()
            .to_string()
            .contains("--role host")
    );
    assert!(template_union(&[Role::Host], &options, platform)
        .unwrap_err()
        .to_string()
        .contains("--role operator"));
}

#[test]
fn host_without_lattice_is_for_default_and_bad_names_are_refused() {
    let t = template(Role::Host, &TemplateOptions::default()).unwrap();
    assert_eq!(t.options.lattices, vec!["default"]);
    assert!(template(Role::Host, &lattice("a.b")).is_err());
    assert!(template(Role::Provisioner, &lattice("*")).is_err());
}

#[test]
fn conf_block_lists_every_subject_quoted() {
    let t = template(Role::Host, &lattice("default")).unwrap();
    let conf = t.to_conf();
    assert!(conf.starts_with(
        "# wasmcloud-provisioner permissions --role host --lattice default --format conf\n\
         permissions: {\n"
    ));
    assert!(conf.ends_with("}\n# end wasmcloud-provisioner permissions\n"));
    for s in t
        .permissions
        .publish
        .allow
        .iter()
        .chain(&t.permissions.publish.deny)
        .chain(&t.permissions.subscribe.allow)
    {
        assert!(conf.contains(&format!("\"{s}\"\n")), "{s}");
    }
    assert!(conf.contains("allow_responses: true"));
    let json: Permissions = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json, t.permissions);
}
