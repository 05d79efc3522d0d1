//! JSON schemas: the project's own (`schemas/`) and any other file, compiled once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// A schema from the project's `schemas/` folder (what the endpoints' metadata name),
/// compiled once per test binary.
pub fn project_schema(file: &str) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<BTreeMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("schema cache");
    if let Some(v) = cache.get(file) {
        return v;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    let validator: &'static jsonschema::Validator = Box::leak(Box::new(compile_schema(&path)));
    cache.insert(file.to_string(), validator);
    validator
}

/// Compiles the schema in `path`, with format validation on.
pub fn compile_schema(path: &Path) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read schema {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("schema {} is not JSON: {e}", path.display()));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {} does not compile: {e}", path.display()))
}

/// Panics with every problem (and where it is) unless `instance` is valid.
pub fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let problems: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{what} does not validate against its schema:\n  {}\n{instance:#}",
        problems.join("\n  ")
    );
}
