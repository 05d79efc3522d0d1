//! The micro service: registration through async-nats's Services API, warm requests
//! answered in the receive loop, one task per other request, and a graceful drain.
//!
//! Replies: success is the endpoint's JSON; an error carries the ADR-32 headers
//! `Nats-Service-Error` and `Nats-Service-Error-Code` *and* a JSON body
//! `{"error": {"code", "message"}}`. async-nats's own error reply has an empty body, so
//! the headers are set here and errors are counted in [`Metrics`] (STATS `data`).
//!
//! Shutdown: async-nats forgets an endpoint's subscription as soon as it has written the
//! UNSUB (`Service::stop()` and its connection drain alike), so requests the server
//! routed to it before it processed the UNSUB can be dropped and their requesters time
//! out (nats-io/nats.rs#1325). The service therefore runs on a connection of its own, and
//! on SIGINT/SIGTERM a witness subscription takes a copy of every request before the
//! endpoints stop, and ends only after the server's last message to it
//! ([`crate::witness`]); what the endpoints did not deliver is answered from it. Then the
//! connection is drained. Replies sent after the endpoints stop go out on the
//! provisioner's JetStream connection, which stays up until every request task is done;
//! replies sent before are flushed before the drain, since async-nats ends a drained
//! connection without writing what it still holds.

mod answer;
mod reply_route;
mod shared;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::{Request, ServiceExt};
use futures::stream::{select_all, BoxStream, SelectAll, StreamExt};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::advisories;
use crate::endpoints::warm::WarmReplies;
use crate::endpoints::{EndpointSpec, ENDPOINTS};
use crate::metrics::Metrics;
use crate::provisioner::Provisioner;
use crate::subjects::{SERVICE_NAME, SUBJECT_PREFIX};
use crate::witness::{endpoint_for, Witness};

use answer::{
    answer_in_span, answer_inline, handle, handle_other_account, Incoming, Later, RequestKey,
};
use reply_route::ReplyRoute;
pub use shared::Shared;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    /// Extra service metadata (domain, replicas, …).
    pub metadata: HashMap<String, String>,
    /// Where to write this instance's Services API id once every endpoint is registered,
    /// for `ping --self-file` (see `ping.rs`); removed at shutdown.
    pub id_file: Option<std::path::PathBuf>,
    /// Tenant accounts served besides the own one (issue 12, `accounts`).
    pub tenants: Option<Arc<crate::accounts::Tenants<Shared>>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain_timeout: Duration::from_secs(30),
            metadata: HashMap::new(),
            id_file: None,
            tenants: None,
        }
    }
}

/// Runs the service until `shutdown` resolves, then drains. Returns once every accepted
/// request has its reply.
///
/// `client` is the service's own connection: it is drained at shutdown, so it must not be
/// the connection of the provisioner's JetStream context (if it is, shutdown falls back
/// to async-nats's `stop()`, which may drop requests in flight on the wire).
pub async fn serve(
    client: async_nats::Client,
    provisioner: Arc<Provisioner>,
    metrics: Arc<Metrics>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), async_nats::Error> {
    // Before the first request: an advisory is always handled before the requests that
    // arrived after it (see `advisories`).
    let mut stream_advisories = advisories::subscribe(&client).await?;
    let (service, mut requests) = register(&client, &metrics, &options).await?;
    let instance_id = service.info().await.id;
    if let Some(path) = &options.id_file {
        crate::ping::write_id_file(path, &instance_id)?;
    }
    info!(
        service = SERVICE_NAME,
        version = env!("CARGO_PKG_VERSION"),
        endpoints = ENDPOINTS.len(),
        "listening on {}.>",
        SUBJECT_PREFIX
    );

    let js_client = provisioner.reconciler.js().client();
    let route = Arc::new(ReplyRoute {
        draining: AtomicBool::new(false),
        queuing: AtomicUsize::new(0),
        fallback: js_client.clone(),
    });
    let shared = Arc::new(Shared {
        provisioner: provisioner.clone(),
        metrics,
        route: route.clone(),
        warm_replies: WarmReplies::default(),
        tenants: options.tenants.clone(),
        account: None,
    });
    let tracker = TaskTracker::new();
    receive(
        &shared,
        &mut requests,
        &mut stream_advisories,
        &tracker,
        shutdown,
    )
    .await;

    info!("stopping: no new requests; finishing those in flight");
    let stopping = Stopping {
        shared: &shared,
        tracker: &tracker,
    };
    if same_connection(&client, &js_client) {
        warn!(
            "the service shares its connection with JetStream, so it cannot drain it; \
             requests already on the wire may be lost"
        );
        service.stop().await?;
        collect_delivered(&mut requests, |spec, request| {
            stopping.spawn(spec, Incoming::Endpoint(request))
        })
        .await;
    } else {
        stopping
            .stop_and_drain(&client, service, &mut requests)
            .await?;
    }
    tracker.close();
    if tokio::time::timeout(options.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            in_flight = tracker.len(),
            "requests still running after the drain timeout; exiting without their replies"
        );
    }
    flush_bounded(&js_client, "the last replies").await;
    if let Some(path) = &options.id_file {
        crate::ping::remove_id_file(path, &instance_id);
    }
    info!("stopped");
    Ok(())
}

/// Every endpoint's requests, merged, each with its endpoint.
type Requests = SelectAll<BoxStream<'static, (&'static EndpointSpec, Request)>>;

/// Registers the service and its endpoints with the Services API (what `nats micro
/// info` shows): one subscription per endpoint, merged into one stream of requests.
async fn register(
    client: &async_nats::Client,
    metrics: &Arc<Metrics>,
    options: &ServeOptions,
) -> Result<(async_nats::service::Service, Requests), async_nats::Error> {
    let stats_metrics = metrics.clone();
    let service = client
        .service_builder()
        .description(
            "Creates the JetStream KV buckets and streams that wasmCloud hosts and wadm need, \
             so that they can run with least privilege",
        )
        .metadata(options.metadata.clone())
        .stats_handler(move |endpoint, _stats| stats_metrics.data(&endpoint))
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await?;
    let mut streams = Vec::new();
    for spec in ENDPOINTS {
        let endpoint = service
            .endpoint_builder()
            .name(spec.name)
            .metadata(spec.metadata())
            .add(spec.subject)
            .await?;
        streams.push(endpoint.map(move |request| (spec, request)).boxed());
    }
    Ok((service, select_all(streams)))
}

/// The receive loop, until `shutdown` resolves or every endpoint subscription ended.
async fn receive(
    shared: &Arc<Shared>,
    requests: &mut Requests,
    stream_advisories: &mut (impl futures::Stream<Item = async_nats::Message> + Unpin),
    tracker: &TaskTracker,
    shutdown: impl Future<Output = ()>,
) {
    let provisioner = &shared.provisioner;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(advisory) = stream_advisories.next() => {
                advisories::forget(provisioner.reconciler.known(), &advisory);
            }
            // A warm request is answered right here, as the cheapest responder would (its
            // bytes are stored, its checks synchronous): a task per request would cost
            // more than the answer. What is not warm gets its own task.
            next = requests.next() => match next {
                Some((spec, request)) => match answer_inline(shared, spec, request).await {
                    None => {}
                    Some((Later::InAccount(account, stage), request)) => {
                        tracker.spawn(answer_in_span(account, spec, request, stage));
                    }
                    Some((Later::OtherAccount(route), request)) => {
                        tracker.spawn(handle_other_account(route, spec, request));
                    }
                },
                None => {
                    warn!("every endpoint subscription ended; stopping");
                    break;
                }
            },
        }
    }
}

/// What the shutdown needs to answer the requests still arriving.
struct Stopping<'a> {
    shared: &'a Arc<Shared>,
    tracker: &'a TaskTracker,
}

impl Stopping<'_> {
    /// Answers a request that arrived during the shutdown, in a task of its own.
    fn spawn(&self, spec: &'static EndpointSpec, request: Incoming) {
        self.tracker
            .spawn(handle(self.shared.clone(), spec, request));
    }

    /// On the service's own connection: stops the endpoints without losing what was on
    /// the wire to them (the witness), then drains the connection once every reply
    /// headed for it is written.
    async fn stop_and_drain(
        &self,
        client: &async_nats::Client,
        service: async_nats::service::Service,
        requests: &mut Requests,
    ) -> Result<(), async_nats::Error> {
        // A witness takes a copy of every request from here on (see `witness`), so that
        // stopping the endpoints loses nothing that was on the wire to them.
        let witness = Witness::start(client, Duration::from_secs(5)).await;
        // Requests the endpoints delivered from now on: the witness's copies of these are
        // answered already.
        let mut delivered: HashSet<RequestKey> = HashSet::new();
        service.stop().await?;
        collect_delivered(requests, |spec, request| {
            delivered.insert(RequestKey::of(&request.message));
            self.spawn(spec, Incoming::Endpoint(request));
        })
        .await;
        if let Some(witness) = witness {
            self.answer_missed(witness, &delivered).await;
        }
        // From here on replies use the JetStream connection: the service connection
        // closes as soon as its subscriptions are drained, and async-nats then drops
        // whatever it has not written yet. So first every reply already headed for the
        // service connection is queued there, then written and seen by the server (the
        // flush), and only then the drain starts.
        self.shared.route.stop_queuing().await;
        flush_bounded(client, "the replies sent so far").await;
        client.drain().await?;
        Ok(())
    }

    /// Answers the requests only the witness saw (on the wire when the endpoints stopped).
    async fn answer_missed(&self, witness: Witness, delivered: &HashSet<RequestKey>) {
        let seen = witness.finish(Duration::from_secs(10)).await;
        let mut missed = 0;
        for message in seen {
            let taken = delivered.contains(&RequestKey::of(&message));
            if let (false, Some(spec)) = (taken, endpoint_for(&message.subject)) {
                missed += 1;
                self.spawn(spec, Incoming::Witness(message));
            }
        }
        if missed > 0 {
            info!(
                missed,
                "answering requests the endpoints did not deliver (on the wire when they \
                 stopped, or taken by another instance too)"
            );
        }
    }
}

/// After the endpoints were stopped: hands each request they still deliver to `take`,
/// until their subscriptions end, or for at most 5 s.
async fn collect_delivered<S>(
    requests: &mut S,
    mut take: impl FnMut(&'static EndpointSpec, Request),
) where
    S: futures::Stream<Item = (&'static EndpointSpec, Request)> + Unpin,
{
    let collect_deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(collect_deadline);
    loop {
        tokio::select! {
            next = requests.next() => match next {
                Some((spec, request)) => take(spec, request),
                None => break,
            },
            _ = &mut collect_deadline => {
                warn!("endpoint subscriptions did not end within 5 s; continuing shutdown");
                break;
            }
        }
    }
}

/// Flushes a connection at shutdown, for at most 5 s: with the server gone, a flush would
/// wait for a reconnect that may never come, and a stopping service must still exit.
async fn flush_bounded(client: &async_nats::Client, what: &str) {
    match tokio::time::timeout(Duration::from_secs(5), client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!("could not flush {what}: {e}"),
        Err(_) => warn!("could not flush {what} within 5 s (is NATS reachable?)"),
    }
}

/// Whether two clients are one connection (the server gives each connection an id).
fn same_connection(a: &async_nats::Client, b: &async_nats::Client) -> bool {
    let (a, b) = (a.server_info(), b.server_info());
    a.server_id == b.server_id && a.client_id == b.client_id
}
