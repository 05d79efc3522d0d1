//! The warm rows: warm `lattice` requests next to the inline echo (the cheapest ADR-32
//! responder, see `echo.rs`), sequential p50 and requests/s at `IN_FLIGHT`, with each
//! process's CPU per request; the task-per-request echo as an extra row. Used for the
//! direct case and, in `accounts_bench.rs`, through a service import.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use super::{
    actions, median, p50, provision_reply, us, ApiAudit, Figure, Process, Target, IN_FLIGHT,
    RATE_ROUND, RATE_ROUNDS, WARM_PAIRS,
};

/// One responder measured in the warm rounds.
pub struct Contender<'a> {
    pub subject: &'static str,
    /// Whose CPU time counts for it.
    pub process: &'a Process,
    /// Whether its replies are provisioning replies (checked: every resource `exists`).
    pub provisions: bool,
}

/// What the warm rounds measured for one contender.
pub struct Measured {
    pub p50: Duration,
    /// Median of the rounds.
    pub rate: f64,
    /// Process CPU (user + system) per request over its rate rounds, in us.
    pub cpu_us: f64,
}

/// Sequential requests to each contender in turn (A B C A B C …), then rate rounds in
/// turn; every contender gets the same body. Returns one [`Measured`] per contender, in
/// order, and the JetStream API calls the server recorded meanwhile.
pub async fn measure(
    client: &async_nats::Client,
    contenders: &[Contender<'_>],
    body: Bytes,
) -> (Vec<Measured>, usize) {
    // Warm up every path (connections, caches, allocator).
    for _ in 0..300 {
        for c in contenders {
            client
                .request(c.subject, body.clone())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", c.subject));
        }
    }
    let audit = ApiAudit::start(client).await;
    let mut samples: Vec<Vec<Duration>> = contenders
        .iter()
        .map(|_| Vec::with_capacity(WARM_PAIRS))
        .collect();
    let mut replies = Vec::new();
    for _ in 0..WARM_PAIRS {
        for (c, samples) in contenders.iter().zip(&mut samples) {
            let t = Instant::now();
            let reply = client
                .request(c.subject, body.clone())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", c.subject));
            samples.push(t.elapsed());
            if c.provisions {
                replies.push(reply);
            }
        }
    }
    for reply in &replies {
        let body = provision_reply(reply).unwrap_or_else(|e| panic!("warm request: {e}"));
        assert!(
            actions(&body).iter().all(|a| a == "exists"),
            "warm request: {body}"
        );
    }
    let mut rates: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    let mut cpu = vec![Duration::ZERO; contenders.len()];
    let mut done = vec![0u64; contenders.len()];
    for _ in 0..RATE_ROUNDS {
        for (i, c) in contenders.iter().enumerate() {
            let before = c.process.cpu_time();
            let (r, n) = rate(client, c.subject, body.clone()).await;
            cpu[i] += c.process.cpu_time() - before;
            done[i] += n;
            rates[i].push(r);
        }
    }
    let api_calls = audit.settled().await.len();
    let measured = (0..contenders.len())
        .map(|i| Measured {
            p50: p50(&mut samples[i]),
            rate: median(&mut rates[i]),
            cpu_us: us(cpu[i]) / (done[i].max(1) as f64),
        })
        .collect();
    (measured, api_calls)
}

/// Requests per second with `IN_FLIGHT` requests outstanding for `RATE_ROUND`, and how
/// many were answered.
async fn rate(client: &async_nats::Client, subject: &'static str, body: Bytes) -> (f64, u64) {
    let mut in_flight = FuturesUnordered::new();
    let send = |in_flight: &mut FuturesUnordered<_>| {
        let client = client.clone();
        let body = body.clone();
        in_flight.push(async move { client.request(subject, body).await });
    };
    for _ in 0..IN_FLIGHT {
        send(&mut in_flight);
    }
    let started = Instant::now();
    let mut done = 0u64;
    while let Some(result) = in_flight.next().await {
        let message = result.unwrap_or_else(|e| panic!("request {subject}: {e}"));
        // The header only: parsing every reply would load the bench, not the service.
        if let Some(code) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR_CODE))
        {
            panic!("{subject}: error {code}");
        }
        done += 1;
        if started.elapsed() < RATE_ROUND {
            send(&mut in_flight);
        }
    }
    (done as f64 / started.elapsed().as_secs_f64(), done)
}

/// The warm p50 and throughput rows of `service` against `inline` (the inline echo), with
/// the targets of issue 11; `what` names the case in the rows ("" or ", through an
/// import").
pub fn rows(service: &Measured, inline: &Measured, what: &str, note: String) -> Vec<Figure> {
    vec![
        Figure {
            name: format!("warm lattice{what}, sequential p50"),
            unit: "us",
            value: us(service.p50),
            baseline_name: "inline echo",
            baseline: Some(us(inline.p50)),
            target: Target::RatioAtMost(1.15),
            note: note.clone(),
            floor: None,
            hop: None,
        },
        Figure {
            name: format!("warm lattice{what}, req/s at {IN_FLIGHT} in flight"),
            unit: "req/s",
            value: service.rate,
            baseline_name: "inline echo",
            baseline: Some(inline.rate),
            target: Target::RatioAtLeast(0.85),
            note: format!(
                "median of {RATE_ROUNDS} rounds of {RATE_ROUND:?} each, in turn with the \
                 echo; process CPU per request: service {:.1} us, inline echo {:.1} us",
                service.cpu_us, inline.cpu_us
            ),
            floor: None,
            hop: None,
        },
    ]
}

/// Warm `lattice` against the inline echo, and the task-per-request echo against the
/// inline one, for information.
pub async fn figures(
    client: &async_nats::Client,
    service: &Process,
    inline: &Process,
    task: &Process,
) -> Vec<Figure> {
    let lattice = Bytes::from_static(b"warm");
    super::provision(
        client,
        super::LATTICE_SUBJECT,
        lattice.clone(),
        &["created"],
    )
    .await;
    let contenders = [
        Contender {
            subject: super::echo::Mode::Inline.subject(),
            process: inline,
            provisions: false,
        },
        Contender {
            subject: super::LATTICE_SUBJECT,
            process: service,
            provisions: true,
        },
        Contender {
            subject: super::echo::Mode::Task.subject(),
            process: task,
            provisions: false,
        },
    ];
    let (m, api_calls) = measure(client, &contenders, lattice).await;
    let (inline, service, task) = (&m[0], &m[1], &m[2]);
    let mut figures = rows(
        service,
        inline,
        "",
        format!(
            "{WARM_PAIRS} rounds in turn (inline echo, service, task echo); JetStream API \
             calls while warm: {api_calls} (server audit)"
        ),
    );
    figures[1]
        .note
        .push_str(&format!(", task echo {:.1} us", task.cpu_us));
    figures.extend([
        Figure {
            name: "echo with a task per request, sequential p50".into(),
            unit: "us",
            value: us(task.p50),
            baseline_name: "inline echo",
            baseline: Some(us(inline.p50)),
            target: Target::Info,
            note: String::new(),
            floor: None,
            hop: None,
        },
        Figure {
            name: format!("echo with a task per request, req/s at {IN_FLIGHT} in flight"),
            unit: "req/s",
            value: task.rate,
            baseline_name: "inline echo",
            baseline: Some(inline.rate),
            target: Target::Info,
            note: String::new(),
            floor: None,
            hop: None,
        },
    ]);
    figures
}
