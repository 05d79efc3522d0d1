use std::collections::HashSet;

use super::*;

fn request(kp: &nkeys::KeyPair, issued_at: Option<i64>) -> (HostRequest, Vec<u8>) {
    let r = HostRequest {
        lattice: Some("default".into()),
        host_id: kp.public_key(),
        version: None,
        issued_at,
        dry_run: false,
    };
    let body = serde_json::to_vec(&r).unwrap();
    (r, body)
}

fn now() -> (SystemTime, i64) {
    let t = SystemTime::now();
    (t, t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64)
}

#[test]
fn host_ids_must_be_server_keys() {
    assert!(validate_host_id(&nkeys::KeyPair::new_server().public_key()).is_ok());
    let user = nkeys::KeyPair::new_user().public_key();
    assert!(validate_host_id(&user)
        .unwrap_err()
        .message
        .contains("server"));
    let mut bad = nkeys::KeyPair::new_server().public_key();
    bad.replace_range(10..11, if &bad[10..11] == "A" { "B" } else { "A" });
    assert_eq!(validate_host_id(&bad).unwrap_err().code(), 400);
    assert!(validate_host_id("N").is_err());
}

#[test]
fn signatures_are_checked_against_host_id_and_body() {
    let kp = nkeys::KeyPair::new_server();
    let (t, secs) = now();
    let (r, body) = request(&kp, Some(secs));
    let sig = sign(&kp, &body).unwrap();
    let required = HostAuth {
        require_signed: true,
        ..Default::default()
    };
    assert!(authenticate(&required, &r, &body, Some(&sig), t).unwrap());
    // Unsigned, when required.
    assert_eq!(
        authenticate(&required, &r, &body, None, t)
            .unwrap_err()
            .code(),
        403
    );
    // Unsigned and not required: served, not signed.
    assert!(!authenticate(&HostAuth::default(), &r, &body, None, t).unwrap());
    // Another body, another key, garbage.
    let mut other = body.clone();
    other.push(b' ');
    assert!(authenticate(&required, &r, &other, Some(&sig), t).is_err());
    let thief = nkeys::KeyPair::new_server();
    let forged = sign(&thief, &body).unwrap();
    assert!(authenticate(&required, &r, &body, Some(&forged), t).is_err());
    assert!(authenticate(&required, &r, &body, Some("***"), t).is_err());
    // A bad signature is refused even when signatures are optional.
    assert!(authenticate(&HostAuth::default(), &r, &body, Some(&forged), t).is_err());
}

#[test]
fn signed_requests_must_be_fresh_and_trusted() {
    let kp = nkeys::KeyPair::new_server();
    let (t, secs) = now();
    let auth = HostAuth {
        require_signed: true,
        trusted: None,
        max_age: Duration::from_secs(60),
        ..Default::default()
    };
    for (issued_at, ok) in [
        (None, false),
        (Some(secs - 3600), false),
        (Some(secs + 3600), false),
        (Some(secs - 30), true),
        // Ahead of the clock: a small skew only, well under the max age.
        (Some(secs + 10), true),
        (Some(secs + 30), true),
        (Some(secs + 31), false),
        (Some(secs + 59), false),
        (Some(i64::MAX), false),
        (Some(i64::MIN), false),
    ] {
        let (r, body) = request(&kp, issued_at);
        let sig = sign(&kp, &body).unwrap();
        assert_eq!(
            authenticate(&auth, &r, &body, Some(&sig), t).is_ok(),
            ok,
            "{issued_at:?}"
        );
    }
    let (r, body) = request(&kp, Some(secs));
    let sig = sign(&kp, &body).unwrap();
    let pinned = HostAuth {
        trusted: Some(HashSet::from([nkeys::KeyPair::new_server().public_key()])),
        ..auth
    };
    let e = authenticate(&pinned, &r, &body, Some(&sig), t).unwrap_err();
    assert!(e.message.contains("trusted"), "{}", e.message);
}

#[test]
fn trusted_keys_imply_signatures_and_are_checked() {
    let kp = nkeys::KeyPair::new_server();
    let auth = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![kp.public_key()],
        host_signature_max_age: Some(60),
        ..Default::default()
    })
    .unwrap();
    assert!(auth.require_signed);
    assert!(auth.trusted.unwrap().contains(&kp.public_key()));
    let user = nkeys::KeyPair::new_user();
    let e = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![user.public_key()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.contains("--trusted-host-key"), "{e}");
    let (_dir, path) = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("# hosts\n{}  # edge-1\n\n", kp.public_key())).unwrap();
        (dir, path)
    };
    let auth = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys_file: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(auth.trusted.unwrap().len(), 1);
    let open = HostAuth::from_args(&HostAuthArgs::default()).unwrap();
    assert!(!open.require_signed && open.trusted.is_none());
}

/// `N…=glob,…` binds a trusted key to lattices, on the flag and in the file.
#[test]
fn trusted_keys_can_be_bound_to_lattices() {
    let a = nkeys::KeyPair::new_server().public_key();
    let b = nkeys::KeyPair::new_server().public_key();
    let c = nkeys::KeyPair::new_server().public_key();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("{c} = tenant-c, tenant-c-*  # edge\n")).unwrap();
    let auth = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![format!("{a}=tenant-a,tenant-a-*"), b.clone()],
        trusted_host_keys_file: Some(path),
        ..Default::default()
    })
    .unwrap();
    let trusted = auth.trusted.clone().unwrap();
    assert!(trusted.contains(&a) && trusted.contains(&b) && trusted.contains(&c));
    assert!(auth.check_lattice(&a, "tenant-a").is_ok());
    assert!(auth.check_lattice(&a, "tenant-a-1").is_ok());
    let e = auth.check_lattice(&a, "tenant-b").unwrap_err();
    assert_eq!(e.code(), 403);
    assert!(!e.message.contains("tenant-a"), "{}", e.message);
    assert!(auth.check_lattice(&c, "tenant-c-9").is_ok());
    assert!(auth.check_lattice(&c, "tenant-a").is_err());
    // An unbound key serves every lattice.
    assert!(auth.check_lattice(&b, "anything").is_ok());
    for bad in [format!("{a}="), format!("{a}=a.b"), "NOTAKEY=x".to_string()] {
        assert!(
            HostAuth::from_args(&HostAuthArgs {
                trusted_host_keys: vec![bad.clone()],
                ..Default::default()
            })
            .is_err(),
            "{bad}"
        );
    }
    let e = HostAuth::from_args(&HostAuthArgs {
        trusted_host_keys: vec![format!("{a}=x"), a.clone()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.contains("both"), "{e}");
}
