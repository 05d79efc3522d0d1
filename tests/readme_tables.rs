//! The README's generated tables are the catalog's: the text between each pair of
//! `generated:<name>` markers is exactly what the catalog renders, so a row added to the
//! catalog (or a changed setting) cannot leave the README behind.

use wasmcloud_provisioner::catalog;

/// Fails unless the README's text between `<!-- generated:<name> -->` and its end marker
/// is `want`, and says what to put there.
fn assert_generated(name: &str, want: &str) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let begin = format!("<!-- generated:{name} -->\n");
    let end = format!("<!-- /generated:{name} -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md has no `{}` marker", begin.trim()))
        + begin.len();
    let stop = readme[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("README.md has no `{end}` marker after `{}`", begin.trim()))
        + start;
    assert!(
        readme[start..stop] == *want,
        "README.md's {name} table is not the catalog's; replace the text between the \
         generated:{name} markers with:\n{want}"
    );
}

/// The resources table ("The resources") is rendered from the catalog's rows by
/// `catalog::resources_table`.
#[test]
fn the_readme_resources_table_is_the_catalogs() {
    assert_generated("resources", &catalog::resources_table());
}

/// The drift-fields table ("What is checked on a resource that exists"), as
/// `tests/drift.rs` checks it too, by the same rule as every generated section.
#[test]
fn the_readme_drift_fields_table_is_the_catalogs() {
    assert_generated("drift-fields", &catalog::readme_table());
}
