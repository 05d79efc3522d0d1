//! The endpoint subjects the permission templates grant (taken from `subjects.rs`) are the
//! ones the service serves (`endpoints::*::SPEC`): a template and the code that answers
//! cannot drift apart, although `permissions` no longer imports `endpoints` (issue 11).

use wasmcloud_provisioner::{endpoints, permissions, subjects};

#[test]
fn templates_grant_the_subjects_the_endpoints_serve() {
    assert_eq!(endpoints::host::SPEC.subject, subjects::HOST_SUBJECT);
    assert_eq!(endpoints::lattice::SPEC.subject, subjects::LATTICE_SUBJECT);
    assert_eq!(endpoints::wadm::SPEC.subject, subjects::WADM_SUBJECT);
    assert_eq!(
        endpoints::host::scoped_subject("prod"),
        permissions::host_bootstrap_subject("prod")
    );
}
