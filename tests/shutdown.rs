//! Shutdown under a steady stream of requests: many are on the wire to the endpoints when
//! they unsubscribe. async-nats forgets an endpoint's subscription before the server has
//! processed the UNSUB, so without the shutdown witness (`src/witness.rs`) some of those
//! requests are dropped and their requesters time out. Every request must get a reply or
//! "no responders". Measured without the witness: 2 of 39 rounds lost requests (18 and
//! 182), so a run of six rounds fails without it now and then, never with it (0 of 42
//! rounds lost one).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{provisioner, NatsServer};
use wasmcloud_provisioner::settings::Settings;

/// Requesters, each sending its next request as soon as the last one is answered: many
/// requests on the wire at every moment.
const REQUESTERS: usize = 1000;

/// Rounds of: start the service on `service_url`, let [`REQUESTERS`] requesters on
/// `requester_url` keep it busy, stop it. Returns the figures and the requests lost.
async fn rounds(
    rounds: usize,
    service_url: &dyn Fn() -> String,
    requester_url: &dyn Fn() -> String,
) -> (Vec<String>, u64) {
    let mut lost_total = 0;
    let mut figures = Vec::new();
    for round in 0..rounds {
        let nc = common::connect(&requester_url()).await;
        let mut service = provisioner::spawn(&service_url(), Settings::default()).await;
        // Warm: the answers are fast, so requests keep coming at a high rate.
        let reply = common::eventually("a first answer", Duration::from_secs(60), || {
            let nc = nc.clone();
            async move {
                let reply = nc
                    .request("wasmcloud.provision.lattice", "".into())
                    .await
                    .map_err(|e| e.to_string())?;
                match reply.headers {
                    None => Ok(reply),
                    Some(h) => Err(format!("{h:?}")),
                }
            }
        })
        .await;
        assert!(!reply.payload.is_empty());

        let refused = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..REQUESTERS)
            .map(|_| {
                let nc = nc.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    let (mut answered, mut lost) = (0u64, 0u64);
                    // Until the service is gone (no responders), or 60 s at most.
                    while !refused.load(Ordering::SeqCst)
                        && started.elapsed() < Duration::from_secs(60)
                    {
                        let outcome = nc
                            .send_request(
                                "wasmcloud.provision.lattice",
                                async_nats::Request::new().timeout(Some(Duration::from_secs(20))),
                            )
                            .await;
                        match outcome {
                            Ok(_) => answered += 1,
                            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                                refused.store(true, Ordering::SeqCst);
                            }
                            Err(_) => lost += 1,
                        }
                    }
                    (answered, lost)
                })
            })
            .collect();
        // Let the stream of requests get going, then stop the service in the middle of it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        service.trigger_shutdown();
        let (mut answered, mut lost) = (0, 0);
        for t in tasks {
            let (a, l) = t.await.expect("requester");
            answered += a;
            lost += l;
        }
        service.join().await.expect("serve() returns Ok");
        assert!(
            refused.load(Ordering::SeqCst),
            "the service still answered after 60 s"
        );
        figures.push(format!("round {round}: {answered} answered, {lost} lost"));
        lost_total += lost;
    }
    (figures, lost_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_on_the_wire_is_lost_when_the_endpoints_stop() {
    let server = NatsServer::start();
    let url = || server.url();
    let (figures, lost) = rounds(6, &url, &url).await;
    eprintln!("one server:\n{}", figures.join("\n"));
    assert_eq!(lost, 0, "requests lost at shutdown: {figures:?}");
}
