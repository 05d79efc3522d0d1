//! The JSON schemas in `schemas/` against the typed requests and replies, field by field
//! and both ways: a field the struct has and the schema lacks fails, and so does the
//! reverse; so does a field one side requires and the other does not (issue 11).
//!
//! Serde's view is what counts, not the Rust source: a fully populated value of each struct
//! is serialized and its keys are the schema's `properties`; for a reply, a minimal value
//! (every optional field absent) has exactly the schema's `required` keys; for a request,
//! a field is required when the struct refuses the full value without it. Objects nested in
//! a reply (each resource, each drift finding) are walked through the schema's `$ref`s.
//!
//! The same requests and replies are also checked as bodies on the wire by the service
//! tests (`tests/service.rs` validates every reply against these files).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use wasmcloud_provisioner::catalog::{App, Kind, Operator};
use wasmcloud_provisioner::error::{Outcome, ProvisionError, FAILED};
use wasmcloud_provisioner::plan::{Action, Finding, ResourceReport};
use wasmcloud_provisioner::reply::{HostReply, ProvisionReply, ReplyHead};
use wasmcloud_provisioner::request::{HostRequest, LatticeRequest, StatusRequest, WadmRequest};

fn schema(file: &str) -> Value {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Follows a `$ref` (`#/$defs/x` in `file`, or `other.json#/$defs/x`).
fn resolve(file: &str, node: &Value) -> (String, Value) {
    let Some(reference) = node["$ref"].as_str() else {
        return (file.to_string(), node.clone());
    };
    let (target, pointer) = reference.split_once('#').expect("a $ref with a fragment");
    let target = if target.is_empty() { file } else { target };
    let found = schema(target)
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{file}: {reference} points nowhere"))
        .clone();
    (target.to_string(), found)
}

fn properties(node: &Value) -> BTreeSet<String> {
    node["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn required(node: &Value) -> BTreeSet<String> {
    node["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn same(what: &str, struct_side: BTreeSet<String>, schema_side: BTreeSet<String>) {
    let only_struct: Vec<_> = struct_side.difference(&schema_side).collect();
    let only_schema: Vec<_> = schema_side.difference(&struct_side).collect();
    assert!(
        only_struct.is_empty() && only_schema.is_empty(),
        "{what}: the struct has {only_struct:?} that the schema lacks, the schema has \
         {only_schema:?} that the struct lacks"
    );
}

/// A request: its fields are the schema's properties, the fields it cannot do without are
/// the schema's required ones, and the full value goes back and forth unchanged.
fn check_request<T>(file: &str, full: T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let node = schema(file);
    let value = serde_json::to_value(&full).expect("serialize");
    same(
        &format!("{file} properties"),
        keys(&value),
        properties(&node),
    );
    let needed: BTreeSet<String> = keys(&value)
        .into_iter()
        .filter(|field| {
            let mut without = value.clone();
            without.as_object_mut().map(|o| o.remove(field));
            serde_json::from_value::<T>(without).is_err()
        })
        .collect();
    same(&format!("{file} required"), needed, required(&node));
    assert_eq!(
        serde_json::from_value::<T>(value).expect("deserialize"),
        full
    );
    let validator = jsonschema::validator_for(&node).expect("the schema compiles");
    let value = serde_json::to_value(&full).expect("serialize");
    assert!(validator.is_valid(&value), "{file}: {value} is not valid");
}

/// A reply: the full value's keys are the schema's properties, the minimal value's (when
/// given) its required ones; nested objects are walked where the full value has one.
fn check_reply(file: &str, node: &Value, full: &Value, minimal: Option<&Value>, path: &str) {
    let (file, node) = resolve(file, node);
    same(
        &format!("{file} {path} properties"),
        keys(full),
        properties(&node),
    );
    if let Some(minimal) = minimal {
        same(
            &format!("{file} {path} required"),
            keys(minimal),
            required(&node),
        );
    }
    for (field, value) in full.as_object().expect("an object") {
        let Some(nested) = value
            .as_array()
            .and_then(|a| a.first())
            .filter(|v| v.is_object())
        else {
            continue;
        };
        let nested_minimal = minimal.and_then(|m| m[field].as_array()?.first());
        let (item_file, item) = resolve(&file, &node["properties"][field]);
        check_reply(
            &item_file,
            &item["items"],
            nested,
            nested_minimal,
            &format!("{path}.{field}[]"),
        );
    }
}

fn finding(breaks: Option<App>) -> Finding {
    Finding {
        field: "max_age".into(),
        want: json!(0),
        have: json!(1),
        breaks,
        why: "why".into(),
    }
}

/// A report with every optional field set (`full`) or none.
fn report(full: bool) -> ResourceReport {
    ResourceReport {
        name: "LATTICEDATA_x".into(),
        kind: Kind::Kv,
        stream: "KV_LATTICEDATA_x".into(),
        action: Action::Updated,
        replicas: 3,
        desired_replicas: 3,
        previous_replicas: full.then_some(1),
        drift: if full {
            vec![finding(Some(App::Host))]
        } else {
            vec![]
        },
        notes: if full {
            vec![finding(Some(App::Wadm))]
        } else {
            vec![]
        },
        warm: false,
    }
}

#[test]
fn request_structs_match_their_schemas() {
    let host_id = nkeys::KeyPair::new_server().public_key();
    check_request(
        "lattice_request.json",
        LatticeRequest {
            lattice: "x".into(),
            dry_run: true,
            replicas: Some(3),
        },
    );
    check_request(
        "wadm_request.json",
        WadmRequest {
            multitenant: true,
            operator: Some(Operator::V0_5),
            dry_run: true,
            replicas: Some(3),
        },
    );
    check_request(
        "status_request.json",
        StatusRequest {
            lattice: Some("x".into()),
            wadm: true,
            multitenant: true,
            operator: Some(Operator::V0_4),
        },
    );
    check_request(
        "host_request.json",
        HostRequest {
            lattice: Some("x".into()),
            host_id,
            version: Some("1.9.2".into()),
            issued_at: Some(1_767_225_600),
            dry_run: true,
        },
    );
}

#[test]
fn provision_reply_matches_its_schema() {
    let full = ProvisionReply {
        dry_run: true,
        js_domain: Some("hub".into()),
        lattice: Some("x".into()),
        multitenant: Some(true),
        operator: Some(Operator::V0_4),
        replicas_note: Some("floor".into()),
        resources: vec![report(true)],
        wadm: true,
    };
    // Every optional field absent: the head `prepare` starts from.
    let minimal = ReplyHead::provision().with_resources(vec![report(false)]);
    let file = "provision_response.json";
    let node = schema(file);
    let to_value = |r: &ProvisionReply<Vec<ResourceReport>>| serde_json::to_value(r).unwrap();
    check_reply(
        file,
        &node,
        &to_value(&full),
        Some(&to_value(&minimal)),
        "reply",
    );
    // A finding without `breaks` (a note) has exactly the required fields.
    let note = serde_json::to_value(finding(None)).unwrap();
    let drift = serde_json::to_value(finding(Some(App::Wadm))).unwrap();
    check_reply(
        file,
        &node["$defs"]["finding"],
        &drift,
        Some(&note),
        "finding",
    );
    let validator = jsonschema::validator_for(&node).expect("compiles");
    for reply in [&full, &minimal] {
        let value = to_value(reply);
        assert!(validator.is_valid(&value), "{value}");
    }
}

#[test]
fn host_reply_matches_its_schema() {
    let reply = |resources| HostReply {
        buckets: BTreeMap::from([("latticedata".into(), "LATTICEDATA_x".into())]),
        dry_run: false,
        host_id: nkeys::KeyPair::new_server().public_key(),
        js_domain: None,
        lattice: "x".into(),
        resources,
        signed: true,
    };
    let full = serde_json::to_value(reply(vec![report(true)])).unwrap();
    let minimal = serde_json::to_value(reply(vec![report(false)])).unwrap();
    let file = "host_response.json";
    check_reply(file, &schema(file), &full, Some(&minimal), "reply");
    // What a host reads back is what the service wrote.
    let read: HostReply = serde_json::from_value(full.clone()).expect("a client reads it");
    assert_eq!(serde_json::to_value(read).unwrap(), full);
}

/// The error body's `error` object and a failed resource's entry are as the schema says.
#[test]
fn error_body_matches_its_schema() {
    let file = "error_response.json";
    let node = schema(file);
    let plain = ProvisionError::bad_request("bad").body();
    same("error_response required", keys(&plain), required(&node));
    same(
        "error_response error",
        keys(&plain["error"]),
        properties(&node["properties"]["error"]),
    );
    let failed = json!({
        "name": "CONFIGDATA_x", "kind": "kv", "stream": "KV_CONFIGDATA_x",
        "action": FAILED, "error": plain["error"],
    });
    let error = ProvisionError::bad_request("bad").with_outcome(
        Outcome::default()
            .resource("LATTICEDATA_x", "created", report(false))
            .resource("CONFIGDATA_x", FAILED, &failed),
    );
    let body = error.body();
    same("error_response", keys(&body), properties(&node));
    same(
        "error_response failed resource",
        keys(&body["resources"][1]),
        properties(&node["properties"]["resources"]["items"]),
    );
    let validator = jsonschema::validator_for(&node).expect("compiles");
    assert!(validator.is_valid(&body), "{body}");
}
