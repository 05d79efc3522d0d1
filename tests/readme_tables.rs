//! The README's generated tables are the catalog's: the text between each pair of
//! `generated:<name>` markers is exactly what the catalog renders, so a row added to the
//! catalog (or a changed setting) cannot leave the README behind.

use wasmcloud_provisioner::catalog;

/// The README's text between `<!-- generated:<name> -->` and its end marker.
fn generated_section(name: &str) -> String {
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
    readme[start..stop].to_string()
}

/// The resources table ("The resources") is rendered from the catalog's rows by
/// `catalog::resources_table`.
#[test]
fn the_readme_resources_table_is_the_catalogs() {
    let want = catalog::resources_table();
    assert!(
        generated_section("resources") == want,
        "README.md's resources table is not the catalog's; replace the text between the \
         generated:resources markers with:\n{want}"
    );
}

/// The drift-fields table ("What is checked on a resource that exists"), as
/// `tests/drift.rs` checks it too, by the same rule as every generated section.
#[test]
fn the_readme_drift_fields_table_is_the_catalogs() {
    let want = catalog::readme_table();
    assert!(
        generated_section("drift-fields") == want,
        "README.md's drift table is not the catalog's; replace the text between the \
         generated:drift-fields markers with:\n{want}"
    );
}
