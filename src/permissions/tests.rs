//! The role templates against the proven lists of `shared/spec/permissions.md`.

use std::collections::BTreeSet;

use super::*;
use crate::catalog::{self, App, Scope, CATALOG};

pub(super) fn set(list: &[String]) -> BTreeSet<&str> {
    list.iter().map(String::as_str).collect()
}

/// The publish allow list is `publish`, the subscribe allow list `subscribe`, as sets.
pub(super) fn assert_allows(p: &Permissions, publish: &BTreeSet<String>, subscribe: &[&str]) {
    assert_eq!(
        set(&p.publish.allow),
        publish.iter().map(String::as_str).collect()
    );
    assert_eq!(set(&p.subscribe.allow), subscribe.iter().copied().collect());
}

/// One lattice in a JetStream domain.
fn in_domain(lattice: &str, domain: &str) -> TemplateOptions {
    TemplateOptions {
        lattices: vec![lattice.to_string()],
        js_domain: Some(domain.to_string()),
    }
}

pub(super) fn lattice(l: &str) -> TemplateOptions {
    TemplateOptions {
        lattices: vec![l.to_string()],
        js_domain: None,
    }
}

/// The five denies the spec lists for host and wadm.
pub(super) const SPEC_APP_DENY: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
];

/// `shared/spec/permissions.md`, "Host", for lattice `default`, transcribed entry by
/// entry; the template adds only the bootstrap request.
#[test]
fn host_template_is_the_proven_list() {
    let t = template(Role::Host, &lattice("default")).unwrap();
    let spec_publish = [
        "$JS.API.STREAM.INFO.KV_LATTICEDATA_default",
        "$JS.API.STREAM.INFO.KV_CONFIGDATA_default",
        "$JS.API.CONSUMER.CREATE.KV_LATTICEDATA_default",
        "$JS.API.CONSUMER.CREATE.KV_CONFIGDATA_default",
        "$JS.API.DIRECT.GET.KV_LATTICEDATA_default.>",
        "$JS.API.DIRECT.GET.KV_CONFIGDATA_default.>",
        "$KV.LATTICEDATA_default.>",
        "$KV.CONFIGDATA_default.>",
        "wasmbus.evt.default.>",
        "wasmbus.rpc.default.>",
        "default.>",
    ];
    let mut want: BTreeSet<&str> = spec_publish.into_iter().collect();
    want.insert("wasmcloud.provision.host.default");
    let p = &t.permissions;
    assert_eq!(set(&p.publish.allow), want);
    assert_eq!(
        set(&p.subscribe.allow),
        ["_INBOX.>", "wasmbus.ctl.v1.default.>", "default.>"]
            .into_iter()
            .collect()
    );
    assert_eq!(
        set(&p.publish.deny),
        SPEC_APP_DENY.iter().copied().collect()
    );
    assert!(p.subscribe.deny.is_empty());
    assert!(p.allow_responses);
}

/// `shared/spec/permissions.md`, "wadm", transcribed entry by entry (with the optional
/// legacy-mirror lookups); the template adds only the bootstrap request.
#[test]
fn wadm_template_is_the_proven_list() {
    let t = template(Role::Wadm, &TemplateOptions::default()).unwrap();
    let mut want: BTreeSet<String> = BTreeSet::new();
    for s in [
        "wadm_events",
        "wadm_commands",
        "wadm_status",
        "wasmbus_events",
        "wadm_notify",
        "wadm_event_consumer",
        "KV_wadm_state",
        "KV_wadm_manifests",
        "wadm_mirror",
        "wadm_multitenant_mirror",
    ] {
        want.insert(format!("$JS.API.STREAM.INFO.{s}"));
    }
    for s in [
        "$JS.API.CONSUMER.CREATE.wadm_commands.>",
        "$JS.API.CONSUMER.CREATE.wadm_event_consumer.>",
        "$JS.API.CONSUMER.CREATE.wadm_notify",
        "$JS.API.CONSUMER.INFO.wadm_commands.*",
        "$JS.API.CONSUMER.INFO.wadm_event_consumer.*",
        "$JS.API.CONSUMER.LIST.wadm_commands",
        "$JS.API.CONSUMER.LIST.wadm_event_consumer",
        "$JS.API.DIRECT.GET.KV_wadm_state.>",
        "$JS.API.DIRECT.GET.KV_wadm_manifests.>",
        "$KV.wadm_state.>",
        "$KV.wadm_manifests.>",
        "$JS.API.DIRECT.GET.wadm_status.>",
        "$JS.API.STREAM.MSG.GET.wadm_status",
        "wadm.cmd.*",
        "wadm.evt.*.>",
        "wadm.status.*.*",
        "wadm.notify.*",
        "wasmbus.ctl.v1.*.>",
    ] {
        want.insert(s.to_string());
    }
    for s in ["wadm_commands", "wadm_event_consumer", "wadm_notify"] {
        want.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{s}.>"));
        want.insert(format!("$JS.ACK.{s}.>"));
    }
    want.insert("wasmcloud.provision.wadm".to_string());
    let p = &t.permissions;
    assert_allows(p, &want, &["wadm.api.>", "wasmbus.evt.*.>", "_INBOX.>"]);
    assert_eq!(
        set(&p.publish.deny),
        SPEC_APP_DENY.iter().copied().collect()
    );
    assert!(p.allow_responses);
    assert!(t.options.lattices.is_empty());
}

#[test]
fn provisioner_names_streams_exactly_when_lattices_are_given() {
    let open = template(Role::Provisioner, &TemplateOptions::default()).unwrap();
    let p = &open.permissions.publish;
    for op in ["INFO", "CREATE", "UPDATE"] {
        assert!(p.allow.contains(&format!("$JS.API.STREAM.{op}.*")));
    }
    assert!(!p
        .allow
        .iter()
        .any(|s| s.contains("DELETE") || s.contains("PURGE")));
    assert!(!p.allow.contains(&"$JS.API.INFO".to_string()));
    assert_eq!(
        set(&p.deny),
        [
            "$JS.API.INFO",
            "$JS.API.STREAM.DELETE.>",
            "$JS.API.STREAM.PURGE.>"
        ]
        .into_iter()
        .collect()
    );
    let sub = set(&open.permissions.subscribe.allow);
    for s in [
        // Its endpoints, and at shutdown the witness over the whole prefix.
        "wasmcloud.provision.>",
        "$SRV.PING",
        "$SRV.INFO",
        "$SRV.STATS",
        "$SRV.*.wasmcloud-provisioner",
        "$SRV.*.wasmcloud-provisioner.*",
        "_INBOX.>",
        "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
        "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
    ] {
        assert!(sub.contains(s), "{s}");
    }
    // Subscribe only where it must: not other services' discovery subjects.
    assert_eq!(sub.len(), 9, "{sub:?}");

    let exact = template(
        Role::Provisioner,
        &TemplateOptions {
            lattices: vec!["a".into(), "b".into()],
            js_domain: None,
        },
    )
    .unwrap();
    let allow = set(&exact.permissions.publish.allow);
    // Every catalog stream of both lattices and of wadm, for each operation.
    let streams = CATALOG
        .iter()
        .map(|r| match r.scope {
            Scope::Lattice => 2,
            Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => 1,
        })
        .sum::<usize>();
    let stream_ops = allow
        .iter()
        .filter(|s| s.starts_with("$JS.API.STREAM.") && !s.ends_with("NAMES"))
        .count();
    assert_eq!(stream_ops, 3 * streams);
    assert!(allow.contains("$JS.API.STREAM.CREATE.KV_LATTICEDATA_b"));
    assert!(allow.contains("$JS.API.STREAM.UPDATE.wadm_event_consumer"));
    assert!(!allow.iter().any(|s| s.ends_with(".*")));
}

/// With an inbox prefix the provisioner subscribes to its own replies only; hosts and
/// wadm are unchanged; bad prefixes are refused.
#[test]
fn the_provisioner_can_have_its_own_inbox() {
    let t = template(Role::Provisioner, &TemplateOptions::default())
        .unwrap()
        .with_inbox_prefix(Some("_INBOX_prov"))
        .unwrap();
    let sub = set(&t.permissions.subscribe.allow);
    assert!(sub.contains("_INBOX_prov.>"), "{sub:?}");
    assert!(!sub.contains("_INBOX.>"), "{sub:?}");
    assert!(t
        .command_line(Format::Conf)
        .contains("--inbox-prefix _INBOX_prov"));
    let host = template(Role::Host, &lattice("a")).unwrap();
    assert_eq!(
        host.clone().with_inbox_prefix(Some("_INBOX_prov")).unwrap(),
        host
    );
    for bad in [
        "",
        "wasmbus",
        "INBOX",
        "_INBOX_a.*",
        "_INBOX_a..b",
        "_R_",
        "_GR_.x",
        "_a b",
    ] {
        assert!(validate_inbox_prefix(bad).is_err(), "{bad}");
    }
    assert_eq!(validate_inbox_prefix("_INBOX_a.b.").unwrap(), "_INBOX_a.b");
}

/// `shared/spec/backup.md`, "Permissions involved": snapshot subjects per stream
/// backed up, nothing that changes or restores a stream.
#[test]
fn backup_template_is_the_snapshot_subjects_only() {
    let t = template(Role::Backup, &lattice("default")).unwrap();
    let p = &t.permissions;
    let mut want: BTreeSet<String> = BTreeSet::new();
    for row in CATALOG
        .iter()
        .filter(|r| r.backup != catalog::Backup::Never)
    {
        let s = row.stream_for("default");
        want.insert(format!("$JS.API.STREAM.INFO.{s}"));
        want.insert(format!("$JS.API.STREAM.SNAPSHOT.{s}"));
        want.insert(format!("$JS.SNAPSHOT.ACK.{s}.>"));
    }
    want.insert("wasmcloud.provision.events.backed_up".to_string());
    assert_eq!(
        set(&p.publish.allow),
        want.iter().map(String::as_str).collect()
    );
    assert_eq!(set(&p.subscribe.allow), ["_INBOX.>"].into_iter().collect());
    let deny = set(&p.publish.deny);
    for s in SPEC_APP_DENY {
        assert!(deny.contains(s), "{s}");
    }
    assert!(deny.contains("$JS.API.STREAM.RESTORE.>"));
    assert!(deny.contains("$JS.SNAPSHOT.RESTORE.>"));
    assert!(!p.allow_responses);
    assert_eq!(t.user_name(), "wasmcloud-provisioner-backup");
    // Restore stays with an admin: the provisioner's own template cannot restore.
    let provisioner = template(Role::Provisioner, &TemplateOptions::default()).unwrap();
    assert!(!provisioner
        .permissions
        .publish
        .allow
        .iter()
        .any(|s| s.contains("RESTORE")));
    // With a domain, the API forms are listed twice; the acks are not API subjects.
    let d = template(Role::Backup, &in_domain("default", "hub")).unwrap();
    assert!(d
        .permissions
        .publish
        .allow
        .contains(&"$JS.hub.API.STREAM.SNAPSHOT.KV_CONFIGDATA_default".to_string()));
}

#[test]
fn a_new_catalog_row_reaches_the_templates() {
    // The host template holds exactly one STREAM.INFO per host row and lattice.
    let t = template(Role::Host, &lattice("x")).unwrap();
    let infos = t
        .permissions
        .publish
        .allow
        .iter()
        .filter(|s| s.starts_with("$JS.API.STREAM.INFO."))
        .count();
    let rows = CATALOG.iter().filter(|r| r.needed_by == App::Host).count();
    assert_eq!(infos, rows);
}

#[test]
fn domain_adds_the_prefixed_forms() {
    let t = template(Role::Host, &in_domain("default", "hub")).unwrap();
    let allow = set(&t.permissions.publish.allow);
    assert!(allow.contains("$JS.API.STREAM.INFO.KV_LATTICEDATA_default"));
    assert!(allow.contains("$JS.hub.API.STREAM.INFO.KV_LATTICEDATA_default"));
    assert!(allow.contains("$JS.hub.API.$KV.LATTICEDATA_default.>"));
    assert!(set(&t.permissions.publish.deny).contains("$JS.hub.API.STREAM.DELETE.>"));
    assert!(template(
        Role::Host,
        &TemplateOptions {
            lattices: vec![],
            js_domain: Some("a.b".into())
        }
    )
    .is_err());
}
