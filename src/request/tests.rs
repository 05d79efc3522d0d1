use super::*;

fn lattice(body: &[u8]) -> Result<String, String> {
    LatticeRequest::parse(body)
        .map(|r| r.lattice)
        .map_err(|e| e.message)
}

#[test]
fn accepted_forms() {
    assert_eq!(lattice(b"").unwrap(), "default");
    assert_eq!(lattice(b"prod-1").unwrap(), "prod-1");
    assert_eq!(lattice(b"prod_1\n").unwrap(), "prod_1");
    assert_eq!(lattice(b"\"json-string\"").unwrap(), "json-string");
    assert_eq!(lattice(br#"{"lattice":"x"}"#).unwrap(), "x");
    assert_eq!(lattice(b"{}").unwrap(), "default");
    let r = LatticeRequest::parse(br#"{"lattice":"x","dry_run":true,"replicas":3}"#).unwrap();
    assert!(r.dry_run);
    assert_eq!(r.replicas, Some(3));
}

#[test]
fn refused_forms_say_why() {
    for (body, needle) in [
        (&b"a.b"[..], "contains '.'"),
        (b"*", "contains '*'"),
        (b">", "contains '>'"),
        (b" ", "contains ' '"),
        (b"\"\"", "empty"),
        (b"{\"lattice\":\"\"}", "empty"),
        (b"{\"lattice\":\"a.b\"}", "contains '.'"),
        (b"{\"lattice\":5}", "schema"),
        (b"{\"lattice\":\"x\",\"extra\":1}", "schema"),
        (b"{\"replicas\":2}", "schema"),
        (b"{bad json", "not valid JSON"),
        (b"[1,2]", "not a JSON array"),
        (b"\xff\xfe", "not UTF-8"),
    ] {
        let err = lattice(body).unwrap_err();
        assert!(err.contains(needle), "{body:?}: {err}");
    }
    assert!(lattice("x".repeat(300).as_bytes())
        .unwrap_err()
        .contains("300 characters"));
    assert!(lattice(&vec![b'a'; 1 << 20]).unwrap_err().contains("limit"));
}

#[test]
fn scoped_subject_wins_and_conflicts_are_refused() {
    let r = LatticeRequest::parse_scoped("tenant-a", b"").unwrap();
    assert_eq!(r.lattice, "tenant-a");
    let r = LatticeRequest::parse_scoped("tenant-a", br#"{"dry_run":true}"#).unwrap();
    assert!(r.dry_run);
    assert_eq!(r.lattice, "tenant-a");
    assert!(LatticeRequest::parse_scoped("tenant-a", b"tenant-b").is_err());
    assert!(LatticeRequest::parse_scoped("tenant-a", br#"{"lattice":"default"}"#).is_err());
    assert!(LatticeRequest::parse_scoped("*", b"").is_err());
}

#[test]
fn wadm_and_status_forms() {
    assert_eq!(WadmRequest::parse(b"").unwrap(), WadmRequest::default());
    assert!(
        WadmRequest::parse(br#"{"multitenant":true}"#)
            .unwrap()
            .multitenant
    );
    assert!(WadmRequest::parse(b"yes").is_err());
    assert_eq!(
        WadmRequest::parse(br#"{"operator":"0.4"}"#)
            .unwrap()
            .operator,
        Some(Operator::V0_4)
    );
    assert_eq!(
        WadmRequest::parse(br#"{"operator":"0.5","multitenant":true}"#)
            .unwrap()
            .operator,
        Some(Operator::V0_5)
    );
    for bad in [
        &br#"{"operator":"0.6"}"#[..],
        br#"{"operator":"0.4.2"}"#,
        br#"{"operator":0.4}"#,
        br#"{"operator":null}"#,
    ] {
        let e = WadmRequest::parse(bad).unwrap_err().message;
        assert!(e.contains("/operator") && e.contains("0.4"), "{e}");
    }
    assert_eq!(
        StatusRequest::parse(br#"{"wadm":true,"operator":"0.5"}"#)
            .unwrap()
            .operator,
        Some(Operator::V0_5)
    );
    assert!(StatusRequest::parse(br#"{"lattice":"x","operator":"0.5"}"#)
        .unwrap_err()
        .message
        .contains("operator"));
    assert!(WadmRequest::parse(br#"{"multitenant":"yes"}"#).is_err());
    let s = StatusRequest::parse(b"").unwrap();
    assert!(s.wadm && s.lattice.as_deref() == Some("default"));
    assert!(StatusRequest::parse(br#"{"wadm":false}"#).is_err());
}

/// The schema files and the parser agree on every number form: `3.0` is the integer 3
/// for both; fractions, strings and out-of-range values are refused by both.
#[test]
fn schemas_and_parser_agree_on_numbers() {
    let file = |name: &str| -> Value {
        let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let lattice = jsonschema::validator_for(&file("lattice_request.json")).unwrap();
    let wadm = jsonschema::validator_for(&file("wadm_request.json")).unwrap();
    let host = jsonschema::validator_for(&file("host_request.json")).unwrap();
    let key = nkeys::KeyPair::new_server().public_key();
    for (replicas, ok) in [
        ("3", true),
        ("3.0", true),
        ("1.0", true),
        ("5e0", true),
        ("3.5", false),
        ("2", false),
        ("2.0", false),
        ("\"3\"", false),
        ("-1", false),
        ("1e300", false),
    ] {
        let body = format!(r#"{{"lattice":"x","replicas":{replicas}}}"#);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(lattice.is_valid(&value), ok, "lattice schema, {body}");
        let parsed = LatticeRequest::parse(body.as_bytes());
        assert_eq!(parsed.is_ok(), ok, "lattice parser, {body}: {parsed:?}");
        if ok {
            assert_eq!(
                parsed.unwrap().replicas,
                Some(value["replicas"].as_f64().unwrap() as usize)
            );
        }
        let body = format!(r#"{{"replicas":{replicas}}}"#);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(wadm.is_valid(&value), ok, "wadm schema, {body}");
        assert_eq!(
            WadmRequest::parse(body.as_bytes()).is_ok(),
            ok,
            "wadm parser, {body}"
        );
    }
    for (issued_at, ok) in [
        ("1767225600", true),
        ("1767225600.0", true),
        ("1767225600.5", false),
        ("-1", false),
        ("1e300", false),
        ("253402300799", true),
        ("253402300800", false),
        ("\"1767225600\"", false),
    ] {
        let body = format!(r#"{{"host_id":"{key}","issued_at":{issued_at}}}"#);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(host.is_valid(&value), ok, "host schema, {body}");
        let parsed = HostRequest::parse(body.as_bytes());
        assert_eq!(parsed.is_ok(), ok, "host parser, {body}: {parsed:?}");
    }
}

#[test]
fn reserved_names_are_refused_in_every_form() {
    for name in [
        "wasmcloud",
        "wasmbus",
        "wadm",
        "_INBOX",
        "_R_",
        "$JS",
        "$SYS",
    ] {
        for body in [
            name.to_string(),
            format!("\"{name}\""),
            format!(r#"{{"lattice":"{name}"}}"#),
        ] {
            let e = LatticeRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.code(), 400, "{body}");
            assert!(e.message.contains("reserved"), "{body}: {}", e.message);
            let e = StatusRequest::parse(body.as_bytes()).unwrap_err();
            assert!(
                e.message.contains("reserved"),
                "status {body}: {}",
                e.message
            );
        }
        let e = LatticeRequest::parse_scoped(name, b"").unwrap_err();
        assert!(
            e.message.contains("reserved"),
            "scoped {name}: {}",
            e.message
        );
    }
    assert!(LatticeRequest::parse(b"WADM").is_ok());
}

#[test]
fn schema_pattern_is_the_code_rule() {
    let schema: Value = serde_json::from_str(schemas::LATTICE_REQUEST).unwrap();
    assert_eq!(
        schema["properties"]["lattice"]["pattern"],
        format!("^[A-Za-z0-9_-]{{1,{MAX_LATTICE_LEN}}}$")
    );
    compile_schemas().unwrap();
}
