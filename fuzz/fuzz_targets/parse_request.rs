//! Every request parser on arbitrary bytes: each returns a request, or a 400 (403 for a
//! scoped subject and a body naming another lattice) with a well-formed reply; none
//! panics. The first byte picks the scoped subject's lattice, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmcloud_provisioner::error::{ErrorKind, ProvisionError};
use wasmcloud_provisioner::request::{
    parse_host_json, validate_lattice, LatticeRequest, StatusRequest, WadmRequest,
};

fn refused_well(e: &ProvisionError, allowed: &[ErrorKind]) {
    assert!(allowed.contains(&e.kind), "{:?}: {}", e.kind, e.message);
    assert!(!e.message.is_empty());
    assert_eq!(e.body()["error"]["code"].as_u64(), Some(u64::from(e.code())));
    let header = e.header_text();
    assert!(!header.is_empty() && !header.contains('\n') && !header.contains('\r'));
}

fuzz_target!(|data: &[u8]| {
    let (subject, body) = match data.split_first() {
        Some((first, rest)) => (format!("t{}", first % 16), rest),
        None => ("t".to_string(), data),
    };
    let bad = [ErrorKind::BadRequest];
    match LatticeRequest::parse(body) {
        Ok(r) => {
            assert!(validate_lattice(&r.lattice).is_ok());
            assert!(r.replicas.is_none_or(|n| [1, 3, 5].contains(&n)));
        }
        Err(e) => refused_well(&e, &bad),
    }
    match LatticeRequest::parse_scoped(&subject, body) {
        Ok(r) => assert_eq!(r.lattice, subject),
        Err(e) => refused_well(&e, &[ErrorKind::BadRequest, ErrorKind::Forbidden]),
    }
    match WadmRequest::parse(body) {
        Ok(r) => assert!(r.replicas.is_none_or(|n| [1, 3, 5].contains(&n))),
        Err(e) => refused_well(&e, &bad),
    }
    match StatusRequest::parse(body) {
        Ok(r) => assert!(r.wadm || r.lattice.is_some_and(|l| validate_lattice(&l).is_ok())),
        Err(e) => refused_well(&e, &bad),
    }
    if let Err(e) = parse_host_json::<serde_json::Value>(body) {
        refused_well(&e, &bad);
    }
});
