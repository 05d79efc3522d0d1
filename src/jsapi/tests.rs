use super::*;

fn info(answer: Value) -> StreamInfo {
    let mut answer = answer;
    answer["config"] = json!({ "name": "S", "num_replicas": 3 });
    StreamInfo::from_response(answer).expect("valid answer")
}

#[test]
fn a_timed_out_change_says_it_may_still_complete_and_is_safe_to_repeat() {
    let create = JsError::TimedOut.explain(Call::Create("KV_X"), None);
    assert_eq!(create.code(), 503);
    for words in [
        "may still complete",
        "safe",
        "--js-timeout",
        "STREAM.CREATE.KV_X",
    ] {
        assert!(
            create.message.contains(words),
            "{words}: {}",
            create.message
        );
    }
    let raise = JsError::TimedOut.explain(Call::RaiseReplicas("KV_X", 3), Some("hub"));
    assert!(
        raise.message.contains("may still complete"),
        "{}",
        raise.message
    );
    assert!(
        raise.message.contains("STREAM.UPDATE.KV_X"),
        "{}",
        raise.message
    );
    assert!(raise.message.contains("domain `hub`"), "{}", raise.message);
    // A look-up changes nothing: no promise about an outcome.
    let lookup = JsError::TimedOut.explain(Call::Lookup("KV_X"), None);
    assert!(
        !lookup.message.contains("may still complete"),
        "{}",
        lookup.message
    );
    assert!(
        lookup.message.contains("STREAM.INFO.KV_X"),
        "{}",
        lookup.message
    );
}

#[test]
fn limits_name_the_limit_and_what_to_change() {
    let api = |err_code: u64, code: u64, description: &str| JsError::Api {
        code,
        err_code,
        description: description.into(),
    };
    let cases = [
        (
            api(10047, 500, "insufficient storage resources available"),
            507,
            &["max_file", "--max-bytes", "nsc edit account"][..],
        ),
        (
            api(10028, 500, "insufficient memory resources available"),
            507,
            &["max_mem", "--max-bytes"][..],
        ),
        (
            api(10023, 500, "insufficient resources"),
            507,
            &["max_file_store", "server"][..],
        ),
        (
            api(10002, 400, "resource limits exceeded for account"),
            507,
            &["max_file"][..],
        ),
        (
            api(10027, 400, "maximum number of streams reached"),
            507,
            &["max_streams", "--js-streams"][..],
        ),
        (
            api(
                10113,
                400,
                "account requires a stream config to have max bytes set",
            ),
            409,
            &["max_bytes_required", "--max-bytes"][..],
        ),
        (
            api(
                10122,
                400,
                "stream max bytes exceeds account limit max stream bytes",
            ),
            409,
            &["disk_max_stream_bytes", "--max-bytes"][..],
        ),
        (
            api(
                10120,
                400,
                "no jetstream default or applicable tiered limit present",
            ),
            409,
            &["tier"][..],
        ),
    ];
    for (error, code, words) in cases {
        let e = error.explain(Call::Create("KV_LATTICEDATA_x"), None);
        assert_eq!(e.code(), code, "{}", e.message);
        assert!(e.message.contains("KV_LATTICEDATA_x"), "{}", e.message);
        for word in words {
            assert!(e.message.contains(word), "{word}: {}", e.message);
        }
        assert!(!e.message.contains("unexpected"), "{}", e.message);
    }
}

#[test]
fn a_single_server_is_not_clustered() {
    // STREAM.INFO of a single server names a leader but no cluster; its create
    // answer has no `cluster` at all.
    assert!(!info(json!({ "cluster": { "leader": "n1" } })).clustered);
    assert!(!info(json!({})).clustered);
    assert!(info(json!({ "cluster": { "name": "c1", "leader": "n2" } })).clustered);
}

#[test]
fn quorum_is_lost_only_without_leader_and_with_most_peers_offline() {
    let peer = |name: &str, offline: bool| json!({ "name": name, "offline": offline });
    let lost = json!({ "name": "c1", "replicas": [peer("n1", false), peer("n2", true), peer("n3", true)] });
    assert!(info(json!({ "cluster": lost })).quorum_lost);
    // An election in progress: no leader, but the peers are up.
    let electing = json!({ "name": "c1", "replicas": [peer("n1", false), peer("n2", false), peer("n3", true)] });
    assert!(!info(json!({ "cluster": electing })).quorum_lost);
    // A leader that has not noticed yet that both followers are gone.
    let stale =
        json!({ "name": "c1", "leader": "n1", "replicas": [peer("n2", true), peer("n3", true)] });
    assert!(info(json!({ "cluster": stale })).quorum_lost);
    let one_down =
        json!({ "name": "c1", "leader": "n1", "replicas": [peer("n2", false), peer("n3", true)] });
    assert!(!info(json!({ "cluster": one_down })).quorum_lost);
    assert!(!info(json!({ "cluster": { "name": "c1", "leader": "n1" } })).quorum_lost);
}
