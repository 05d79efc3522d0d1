//! Hostile headers against a real nats-server: a `Nats-Request-Info` a client made up
//! (of any size) is refused without creating anything and without growing the service's
//! memory, and a burst of requests with tens of thousands of header lines must not take
//! the service down. Across a service import the server sets that header itself; what the
//! audit trail keeps of it is bounded (unit tests in `audit.rs`). The figures measured are
//! printed (run with `--nocapture` to see them).

mod common;

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures::StreamExt;
use serde_json::{json, Value};

use common::cli::Served;
use common::provisioner;
use common::reply::{call_with, client, REPLY_TIMEOUT};
use common::NatsServer;
use wasmcloud_provisioner::audit::MAX_EVENT_BYTES;
use wasmcloud_provisioner::settings::Settings;

/// A header this long still fits in nats-server's default max_payload (1 MiB) with the
/// request, but an audit event carrying it whole does not.
const HUGE: usize = 1_048_576 - 400;

/// A `Nats-Request-Info` of about `bytes` bytes, as a client may claim it within an
/// account: the identity fields nats-server would set, one of them padded.
fn request_info_of(bytes: usize) -> HeaderMap {
    let info = json!({
        "acc": "TENANT", "user": "u".repeat(bytes), "name": "hostile", "tags": ["a", "b"],
        "jwt": "eyJ.not.checked", "rtt": 1000, "id": 42
    });
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Request-Info", info.to_string().as_str());
    headers
}

/// Sends a lattice request with `headers`; panics unless it succeeds.
async fn provision(nc: &async_nats::Client, lattice: &str, headers: HeaderMap) {
    let reply = call_with(nc, "wasmcloud.provision.lattice", headers, lattice).await;
    assert!(
        reply.headers.is_none(),
        "{lattice}: error {:?} {}",
        reply.headers,
        reply.raw
    );
}

/// Sends a lattice request with `headers`; panics unless it is refused with a 403 and a
/// JSON body saying why.
async fn refused(nc: &async_nats::Client, lattice: &str, headers: HeaderMap) {
    let reply = call_with(nc, "wasmcloud.provision.lattice", headers, lattice).await;
    let code = reply.error_code.map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("403"), "{lattice}: {reply:?}");
    let body = &reply.body;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Nats-Request-Info")),
        "{body}"
    );
}

/// Within one account the server passes a client's `Nats-Request-Info` through untouched,
/// so one that is there was made up: before, a 1 MB one was carried into the audit
/// events of the change, which then exceeded max_payload and were lost. Now such a
/// request is refused (it names an account it did not come from), whatever the size, and
/// nothing is created or published; a request without it is served as ever.
#[tokio::test]
async fn a_forged_request_info_is_refused_whatever_its_size() {
    let server = NatsServer::start();
    let nc = client(&server.url()).await;
    let service = provisioner::spawn(&server.url(), Settings::default()).await;
    let mut sub = nc
        .subscribe("wasmcloud.provision.events.>")
        .await
        .expect("subscribe");
    nc.flush().await.expect("flush");

    // Within the server's max_payload (1 MiB), so it reaches the service.
    refused(&nc, "huge", request_info_of(HUGE)).await;
    refused(&nc, "long", request_info_of(10_000)).await;
    refused(&nc, "short", request_info_of(10)).await;
    let js = async_nats::jetstream::new(nc.clone());
    for lattice in ["huge", "long", "short"] {
        for bucket in ["LATTICEDATA", "CONFIGDATA"] {
            let stream = format!("KV_{bucket}_{lattice}");
            assert!(
                js.get_stream(&stream).await.is_err(),
                "{stream} was created"
            );
        }
    }

    provision(&nc, "plain", HeaderMap::new()).await;
    // Every event up to the served request's two: the refused ones published none.
    for _ in 0..2 {
        let m = tokio::time::timeout(REPLY_TIMEOUT, sub.next())
            .await
            .expect("the served request's events arrive")
            .expect("subscription open");
        assert!(
            m.payload.len() <= MAX_EVENT_BYTES,
            "{} bytes",
            m.payload.len()
        );
        let event: Value = serde_json::from_slice(&m.payload).expect("an event is JSON");
        assert_eq!(event["action"], "created", "{event}");
        assert!(
            event["resource"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("_plain")),
            "an event of a refused request: {event}"
        );
        assert_eq!(event["requester"]["endpoint"], "lattice");
    }
    service.shutdown().await.expect("serve() returns Ok");
}

/// The `serve` binary, once every endpoint is registered; killed on drop.
async fn serve(url: &str, nc: &async_nats::Client) -> Served {
    serve_with(url, nc, &[]).await
}

async fn serve_with(url: &str, nc: &async_nats::Client, args: &[&str]) -> Served {
    // PROVISIONER_BIN: measure another build (say, target/release) the same way.
    let mut command = match std::env::var_os("PROVISIONER_BIN") {
        Some(bin) => std::process::Command::new(bin),
        None => common::provisioner_command(),
    };
    command.args(["--server", url]).args(args).arg("serve");
    Served::start(command, None, nc).await
}

/// Resident memory of the service process, in KiB.
fn rss_kib(served: &Served) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.pid()))
        .expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Before the bound, 150 such requests raised the service's RSS from 13 to 147 MiB (each
/// kept several copies of the header, in its origin and its audit events).
#[tokio::test]
async fn hostile_request_info_keeps_memory_bounded() {
    const REQUESTS: usize = 150;
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;
    let served = serve(&url, &nc).await;
    // Warm up every path once (creates, audit events, a refusal) with ordinary requests.
    for i in 0..5 {
        provision(&nc, &format!("warmup{i}"), HeaderMap::new()).await;
    }
    refused(&nc, "warmup-refused", request_info_of(10)).await;
    let before = rss_kib(&served);
    let started = Instant::now();
    for i in 0..REQUESTS {
        refused(&nc, &format!("hostile{i}"), request_info_of(HUGE)).await;
    }
    let took = started.elapsed();
    // Let the audit queue drain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(&served);
    let grew = after.saturating_sub(before);
    println!(
        "RSS with {REQUESTS} requests carrying a forged 1 MB Nats-Request-Info (each \
         refused): {:.1} MiB before, {:.1} MiB after (+{:.1} MiB), {:.1} s",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        grew as f64 / 1024.0,
        took.as_secs_f64()
    );
    // Measured in a debug build: +6.4 MiB with the bounds, +13.2 MiB without (and the
    // events lost). A per-request leak of the header would be +150 MiB.
    assert!(
        grew < 32 * 1024,
        "RSS grew by {grew} KiB ({before} -> {after} KiB) over {REQUESTS} hostile requests"
    );
}

/// `lines` distinct header lines (`X-Hostile-<i>: v`), about 20 bytes each.
fn header_lines(lines: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for i in 0..lines {
        headers.insert(format!("X-Hostile-{i}").as_str(), "v");
    }
    headers
}

/// `count` warm lattice requests with `headers`, `concurrency` at a time; returns how many
/// were answered and the requests per second.
async fn burst(
    nc: &async_nats::Client,
    headers: &HeaderMap,
    count: usize,
    concurrency: usize,
) -> (usize, f64) {
    let started = Instant::now();
    let answered = futures::stream::iter(0..count)
        .map(|_| {
            let (nc, headers) = (nc.clone(), headers.clone());
            async move {
                let request =
                    nc.request_with_headers("wasmcloud.provision.lattice", headers, "warm".into());
                matches!(
                    tokio::time::timeout(Duration::from_secs(20), request).await,
                    Ok(Ok(reply)) if reply.headers.is_none()
                )
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    (answered, count as f64 / started.elapsed().as_secs_f64())
}

/// How fast a bare async-nats subscriber (no provisioner code at all) takes in `count`
/// messages with `headers`: the ceiling for any service on this client library.
async fn bare_subscriber_rate(url: &str, headers: &HeaderMap, count: usize) -> f64 {
    let receiver = client(url).await;
    let sender = client(url).await;
    let mut sub = receiver.subscribe("bare.headers").await.expect("subscribe");
    receiver.flush().await.expect("flush");
    let started = Instant::now();
    let publishing = async {
        for _ in 0..count {
            sender
                .publish_with_headers("bare.headers", headers.clone(), "".into())
                .await
                .expect("publish");
            // Paced by the server round trip, so the subscriber is never a slow consumer.
            sender.flush().await.expect("flush");
        }
    };
    let receiving = async {
        for _ in 0..count {
            tokio::time::timeout(Duration::from_secs(30), sub.next())
                .await
                .expect("a message")
                .expect("subscription open");
        }
    };
    futures::join!(publishing, receiving);
    count as f64 / started.elapsed().as_secs_f64()
}

/// 200 warm requests with 20,000 header lines each once got the provisioner disconnected by
/// the server as a slow consumer. The time goes into async-nats parsing every header line
/// into its map before the service sees the message (the service looks up two headers by
/// name and never walks them): a bare subscriber is no faster. What bounds it is the
/// server's `max_payload` (a header is part of the payload) and `max_pending` (what the
/// server buffers for a client before it cuts it off). This measures it and checks that
/// the service survives such a burst: afterwards it answers again.
#[tokio::test]
async fn many_header_lines_are_measured_and_survived() {
    const LINES: usize = 20_000;
    /// Requests one at a time, for the rates.
    const SEQUENTIAL: usize = 40;
    /// Requests at once, as in the report.
    const COUNT: usize = 200;
    let server = NatsServer::start();
    let url = server.url();
    let nc = client(&url).await;
    let _served = serve(&url, &nc).await;
    provision(&nc, "warm", HeaderMap::new()).await;

    let plain = HeaderMap::new();
    let hostile = header_lines(LINES);
    let (ok, plain_rate) = burst(&nc, &plain, SEQUENTIAL, 1).await;
    assert_eq!(ok, SEQUENTIAL, "plain requests, one at a time");
    let (ok, hostile_rate) = burst(&nc, &hostile, SEQUENTIAL, 1).await;
    assert_eq!(
        ok, SEQUENTIAL,
        "requests with {LINES} header lines, one at a time"
    );
    let bare_rate = bare_subscriber_rate(&url, &hostile, SEQUENTIAL).await;
    let (ok_concurrent, concurrent_rate) = burst(&nc, &hostile, COUNT, COUNT).await;
    let slow_consumer = server.log().contains("Slow Consumer");
    println!(
        "warm lattice requests, one at a time: {plain_rate:.0}/s plain, {hostile_rate:.1}/s \
         with {LINES} header lines ({} kB); a bare async-nats subscriber takes in {bare_rate:.1} \
         such messages/s. {COUNT} at once: {ok_concurrent} answered ({concurrent_rate:.1}/s); \
         the server cut a slow consumer off: {slow_consumer}",
        hostile_headers_len(&hostile) / 1000,
    );
    // Whatever the burst did, the service answers again (it reconnects if it was cut off).
    common::eventually("the service answers after the burst", REPLY_TIMEOUT, || {
        let nc = nc.clone();
        async move {
            let request = nc.request("wasmcloud.provision.lattice", "warm".into());
            match tokio::time::timeout(Duration::from_secs(2), request).await {
                Ok(Ok(reply)) if reply.headers.is_none() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
}

fn hostile_headers_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|v| name.len() + v.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum()
}

/// What the README recommends against such bursts: a `max_payload` for the requesters'
/// account (here 32 KiB; a request needs less than 16 KiB). A request with 20,000 header
/// lines is then refused by the server before it reaches the service, and 200 requests at
/// once with as many header lines as fit (1,600) are all answered, without a slow
/// consumer.
#[tokio::test]
async fn a_payload_limit_keeps_header_bursts_harmless() {
    const AT_ONCE: usize = 200;
    let server = NatsServer::start_with(common::ServerOptions {
        extra_config: r#"
accounts {
  APP: {
    jetstream: enabled
    limits: { max_payload: 32KB }
    users: [{ user: app, password: app }]
  }
}
"#
        .into(),
        ..Default::default()
    });
    let url = server.url();
    let connect = |name: &'static str| {
        common::connect_with(
            &url,
            async_nats::ConnectOptions::with_user_and_password("app".into(), "app".into())
                .name(name)
                .request_timeout(Some(REPLY_TIMEOUT)),
        )
    };
    let nc = connect("requester").await;
    let _served = serve_with(&url, &nc, &["--user", "app", "--password", "app"]).await;
    provision(&nc, "warm", HeaderMap::new()).await;

    let fitting = header_lines(1_600);
    assert!(hostile_headers_len(&fitting) < 32 * 1000);
    let (answered, rate) = burst(&nc, &fitting, AT_ONCE, AT_ONCE).await;
    println!(
        "max_payload 32 KiB: {AT_ONCE} requests at once with 1,600 header lines ({} kB): \
         {answered} answered, {rate:.0}/s",
        hostile_headers_len(&fitting) / 1000
    );
    assert_eq!(answered, AT_ONCE);
    assert!(!server.log().contains("Slow Consumer"), "{}", server.log());

    // 20,000 lines do not fit: the request never reaches the service (async-nats learns
    // the account's limit from the server and refuses to send it; a client that sends
    // anyway is cut off by the server with "Maximum Payload Violation").
    let hostile = connect("hostile").await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        hostile.request_with_headers(
            "wasmcloud.provision.lattice",
            header_lines(20_000),
            "warm".into(),
        ),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a 388 kB request went through"
    );
    println!("a request with 20,000 header lines under max_payload 32 KiB: {refused:?}");
    provision(&nc, "warm", HeaderMap::new()).await;
}
