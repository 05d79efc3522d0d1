//! Reserved lattice names cover every subject in use: moved out of `src/names.rs`, whose
//! module must not import the permission templates (issue 11's layering: `names` sits
//! below `permissions`), while the check needs both.

use wasmcloud_provisioner::catalog::{Shape, StreamShape, CATALOG, MESSAGING};
use wasmcloud_provisioner::names;
use wasmcloud_provisioner::permissions::{template, Role, TemplateOptions};

fn first_token(subject: &str) -> &str {
    subject.split('.').next().unwrap_or_default()
}

/// Every first token that a subject of the catalog, the three templates or this
/// service uses is refused as a lattice name (the lattice's own subjects aside).
#[test]
fn every_first_token_in_use_is_reserved() {
    let lattice = "some-tenant";
    let mut subjects: Vec<String> = Vec::new();
    for row in CATALOG {
        if let Shape::Stream(StreamShape {
            subjects: s,
            subjects_multitenant: m,
            sources,
            ..
        }) = row.shape
        {
            subjects.extend(s.iter().chain(m).map(|s| s.to_string()));
            for src in sources {
                subjects.push(src.transform_dest.to_string());
                subjects.push(src.transform_dest_multitenant.to_string());
            }
        }
        subjects.extend(row.subjects_for(lattice, false));
    }
    for m in MESSAGING {
        for s in m.publish.iter().chain(m.subscribe) {
            subjects.push(s.replace("{lattice}", lattice));
        }
    }
    let domain = TemplateOptions {
        lattices: vec![lattice.into()],
        js_domain: Some("hub".into()),
    };
    for role in [Role::Host, Role::Wadm, Role::Provisioner] {
        let p = template(role, &domain).unwrap().permissions;
        for list in [
            &p.publish.allow,
            &p.publish.deny,
            &p.subscribe.allow,
            &p.subscribe.deny,
        ] {
            subjects.extend(list.iter().cloned());
        }
    }
    subjects.push(wasmcloud_provisioner::subjects::EVENTS_PREFIX.to_string());
    subjects.push(wasmcloud_provisioner::subjects::SUBJECT_PREFIX.to_string());
    let mut checked = 0;
    for s in &subjects {
        let token = first_token(s);
        if token == lattice || token == "*" || token == ">" {
            continue;
        }
        assert!(
            names::reason(token, &[]).is_some(),
            "`{token}` (from `{s}`) is a first subject token in use but not reserved"
        );
        checked += 1;
    }
    assert!(checked > 20, "{subjects:?}");
}
