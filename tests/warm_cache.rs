//! The warm path stays correct: what the provisioner remembers about a stream is
//! forgotten as soon as the stream changes out of band, so the very next request checks
//! it again; a burst for a new lattice creates each stream once; and a warm request makes
//! no JetStream call. JetStream calls are counted from the server's own records (the API
//! audit advisories on `$JS.EVENT.ADVISORY.API`), not from the provisioner's.
//!
//! The provisioner runs in this process, wired as `wasmcloud-provisioner serve` wires it:
//! the library's connect (which forgets everything on reconnect) and `service::serve`
//! (which watches the stream advisories in its request loop).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use common::provisioner;
use common::reply::{call, Reply};
use common::NatsServer;
use wasmcloud_provisioner::catalog;
use wasmcloud_provisioner::jsapi::JetStreamApi;
use wasmcloud_provisioner::known::KnownStreams;
use wasmcloud_provisioner::provisioner::{Provisioner, Target};
use wasmcloud_provisioner::reconcile::Reconciler;
use wasmcloud_provisioner::settings::Settings;

const LATTICE: &str = "wasmcloud.provision.lattice";

/// A lattice request, answered by a service that runs as `serve` runs it, with its
/// defaults (`--cache-ttl 30 s`: every re-check below is caused by an advisory).
async fn request(client: &async_nats::Client, lattice: &str) -> Reply {
    call(client, LATTICE, lattice.to_string()).await
}

/// A raw JetStream API call from the test's own client.
async fn js_api(client: &async_nats::Client, subject: String, body: Value) -> Value {
    let message = client
        .request(subject.clone(), body.to_string().into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&message.payload).expect("a JSON answer")
}

/// Subscribes to JetStream's advisory of `what` (`DELETED`, `UPDATED`) for `stream`.
async fn advisory(client: &async_nats::Client, what: &str, stream: &str) -> async_nats::Subscriber {
    let subscription = client
        .subscribe(format!("$JS.EVENT.ADVISORY.STREAM.{what}.{stream}"))
        .await
        .expect("subscribe to the stream advisory");
    client.flush().await.expect("flush");
    subscription
}

/// Whether JetStream announced the change. A subscriber that has the advisory also means
/// the service's connection has it ahead of any request sent from now on, and the service
/// handles advisories before requests that came after them.
async fn announced(subscription: &mut async_nats::Subscriber) -> bool {
    tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .is_ok_and(|m| m.is_some())
}

fn streams(lattice: &str) -> Vec<String> {
    catalog::lattice_resources(lattice, &Settings::default())
        .into_iter()
        .map(|d| d.stream)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_deleted_out_of_band_is_recreated_on_the_next_request() {
    let server = NatsServer::start();
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    // nats-server 2.12 sends a deletion advisory from the stream's own loop, which the
    // deletion stops: now and then the advisory is lost (then the cache TTL bounds how
    // long the service trusts what it saw). A lost one proves nothing here: try again.
    for attempt in 0..5 {
        let lattice = format!("gone{attempt}");
        let [latticedata, configdata] = <[String; 2]>::try_from(streams(&lattice)).unwrap();
        let first = request(&client, &lattice).await;
        assert_eq!(first.code, 200, "{}", first.body);
        assert_eq!(first.action(&latticedata), "created");
        // Warm: answered from what the service remembers.
        let warm_before = service.warm("lattice");
        let warm = request(&client, &lattice).await;
        assert_eq!(warm.code, 200, "{}", warm.body);
        assert_eq!(warm.action(&latticedata), "exists");
        assert_eq!(
            service.warm("lattice"),
            warm_before + 1,
            "the second request was warm"
        );

        // Someone deletes a bucket by hand; the very next request makes it again.
        let mut deletion = advisory(&client, "DELETED", &latticedata).await;
        let deleted = js_api(
            &client,
            format!("$JS.API.STREAM.DELETE.{latticedata}"),
            json!({}),
        )
        .await;
        assert_eq!(deleted["success"], true, "{deleted}");
        if !announced(&mut deletion).await {
            eprintln!("attempt {attempt}: nats-server lost the deletion advisory; again");
            continue;
        }
        let next = request(&client, &lattice).await;
        assert_eq!(next.code, 200, "{}", next.body);
        assert_eq!(next.action(&latticedata), "created", "{}", next.body);
        assert_eq!(next.action(&configdata), "exists", "{}", next.body);
        assert_eq!(
            service.warm("lattice"),
            warm_before + 1,
            "the request after the delete was cold"
        );

        // Made again with the catalog's config.
        let info = js_api(
            &client,
            format!("$JS.API.STREAM.INFO.{latticedata}"),
            json!({}),
        )
        .await;
        let want = &catalog::lattice_resources(&lattice, &Settings::default())[0].config;
        for field in [
            "subjects",
            "max_msgs_per_subject",
            "allow_direct",
            "allow_rollup_hdrs",
        ] {
            assert_eq!(info["config"][field], want[field], "{field}: {info}");
        }
        // And it is warm again.
        assert_eq!(
            request(&client, &lattice).await.action(&latticedata),
            "exists"
        );
        assert_eq!(service.warm("lattice"), warm_before + 2);
        service.stop().await;
        return;
    }
    panic!("nats-server never announced a deletion in 5 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_band_update_that_breaks_a_bucket_is_reported_on_the_next_request() {
    let server = NatsServer::start();
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    let configdata = streams("changed")[1].clone();

    assert_eq!(request(&client, "changed").await.code, 200);
    assert_eq!(
        request(&client, "changed").await.action(&configdata),
        "exists"
    );
    assert_eq!(service.warm("lattice"), 1);

    // Someone turns off direct gets, which least-privilege hosts read through.
    let info = js_api(
        &client,
        format!("$JS.API.STREAM.INFO.{configdata}"),
        json!({}),
    )
    .await;
    let mut config = info["config"].clone();
    config["allow_direct"] = json!(false);
    let mut update = advisory(&client, "UPDATED", &configdata).await;
    let updated = js_api(
        &client,
        format!("$JS.API.STREAM.UPDATE.{configdata}"),
        config,
    )
    .await;
    assert!(updated.get("error").is_none(), "{updated}");
    assert!(
        announced(&mut update).await,
        "JetStream announces the update"
    );

    let next = request(&client, "changed").await;
    assert_eq!(next.code, 409, "drift is a conflict: {}", next.body);
    assert_eq!(next.action(&configdata), "drift", "{}", next.body);
    let drift = &next.resource(&configdata)["drift"];
    assert_eq!(drift[0]["field"], "allow_direct", "{drift}");
    assert_eq!(drift[0]["breaks"], "host", "{drift}");
    assert_eq!(
        service.warm("lattice"),
        1,
        "the request after the update was cold"
    );

    // Reported, not fixed: the stream is as the update left it.
    let after = js_api(
        &client,
        format!("$JS.API.STREAM.INFO.{configdata}"),
        json!({}),
    )
    .await;
    assert_eq!(after["config"]["allow_direct"], false, "{after}");
    // And the drift is not forgotten by the next request either.
    assert_eq!(request(&client, "changed").await.code, 409);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_requests_make_no_jetstream_call_and_a_burst_creates_each_stream_once() {
    let server = NatsServer::start();
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let client = common::connect(&server.url()).await;
    let audit = common::api_audit::ApiAudit::start(&client).await;

    // A burst of concurrent requests for one new lattice: every one succeeds, and the
    // server saw each stream created once.
    const BURST: usize = 200;
    let replies = futures::future::join_all((0..BURST).map(|_| request(&client, "burst"))).await;
    for reply in &replies {
        assert_eq!(reply.code, 200, "{}", reply.body);
    }
    let calls = audit.calls_so_far(&client).await;
    let creates: Vec<&String> = calls
        .iter()
        .filter(|s| s.starts_with("$JS.API.STREAM.CREATE."))
        .collect();
    let mut want: Vec<String> = streams("burst")
        .iter()
        .map(|s| format!("$JS.API.STREAM.CREATE.{s}"))
        .collect();
    want.sort();
    let mut got: Vec<String> = creates.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, want, "every API call: {calls:?}");
    let created = replies
        .iter()
        .flat_map(|r| {
            streams("burst")
                .into_iter()
                .map(|s| r.action(&s).to_string())
        })
        .filter(|a| a == "created")
        .count();
    assert_eq!(created, 2, "each stream is reported created once");

    // Warm requests: no JetStream call at all.
    let before = audit.calls_so_far(&client).await.len();
    let warm_before = service.warm("lattice");
    for _ in 0..50 {
        let reply = request(&client, "burst").await;
        assert_eq!(reply.code, 200, "{}", reply.body);
    }
    let calls = audit.calls_so_far(&client).await;
    // `calls_so_far` itself makes one marker call each time.
    assert_eq!(
        calls.len(),
        before + 1,
        "JetStream calls while warm: {:?}",
        &calls[before..]
    );
    assert_eq!(service.warm("lattice"), warm_before + 50);
    service.stop().await;
}

/// Without advisories (a reconciler used on its own), what was seen is trusted only for
/// the cache TTL: a bucket deleted meanwhile is made again once it has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_advisories_a_verdict_expires_after_the_cache_ttl() {
    let server = NatsServer::start();
    let client = common::connect(&server.url()).await;
    // "Within the TTL" is a claim about time: on a loaded machine the steps between the
    // first answer and the stale one can take longer than a short TTL. Such a round
    // proves nothing either way, so it is run again with a longer TTL (and a new
    // lattice) instead of failing or passing by luck.
    for (round, ttl) in [2u64, 5, 15]
        .into_iter()
        .map(Duration::from_secs)
        .enumerate()
    {
        let lattice = format!("ttl{round}");
        let js = JetStreamApi::new(client.clone(), None, Duration::from_secs(5));
        let reconciler = Arc::new(Reconciler::new(js, Arc::new(KnownStreams::default()), ttl));
        let provisioner = Provisioner::new(reconciler, Settings::default());
        let target = [Target::Lattice(lattice.clone())];
        let latticedata = streams(&lattice)[0].clone();
        let action = |reports: &[wasmcloud_provisioner::plan::ResourceReport]| {
            reports
                .iter()
                .find(|r| r.stream == latticedata)
                .map(|r| (r.action.as_str().to_string(), r.warm))
                .expect("the bucket is reported")
        };

        // The verdict is made between these two instants: `started` bounds its age from
        // above (is it still fresh?), `answered` from below (has it expired?).
        let started = Instant::now();
        let first = provisioner.apply(&target, None).await.expect("apply");
        let answered = Instant::now();
        assert_eq!(action(&first), ("created".to_string(), false));
        js_api(
            &client,
            format!("$JS.API.STREAM.DELETE.{latticedata}"),
            json!({}),
        )
        .await;
        // Within the TTL nobody told this reconciler: it answers from what it saw.
        let stale = provisioner.apply(&target, None).await.expect("apply");
        if started.elapsed() >= ttl {
            eprintln!("round {round}: the steps took longer than the {ttl:?} TTL; again with a longer one");
            continue;
        }
        assert_eq!(action(&stale), ("exists".to_string(), true));
        tokio::time::sleep(ttl.saturating_sub(answered.elapsed()) + Duration::from_millis(100))
            .await;
        let again = provisioner.apply(&target, None).await.expect("apply");
        assert_eq!(action(&again), ("created".to_string(), false));
        return;
    }
    panic!("no round finished its steps within its TTL (2 s, 5 s, 15 s): the machine is too slow to show this");
}

/// The service's quick path keeps a warm reply's bytes and sends them again while every
/// verdict behind them holds: a verdict forgotten (advisory), replaced (the stream checked
/// again against other settings) or expired makes the next request check JetStream.
#[tokio::test]
async fn a_kept_warm_reply_holds_only_while_its_verdicts_do() {
    use wasmcloud_provisioner::endpoints::{self, NotWarm, WarmAnswer, WarmReplies};

    let server = NatsServer::start();
    let client = common::connect(&server.url()).await;
    let ttl = Duration::from_secs(3);
    let js = JetStreamApi::new(client.clone(), None, Duration::from_secs(5));
    let known = Arc::new(KnownStreams::default());
    let reconciler = Arc::new(Reconciler::new(js, known.clone(), ttl));
    let provisioner = Provisioner::new(reconciler, Settings::default());
    let spec = &endpoints::lattice::SPEC;
    let replies = WarmReplies::new(2);
    let answer = |body: &str| {
        let prepared = endpoints::prepare(&provisioner, spec, spec.subject, None, body.as_bytes())
            .expect("a valid request");
        replies.answer(&provisioner, prepared)
    };
    // Answers warm, or carries the request out (as the service's cold path does) and
    // returns `None`.
    let ask = |body: &'static str| async {
        match answer(body) {
            Ok(warm) => Some(warm),
            Err(NotWarm::Cold(cold)) => {
                cold.run(&provisioner)
                    .await
                    .expect("the cold path succeeds");
                None
            }
            Err(NotWarm::Refused(e)) => panic!("refused: {e}"),
        }
    };
    let kept = |a: &Option<WarmAnswer>| a.as_ref().map(|a| a.kept);

    // New: cold. Then made warm once, then kept.
    assert_eq!(kept(&ask("memo").await), None);
    let made = ask("memo").await;
    assert_eq!(kept(&made), Some(false));
    let again = ask("memo").await;
    assert_eq!(kept(&again), Some(true));
    assert_eq!(
        again.as_ref().map(|a| &a.body),
        made.as_ref().map(|a| &a.body)
    );
    assert_eq!(again.as_ref().map(|a| a.resources), Some(2));
    let body: Value = serde_json::from_slice(&made.unwrap().body).expect("JSON");
    assert_eq!(body["lattice"], "memo");
    assert!(
        body["resources"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["action"] == "exists")),
        "{body}"
    );

    // Forgotten (as a deletion advisory does): checked again.
    let latticedata = streams("memo")[0].clone();
    known.forget(&latticedata);
    assert_eq!(kept(&ask("memo").await), None);
    assert_eq!(kept(&ask("memo").await), Some(false));
    assert_eq!(kept(&ask("memo").await), Some(true));

    // Replaced: a request with other settings checks the same streams again and stores
    // new verdicts; what was kept for the default settings no longer holds.
    assert_eq!(
        kept(&ask(r#"{"lattice": "memo", "replicas": 1}"#).await),
        None
    );
    assert_ne!(kept(&ask("memo").await), Some(true));

    // Bounded: a third work starts the map over (max 2 here).
    assert_eq!(kept(&ask("memo2").await), None);
    assert_eq!(kept(&ask("memo2").await), Some(false));
    assert_eq!(kept(&ask("memo3").await), None);
    assert_eq!(kept(&ask("memo3").await), Some(false));
    assert!(replies.len() <= 2, "{} kept", replies.len());

    // Expired with the verdicts (cache TTL): checked again.
    assert_eq!(kept(&ask("memo3").await), Some(true));
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(kept(&ask("memo3").await), None);
}

/// The warm path's door answers a request sent again with the same bytes from the reply
/// kept for them, without parsing it again, and only while the verdicts behind that reply
/// hold; requests that differ in their bytes but ask for the same work share the reply; a
/// refused or dry-run request is never answered from it.
#[tokio::test]
async fn the_warm_door_answers_the_same_request_bytes_while_their_verdicts_hold() {
    use wasmcloud_provisioner::endpoints::{self, warm, NotWarm, WarmReplies};

    let server = NatsServer::start();
    let client = common::connect(&server.url()).await;
    let js = JetStreamApi::new(client.clone(), None, Duration::from_secs(5));
    let known = Arc::new(KnownStreams::default());
    let reconciler = Arc::new(Reconciler::new(js, known.clone(), Duration::from_secs(600)));
    let provisioner = Provisioner::new(reconciler, Settings::default());
    let replies = WarmReplies::default();
    let message = |subject: &str, body: &str| async_nats::Message {
        subject: subject.into(),
        reply: Some("_INBOX.door".into()),
        payload: body.to_string().into(),
        headers: None,
        status: None,
        description: None,
        length: 0,
    };
    let plain = &endpoints::lattice::SPEC;
    let scoped = &endpoints::lattice::SCOPED_SPEC;
    // Warm: (kept, body); cold: carried out, `None`.
    let ask = |spec: &'static endpoints::EndpointSpec, subject: &str, body: &str| {
        let message = message(subject, body);
        let provisioner = &provisioner;
        let replies = &replies;
        async move {
            match warm::answer(provisioner, replies, spec, &message) {
                Ok(answer) => Some((answer.kept, answer.body)),
                Err(NotWarm::Cold(cold)) => {
                    cold.run(provisioner).await.expect("the cold path succeeds");
                    None
                }
                Err(NotWarm::Refused(e)) => panic!("refused: {e}"),
            }
        }
    };
    let subject = plain.subject;
    assert_eq!(ask(plain, subject, "door").await, None);
    let (kept, made) = ask(plain, subject, "door").await.expect("warm");
    assert!(!kept);
    assert_eq!(
        ask(plain, subject, "door").await,
        Some((true, made.clone()))
    );
    // Other bytes, the same work: the same reply.
    assert_eq!(
        ask(plain, subject, "door\n").await,
        Some((true, made.clone()))
    );
    assert_eq!(
        ask(scoped, "wasmcloud.provision.lattice.door", "").await,
        Some((true, made.clone()))
    );
    // A body far larger than real requests (here padded JSON) is answered warm from the
    // reply kept for its work, but not kept as a key: varying its padding must not make
    // the service keep a copy of each.
    let keys = replies.requests_kept();
    for pad in [600, 601, 602] {
        let padded = format!("{{\"lattice\":\"door\"}}{}", " ".repeat(pad));
        assert_eq!(
            ask(plain, subject, &padded).await,
            Some((true, made.clone()))
        );
    }
    assert_eq!(replies.requests_kept(), keys);
    // The scoped subject is part of the request: another lattice is not this reply.
    assert_eq!(
        ask(scoped, "wasmcloud.provision.lattice.door2", "").await,
        None
    );

    // Refused and dry-run requests: never answered from a kept reply.
    let refused = warm::answer(&provisioner, &replies, plain, &message(subject, "no dots."));
    assert!(matches!(refused, Err(NotWarm::Refused(_))), "{refused:?}");
    let dry = r#"{"lattice": "door", "dry_run": true}"#;
    for _ in 0..2 {
        let answer = warm::answer(&provisioner, &replies, plain, &message(subject, dry));
        assert!(matches!(answer, Err(NotWarm::Cold(_))), "{answer:?}");
    }

    // A verdict forgotten (as a deletion advisory does): the same bytes are checked again.
    known.forget(&streams("door")[0]);
    assert_eq!(ask(plain, subject, "door").await, None);
    assert_eq!(
        ask(plain, subject, "door").await.map(|(kept, _)| kept),
        Some(false)
    );
    assert_eq!(
        ask(plain, subject, "door").await.map(|(kept, _)| kept),
        Some(true)
    );
}
