//! Request parsing: bytes in, a typed request or a 400 that says what is wrong.
//!
//! All validation happens here, before anything touches JetStream, so that a bad request
//! creates nothing. JSON bodies are validated against the schemas in `schemas/` (the same
//! files the endpoints' metadata point to), then deserialized with unknown fields denied.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Operator;
use crate::error::ProvisionError;

use crate::names::MAX_LATTICE_LEN;

/// Largest request body accepted. Real requests are a few dozen bytes; anything near the
/// server's max_payload is either a mistake or an attack and is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The lattice used when a request names none, as in wasmCloud itself.
pub const DEFAULT_LATTICE: &str = "default";

/// The request and reply schemas, shipped in the binary so that the service validates
/// against exactly the files in `schemas/`.
pub mod schemas {
    pub const LATTICE_REQUEST: &str = include_str!("../schemas/lattice_request.json");
    pub const WADM_REQUEST: &str = include_str!("../schemas/wadm_request.json");
    pub const STATUS_REQUEST: &str = include_str!("../schemas/status_request.json");
    pub const HOST_REQUEST: &str = include_str!("../schemas/host_request.json");
}

/// Checks a lattice name against what stream and bucket names allow, and refuses the
/// names reserved because `<lattice>.>` would capture other parties' subjects
/// ([`crate::names`]; the operator's own reserved names are checked by the lattice policy).
pub fn validate_lattice(name: &str) -> Result<(), ProvisionError> {
    const RULE: &str = "a lattice name is 1 to 128 characters of A-Z, a-z, 0-9, `_` and `-` \
                        (it becomes part of JetStream stream names)";
    if name.is_empty() {
        return Err(ProvisionError::bad_request(format!(
            "the lattice name is empty: {RULE}"
        )));
    }
    let len = name.chars().count();
    if len > MAX_LATTICE_LEN {
        return Err(ProvisionError::bad_request(format!(
            "the lattice name is {len} characters long: {RULE}"
        )));
    }
    crate::names::check(name, &[])?;
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        let shown: String = name.chars().take(40).collect();
        return Err(ProvisionError::bad_request(format!(
            "the lattice name {shown:?} contains {bad:?}: {RULE}"
        )));
    }
    Ok(())
}

/// `wasmcloud.provision.lattice`: ensure one lattice's buckets. Every request type is also
/// `Serialize`, so that `tests/schemas.rs` can hold it against its schema field by field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatticeRequest {
    #[serde(default = "default_lattice")]
    pub lattice: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub replicas: Option<usize>,
}

/// `wasmcloud.provision.wadm`: ensure wadm's buckets and streams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WadmRequest {
    #[serde(default)]
    pub multitenant: bool,
    /// Also the Kubernetes operator's stream, for this operator version (`"0.4"` or
    /// `"0.5"`); without it, the service's `serve --operator` default, if any.
    #[serde(default)]
    pub operator: Option<Operator>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub replicas: Option<usize>,
}

/// `wasmcloud.provision.status`: report, change nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    #[serde(default)]
    pub lattice: Option<String>,
    #[serde(default)]
    pub wadm: bool,
    #[serde(default)]
    pub multitenant: bool,
    /// With `wadm`: also the operator's stream of this version (as on the wadm endpoint).
    #[serde(default)]
    pub operator: Option<Operator>,
}

/// `wasmcloud.provision.host[.<l>]`: a host's bootstrap (see `endpoints/host.rs` for the
/// wire, `host_auth.rs` for the signature over these exact bytes). Serialized by the
/// host's side (`client.rs`) with absent fields left out, so a signed body stays minimal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<String>,
    pub host_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Unix seconds when the host made the request; required when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

fn default_lattice() -> String {
    DEFAULT_LATTICE.to_string()
}

/// What a body looks like once its size and encoding were checked.
enum Body<'a> {
    Empty,
    Text(&'a str),
    Json(Value),
}

/// Size, UTF-8 and JSON syntax checks shared by every endpoint.
fn read_body(body: &[u8]) -> Result<Body<'_>, ProvisionError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ProvisionError::bad_request(format!(
            "the request body is {} bytes; the limit is {MAX_BODY_BYTES} (send a lattice name \
             or a small JSON object)",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ProvisionError::bad_request(format!(
            "the request body is not UTF-8 text (invalid byte at offset {}): send a lattice \
             name or a JSON object",
            e.valid_up_to()
        ))
    })?;
    // Tolerate the newline that `echo … |` adds, nothing more: " " is not "default".
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        return Ok(Body::Empty);
    }
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{' | '[' | '"')) {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ProvisionError::bad_request(format!(
                "the request body is not valid JSON ({e}); send a lattice name or a JSON object"
            ))
        })?;
        return Ok(Body::Json(value));
    }
    Ok(Body::Text(text))
}

/// A compiled schema, built once.
struct Schema {
    validator: Result<jsonschema::Validator, String>,
}

impl Schema {
    fn compile(text: &str) -> Schema {
        let validator = serde_json::from_str::<Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| jsonschema::validator_for(&v).map_err(|e| e.to_string()));
        Schema { validator }
    }

    /// Validates and deserializes a JSON object body.
    fn parse<T: DeserializeOwned>(&self, what: &str, value: Value) -> Result<T, ProvisionError> {
        let validator = self.validator.as_ref().map_err(|e| {
            ProvisionError::internal(format!("the {what} schema does not compile: {e}"))
        })?;
        // Every schema's `lattice` follows the one name rule; its own message says more
        // than a regex mismatch does.
        if let Some(Value::String(lattice)) = value.get("lattice") {
            validate_lattice(lattice)?;
        }
        let problems: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() {
                    "body".to_string()
                } else {
                    path
                };
                format!("{at}: {}", truncate(&e.to_string(), 200))
            })
            .collect();
        if !problems.is_empty() {
            return Err(ProvisionError::bad_request(format!(
                "the {what} does not match its schema (schemas/{}): {}",
                what.replace(' ', "_"),
                problems.join("; ")
            )));
        }
        serde_json::from_value(integral_numbers(value))
            .map_err(|e| ProvisionError::bad_request(format!("the {what} is not understood: {e}")))
    }
}

/// JSON Schema counts `3.0` as the integer 3 (type `integer`, `enum: [1, 3, 5]`), and
/// serde does not: so that the schema files and the parser accept exactly the same
/// bodies, a top-level number without a fractional part becomes an integer before
/// deserializing. (Every integer field of every request is top-level; the schemas bound
/// them, so a schema-valid one always fits.)
fn integral_numbers(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        for v in map.values_mut() {
            let Some(f) = v.as_f64().filter(|_| v.is_f64()) else {
                continue;
            };
            if f.fract() == 0.0 && f.abs() <= (1u64 << 53) as f64 {
                *v = Value::from(f as i64);
            }
        }
    }
    value
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn schema(cell: &'static OnceLock<Schema>, text: &str) -> &'static Schema {
    cell.get_or_init(|| Schema::compile(text))
}

static LATTICE_SCHEMA: OnceLock<Schema> = OnceLock::new();
static WADM_SCHEMA: OnceLock<Schema> = OnceLock::new();
static STATUS_SCHEMA: OnceLock<Schema> = OnceLock::new();
static HOST_SCHEMA: OnceLock<Schema> = OnceLock::new();

/// Compiles every schema now, so a broken one fails at start and not on a request.
pub fn compile_schemas() -> Result<(), String> {
    for (cell, text, name) in [
        (&LATTICE_SCHEMA, schemas::LATTICE_REQUEST, "lattice_request"),
        (&WADM_SCHEMA, schemas::WADM_REQUEST, "wadm_request"),
        (&STATUS_SCHEMA, schemas::STATUS_REQUEST, "status_request"),
        (&HOST_SCHEMA, schemas::HOST_REQUEST, "host_request"),
    ] {
        if let Err(e) = &schema(cell, text).validator {
            return Err(format!("schemas/{name}.json: {e}"));
        }
    }
    Ok(())
}

/// A body as the endpoints that take a plain lattice name read it.
enum Named {
    Empty,
    /// Plain text or a JSON string: a lattice name.
    Lattice(String),
    Object(Value),
    /// Any other JSON: refused.
    Other(Value),
}

impl Body<'_> {
    fn named(self) -> Named {
        match self {
            Body::Empty => Named::Empty,
            Body::Text(name) => Named::Lattice(name.to_string()),
            Body::Json(Value::String(name)) => Named::Lattice(name),
            Body::Json(value) if value.is_object() => Named::Object(value),
            Body::Json(value) => Named::Other(value),
        }
    }
}

fn expect_object(value: &Value, what: &str) -> Result<(), ProvisionError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(not_an_object(value, what))
    }
}

fn not_an_object(value: &Value, what: &str) -> ProvisionError {
    ProvisionError::bad_request(format!(
        "the {what} must be a JSON object or a plain lattice name, not a JSON {}",
        json_type(value)
    ))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl LatticeRequest {
    /// Plain text (`default`), a JSON string (`"default"`), a JSON object, or empty.
    pub fn parse(body: &[u8]) -> Result<Self, ProvisionError> {
        let request = match read_body(body)?.named() {
            Named::Empty => Self::of(default_lattice()),
            Named::Lattice(name) => Self::of(name),
            Named::Object(value) => {
                schema(&LATTICE_SCHEMA, schemas::LATTICE_REQUEST).parse("lattice request", value)?
            }
            Named::Other(value) => return Err(not_an_object(&value, "lattice request")),
        };
        validate_lattice(&request.lattice)?;
        Ok(request)
    }

    /// The request a plain lattice name (or an empty body) stands for.
    fn of(lattice: String) -> Self {
        LatticeRequest {
            lattice,
            dry_run: false,
            replicas: None,
        }
    }

    /// The lattice from a subject's last token (`wasmcloud.provision.lattice.<l>`) and the
    /// body's options. A body that names another lattice is refused, so that subject
    /// permissions alone decide which lattices a requester may provision.
    pub fn parse_scoped(subject_lattice: &str, body: &[u8]) -> Result<Self, ProvisionError> {
        validate_lattice(subject_lattice)?;
        let mut request = match read_body(body)? {
            Body::Empty => Self::of(subject_lattice.to_string()),
            _ => Self::parse(body)?,
        };
        if body_names_lattice(body) && request.lattice != subject_lattice {
            return Err(ProvisionError::new(
                crate::error::ErrorKind::Forbidden,
                format!(
                    "the subject names lattice `{subject_lattice}` but the body names `{}`: \
                     send the request to wasmcloud.provision.lattice.{} instead",
                    request.lattice, request.lattice
                ),
            ));
        }
        request.lattice = subject_lattice.to_string();
        Ok(request)
    }
}

/// Whether a body explicitly names a lattice (as text, a JSON string or a `lattice` key).
fn body_names_lattice(body: &[u8]) -> bool {
    match read_body(body) {
        Ok(Body::Text(_)) | Ok(Body::Json(Value::String(_))) => true,
        Ok(Body::Json(Value::Object(map))) => map.contains_key("lattice"),
        _ => false,
    }
}

impl WadmRequest {
    /// Empty, or a JSON object of options.
    pub fn parse(body: &[u8]) -> Result<Self, ProvisionError> {
        match read_body(body)? {
            Body::Empty => Ok(WadmRequest::default()),
            Body::Text(t) => Err(ProvisionError::bad_request(format!(
                "the wadm request must be empty or a JSON object such as \
                 {{\"multitenant\": false}}, not the text {:?}",
                truncate(t, 40)
            ))),
            Body::Json(value) => {
                expect_object(&value, "wadm request")?;
                schema(&WADM_SCHEMA, schemas::WADM_REQUEST).parse("wadm request", value)
            }
        }
    }
}

impl StatusRequest {
    /// Empty (the `default` lattice and wadm), a lattice name, or a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, ProvisionError> {
        // Empty: the `default` lattice and wadm; a name: that lattice alone.
        let of = |lattice: String, wadm: bool| StatusRequest {
            lattice: Some(lattice),
            wadm,
            multitenant: false,
            operator: None,
        };
        let request = match read_body(body)?.named() {
            Named::Empty => of(default_lattice(), true),
            Named::Lattice(name) => of(name, false),
            Named::Object(value) => {
                schema(&STATUS_SCHEMA, schemas::STATUS_REQUEST).parse("status request", value)?
            }
            Named::Other(value) => return Err(not_an_object(&value, "status request")),
        };
        if let Some(l) = &request.lattice {
            validate_lattice(l)?;
        }
        if request.operator.is_some() && !request.wadm {
            return Err(ProvisionError::bad_request(
                "the status request names an `operator` without `\"wadm\": true`: the operator's \
                 stream mirrors wadm's events and is reported with wadm's resources",
            ));
        }
        if request.lattice.is_none() && !request.wadm {
            return Err(ProvisionError::bad_request(
                "the status request names nothing to report: give a `lattice`, `\"wadm\": true`, or both",
            ));
        }
        Ok(request)
    }
}

impl HostRequest {
    /// A JSON object, validated against `schemas/host_request.json`.
    pub fn parse(body: &[u8]) -> Result<Self, ProvisionError> {
        parse_host_json(body)
    }
}

/// Validates a JSON object body against the host request schema (used by the host
/// bootstrap endpoint).
pub fn parse_host_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProvisionError> {
    match read_body(body)? {
        Body::Json(value) => {
            expect_object(&value, "host request")?;
            schema(&HOST_SCHEMA, schemas::HOST_REQUEST).parse("host request", value)
        }
        Body::Empty => Err(ProvisionError::bad_request(
            "the host request is empty: send {\"lattice\": \"default\", \"host_id\": \"N…\"}",
        )),
        Body::Text(_) => Err(ProvisionError::bad_request(
            "the host request must be a JSON object such as {\"lattice\": \"default\", \"host_id\": \"N…\"}",
        )),
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests;
