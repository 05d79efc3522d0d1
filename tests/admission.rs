//! `--max-lattices` against real servers: the count is what JetStream holds now (a lattice
//! whose buckets were deleted is new again, whatever an instance remembers), and several
//! instances admitting at the same moment never exceed the cap together (the reservation
//! is a compare-and-set in JetStream).

mod common;

use std::collections::BTreeSet;

use futures::StreamExt;
use serde_json::Value;

use common::provisioner::{wait_discoverable, Options, RunningService};
use common::reply::call;
use common::NatsServer;
use wasmcloud_provisioner::policy::{lattices_of, LatticePolicy};

/// An in-process instance with a lattice cap; stops when dropped.
async fn start_capped(url: &str, max: usize) -> RunningService {
    Options::new()
        .policy(LatticePolicy::new(vec![], Some(max)).expect("policy"))
        .spawn(url)
        .await
}

/// A lattice request: `None` for success, else the ADR-32 error code.
async fn ask(client: &async_nats::Client, lattice: &str) -> (Option<u16>, Value) {
    call(
        client,
        &format!("wasmcloud.provision.lattice.{lattice}"),
        "",
    )
    .await
    .parts()
}

/// The lattices whose streams exist.
async fn lattices(js: &async_nats::jetstream::Context) -> BTreeSet<String> {
    let names: Vec<String> = js
        .stream_names()
        .map(|n| n.expect("stream name"))
        .collect()
        .await;
    lattices_of(&names)
}

#[tokio::test]
async fn a_lattice_whose_buckets_were_deleted_is_counted_as_new_again() {
    let server = NatsServer::start();
    let admin = common::connect(&server.url()).await;
    let js = async_nats::jetstream::new(admin.clone());
    let instance = start_capped(&server.url(), 2).await;
    wait_discoverable(&admin, 1).await;

    for l in ["first", "second"] {
        let (code, body) = ask(&admin, l).await;
        assert_eq!(code, None, "{l}: {body}");
    }
    // An admin deletes `second`'s buckets; its place is free, and `third` takes it.
    for s in ["KV_LATTICEDATA_second", "KV_CONFIGDATA_second"] {
        js.delete_stream(s).await.expect("admin deletes");
    }
    let (code, body) = ask(&admin, "third").await;
    assert_eq!(code, None, "{body}");
    // The instance still remembers `second`, but it does not exist: it is a new lattice,
    // and the cap is reached.
    let (code, body) = ask(&admin, "second").await;
    assert_eq!(code, Some(429), "{body}");
    assert_eq!(
        lattices(&js).await,
        BTreeSet::from(["first".to_string(), "third".to_string()])
    );
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_at_the_cap_admit_exactly_the_cap() {
    const ROUNDS: usize = 8;
    const MAX: usize = 5;
    const CONCURRENT: usize = 20;
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        let server = NatsServer::start();
        let admin = common::connect(&server.url()).await;
        let js = async_nats::jetstream::new(admin.clone());
        let a = start_capped(&server.url(), MAX).await;
        let b = start_capped(&server.url(), MAX).await;
        wait_discoverable(&admin, 2).await;
        // The cap minus one exist.
        for i in 0..MAX - 1 {
            let (code, body) = ask(&admin, &format!("old{i}")).await;
            assert_eq!(code, None, "{body}");
        }
        let requests: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let admin = admin.clone();
                tokio::spawn(async move { ask(&admin, &format!("new{i}")).await })
            })
            .collect();
        let (mut admitted, mut refused) = (0, 0);
        for r in requests {
            match r.await.expect("request task") {
                (None, _) => admitted += 1,
                (Some(429), _) => refused += 1,
                (code, body) => panic!("round {round}: unexpected {code:?}: {body}"),
            }
        }
        let exist = lattices(&js).await.len();
        figures.push(format!(
            "round {round}: {admitted} admitted, {refused} refused (429), {exist} lattices"
        ));
        assert_eq!(admitted, 1, "round {round}: {figures:?}");
        assert_eq!(refused, CONCURRENT - 1, "round {round}");
        assert_eq!(exist, MAX, "round {round}: {figures:?}");
        a.stop().await;
        b.stop().await;
    }
    eprintln!(
        "two instances, cap {MAX}, {CONCURRENT} concurrent new lattices at cap-1:\n{}",
        figures.join("\n")
    );
}

/// A bookkeeping bucket someone created first with a `subject_transform`: its key is
/// stored where reads never find it, so the reservations would count for nothing (before
/// the fix this request was admitted). New lattices are refused (503) instead; nothing is created.
#[tokio::test]
async fn a_drifted_bookkeeping_bucket_fails_closed() {
    let server = NatsServer::start();
    let admin = common::connect(&server.url()).await;
    let js = async_nats::jetstream::new(admin.clone());
    let config = serde_json::json!({
        "name": "KV_wasmcloud_provisioner_admissions",
        "subjects": ["$KV.wasmcloud_provisioner_admissions.>"],
        "subject_transform": {
            "src": "$KV.wasmcloud_provisioner_admissions.>",
            "dest": "$KV.wasmcloud_provisioner_admissions.elsewhere.>"
        },
        "max_msgs_per_subject": 1,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
        "discard": "new",
        "storage": "file",
        "num_replicas": 1
    });
    let created = admin
        .request(
            "$JS.API.STREAM.CREATE.KV_wasmcloud_provisioner_admissions",
            serde_json::to_vec(&config).unwrap().into(),
        )
        .await
        .expect("create");
    let created: Value = serde_json::from_slice(&created.payload).unwrap();
    assert!(created.get("error").is_none(), "{created}");

    let instance = start_capped(&server.url(), 1).await;
    wait_discoverable(&admin, 1).await;
    let (code, body) = ask(&admin, "first").await;
    assert_eq!(code, Some(503), "{body}");
    let message = body.to_string();
    assert!(
        message.contains("wasmcloud_provisioner_admissions") && message.contains("Retry"),
        "{message}"
    );
    assert!(lattices(&js).await.is_empty());
    instance.stop().await;
}
