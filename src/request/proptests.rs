//! Request parsing at volume: arbitrary bytes and arbitrary JSON through every parser.
//! Whatever comes in, a parser returns a request that is valid by every rule, or a
//! well-formed 400 (403 for a scoped subject and a body naming another lattice), and never
//! panics. Together these properties run 10,800 generated cases (`cargo test --lib`).
//!
//! A failure prints the minimal input; `PROPTEST_CASES` scales every property.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::error::ErrorKind;

/// The replicas a request may ask for (the schemas' `enum`).
const REPLICAS: [usize; 3] = [1, 3, 5];

/// Checks one outcome: an accepted request must pass `valid`, a refused one be one of
/// `refusals` with a well-formed reply.
fn check<T>(
    what: &str,
    body: &[u8],
    outcome: Result<T, ProvisionError>,
    valid: impl FnOnce(&T) -> Result<(), String>,
    refusals: &[ErrorKind],
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(request) => {
            if let Err(why) = valid(&request) {
                return Err(TestCaseError::fail(format!(
                    "{what} accepted {body:?} but {why}"
                )));
            }
        }
        Err(e) => {
            prop_assert!(
                refusals.contains(&e.kind),
                "{what} refused {body:?} with {:?}: {}",
                e.kind,
                e.message
            );
            prop_assert!(!e.message.is_empty(), "{what}: empty message for {body:?}");
            let reply = e.body();
            prop_assert_eq!(reply["error"]["code"].as_u64(), Some(u64::from(e.code())));
            prop_assert!(reply["error"]["message"].is_string());
            let header = e.header_text();
            prop_assert!(!header.is_empty() && header.chars().count() <= 512);
            prop_assert!(!header.contains('\n') && !header.contains('\r'));
        }
    }
    Ok(())
}

fn lattice_ok(lattice: &str) -> Result<(), String> {
    validate_lattice(lattice).map_err(|e| format!("the lattice is invalid: {}", e.message))
}

fn replicas_ok(replicas: Option<usize>) -> Result<(), String> {
    match replicas {
        Some(r) if !REPLICAS.contains(&r) => Err(format!("replicas {r}")),
        _ => Ok(()),
    }
}

/// Runs `body` through every parser and checks each outcome.
fn every_parser(body: &[u8], subject_lattice: &str) -> Result<(), TestCaseError> {
    use ErrorKind::{BadRequest, Forbidden};
    check(
        "lattice",
        body,
        LatticeRequest::parse(body),
        |r| lattice_ok(&r.lattice).and(replicas_ok(r.replicas)),
        &[BadRequest],
    )?;
    check(
        "lattice (scoped)",
        body,
        LatticeRequest::parse_scoped(subject_lattice, body),
        |r| {
            lattice_ok(&r.lattice)?;
            replicas_ok(r.replicas)?;
            if r.lattice != subject_lattice {
                return Err(format!("the lattice is {:?}, not the subject's", r.lattice));
            }
            Ok(())
        },
        &[BadRequest, Forbidden],
    )?;
    check(
        "wadm",
        body,
        WadmRequest::parse(body),
        |r| replicas_ok(r.replicas),
        &[BadRequest],
    )?;
    check(
        "status",
        body,
        StatusRequest::parse(body),
        |r| match &r.lattice {
            Some(l) => lattice_ok(l),
            None if r.wadm => Ok(()),
            None => Err("it names nothing to report".into()),
        },
        &[BadRequest],
    )?;
    check(
        "host",
        body,
        parse_host_json::<Value>(body),
        |v| match v["host_id"].as_str() {
            Some(id) if id.len() == 56 && id.starts_with('N') => Ok(()),
            _ => Err(format!("host_id is {}", v["host_id"])),
        },
        &[BadRequest],
    )?;
    Ok(())
}

/// Field names the parsers know, and some they do not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "lattice", "dry_run", "replicas", "wadm", "multitenant", "host_id", "version",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_]{1,12}",
        1 => any::<String>(),
    ]
}

/// Strings that are, or nearly are, lattice names and host ids.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_-]{1,20}",
        1 => "[A-Za-z0-9_-]{120,140}",
        1 => "N[A-Z2-7]{55}",
        2 => "[A-Za-z0-9_.*> \t\n-]{0,20}",
        1 => any::<String>(),
    ]
}

/// Any JSON value, with leaves biased toward what the schemas expect.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![0i64, 1, 2, 3, 4, 5, 6, -1, i64::MAX, i64::MIN])
            .prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object of known and unknown fields.
fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..5)
        .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), subject in "[A-Za-z0-9_-]{1,16}") {
        every_parser(&body, &subject)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2800))]

    #[test]
    fn arbitrary_json(value in json_value(), subject in "[A-Za-z0-9_-]{1,16}") {
        every_parser(value.to_string().as_bytes(), &subject)?;
    }

    #[test]
    fn arbitrary_json_objects(value in json_object(), subject in "[A-Za-z0-9_-]{1,16}", newline in any::<bool>()) {
        let mut body = value.to_string().into_bytes();
        if newline {
            body.push(b'\n');
        }
        every_parser(&body, &subject)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1200))]

    #[test]
    fn arbitrary_text(name in text(), subject in "[A-Za-z0-9_-]{1,16}") {
        every_parser(name.as_bytes(), &subject)?;
    }
}
