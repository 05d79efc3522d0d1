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

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::service::{Request, ServiceExt};
use async_nats::HeaderMap;
use futures::stream::{select_all, StreamExt};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::advisories;
use crate::audit::{self, Origin};
use crate::endpoints::warm::{self, NotWarm, WarmAnswer, WarmReplies};
use crate::endpoints::{self, EndpointSpec, Prepared, Reply, ENDPOINTS};
use crate::error::ProvisionError;
use crate::metrics::Metrics;
use crate::provisioner::Provisioner;
use crate::witness::{endpoint_for, Witness};

pub use crate::subjects::SERVICE_NAME;

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
    let mut requests = select_all(streams);
    let instance_id = service.info().await.id;
    if let Some(path) = &options.id_file {
        crate::ping::write_id_file(path, &instance_id)?;
    }
    info!(
        service = SERVICE_NAME,
        version = env!("CARGO_PKG_VERSION"),
        endpoints = ENDPOINTS.len(),
        "listening on {}.>",
        endpoints::SUBJECT_PREFIX
    );

    let js_client = provisioner.reconciler.js().client();
    let own_connection = !same_connection(&client, &js_client);
    let route = Arc::new(ReplyRoute {
        draining: AtomicBool::new(false),
        queuing: AtomicUsize::new(0),
        fallback: js_client.clone(),
    });
    let shared = Arc::new(Shared {
        provisioner: provisioner.clone(),
        metrics: metrics.clone(),
        route: route.clone(),
        warm_replies: WarmReplies::default(),
        tenants: options.tenants.clone(),
        account: None,
    });
    let tracker = TaskTracker::new();
    let spawn = |spec: &'static EndpointSpec, request: Incoming| {
        tracker.spawn(handle(shared.clone(), spec, request));
    };

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
                Some((spec, request)) => match answer_inline(&shared, spec, request).await {
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

    info!("stopping: no new requests; finishing those in flight");
    if own_connection {
        // A witness takes a copy of every request from here on (see `witness`), so that
        // stopping the endpoints loses nothing that was on the wire to them.
        let witness = Witness::start(&client, Duration::from_secs(5)).await;
        // Requests the endpoints delivered from now on: the witness's copies of these are
        // answered already.
        let mut delivered: HashSet<RequestKey> = HashSet::new();
        service.stop().await?;
        collect_delivered(&mut requests, |spec, request| {
            delivered.insert(RequestKey::of(&request.message));
            spawn(spec, Incoming::Endpoint(request));
        })
        .await;
        if let Some(witness) = witness {
            let seen = witness.finish(Duration::from_secs(10)).await;
            let mut missed = 0;
            for message in seen {
                let taken = delivered.contains(&RequestKey::of(&message));
                if let (false, Some(spec)) = (taken, endpoint_for(&message.subject)) {
                    missed += 1;
                    spawn(spec, Incoming::Witness(message));
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
        // From here on replies use the JetStream connection: the service connection
        // closes as soon as its subscriptions are drained, and async-nats then drops
        // whatever it has not written yet. So first every reply already headed for the
        // service connection is queued there, then written and seen by the server (the
        // flush), and only then the drain starts.
        route.stop_queuing().await;
        flush_bounded(&client, "the replies sent so far").await;
        client.drain().await?;
    } else {
        warn!(
            "the service shares its connection with JetStream, so it cannot drain it; \
             requests already on the wire may be lost"
        );
        service.stop().await?;
        collect_delivered(&mut requests, |spec, request| {
            spawn(spec, Incoming::Endpoint(request))
        })
        .await;
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

/// What every request's task shares: one per account served (see `accounts`).
pub struct Shared {
    provisioner: Arc<Provisioner>,
    metrics: Arc<Metrics>,
    route: Arc<ReplyRoute>,
    /// Per account: a warm reply of one account never answers another's request.
    warm_replies: WarmReplies,
    /// The own account's only: where requests from other accounts go.
    tenants: Option<Arc<crate::accounts::Tenants<Shared>>>,
    /// A tenant account's only: its name, for STATS.
    account: Option<String>,
}

impl crate::accounts::AccountShared for Shared {
    /// What a tenant account's requests share: its provisioner and warm replies; the
    /// service's metrics and reply route.
    fn for_account(&self, account: &str, provisioner: Arc<Provisioner>) -> Shared {
        Shared {
            provisioner,
            metrics: self.metrics.clone(),
            route: self.route.clone(),
            warm_replies: WarmReplies::default(),
            tenants: None,
            account: Some(account.to_string()),
        }
    }
}

/// The [`Shared`] of the account a request comes from, or why it is refused (issue 12).
fn account_of(shared: Arc<Shared>, message: &async_nats::Message) -> Result<Arc<Shared>, Route> {
    let Some(tenants) = &shared.tenants else {
        return Ok(shared);
    };
    match tenants.route(message.headers.as_ref(), message.reply.as_deref(), || {
        shared.route.fallback.server_info().version
    }) {
        crate::accounts::Route::Own => Ok(shared),
        crate::accounts::Route::Served(tenant) => Ok(tenant),
        crate::accounts::Route::Open(tenants, account) => {
            Err(Route::Open(tenants, account, shared))
        }
        crate::accounts::Route::Refused(e) => Err(Route::Refused(e, shared)),
    }
}

/// A request that is not simply served in its account at once.
enum Route {
    Open(Arc<crate::accounts::Tenants<Shared>>, String, Arc<Shared>),
    Refused(ProvisionError, Arc<Shared>),
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

/// A request as it arrived: through its endpoint (answered through it, so that the
/// service's STATS count it), or, at shutdown, through the witness (see [`crate::witness`];
/// answered on the JetStream connection).
enum Incoming {
    Endpoint(Request),
    Witness(async_nats::Message),
}

impl Incoming {
    fn message(&self) -> &async_nats::Message {
        match self {
            Incoming::Endpoint(request) => &request.message,
            Incoming::Witness(message) => message,
        }
    }

    fn message_mut(&mut self) -> &mut async_nats::Message {
        match self {
            Incoming::Endpoint(request) => &mut request.message,
            Incoming::Witness(message) => message,
        }
    }
}

/// What tells two requests apart at shutdown: subject, reply subject and body (a client
/// may use one reply subject for several requests).
#[derive(PartialEq, Eq, Hash)]
struct RequestKey(String, Option<String>, bytes::Bytes);

impl RequestKey {
    fn of(message: &async_nats::Message) -> RequestKey {
        RequestKey(
            message.subject.to_string(),
            message.reply.as_ref().map(|r| r.to_string()),
            message.payload.clone(),
        )
    }
}

/// How far a request got before its span (see [`handle`]).
enum Stage {
    Prepared(Prepared),
    Answered(Result<Reply, ProvisionError>),
}

impl Stage {
    /// After a warm answer was tried: answered (or refused), or the cold path.
    fn after_warm(answer: Result<Reply, NotWarm>) -> Stage {
        match answer {
            Ok(reply) => Stage::Answered(Ok(reply)),
            Err(NotWarm::Refused(refused)) => Stage::Answered(Err(refused)),
            Err(NotWarm::Cold(cold)) => Stage::Prepared(cold),
        }
    }
}

/// What the receive loop leaves of a request it did not answer: its task's work.
enum Later {
    /// Served in this account (its [`Shared`]), from this stage on.
    InAccount(Arc<Shared>, Option<Stage>),
    /// Another account's, not open yet, or refused.
    OtherAccount(Route),
}

/// Answers a request in the receive loop when it is warm: the bulk of a fleet's start is
/// warm `lattice` (or `wadm`) requests, which change nothing and are not logged unless at
/// debug. Their answer needs no await but the send ([`warm_in_account`]), so a task of
/// their own would cost more than the answer. Otherwise returns what the request's task
/// is to do, with what was learned so far.
async fn answer_inline(
    shared: &Arc<Shared>,
    spec: &'static EndpointSpec,
    mut request: Request,
) -> Option<(Later, Incoming)> {
    // A request's headers may be up to max_payload of anything: keep the two it reads.
    crate::headers::keep_only_used(&mut request.message);
    let request = Incoming::Endpoint(request);
    // Issue 12: a request from another account is served in that account (`accounts`).
    let later = match account_of(shared.clone(), request.message()) {
        Ok(account) => match warm_in_account(&account, spec, request.message()) {
            Ok(answer) => {
                send_warm(&account, spec, &request, answer).await;
                return None;
            }
            Err(stage) => Later::InAccount(account, stage),
        },
        Err(route) => Later::OtherAccount(route),
    };
    Some((later, request))
}

/// Handles one request in a task of its own: at shutdown, the requests the endpoints
/// still deliver and those only the witness saw (see [`serve`]).
async fn handle(shared: Arc<Shared>, spec: &'static EndpointSpec, mut request: Incoming) {
    crate::headers::keep_only_used(request.message_mut());
    // Boxed: only requests of another account pay for the room of opening it or refusing.
    match account_of(shared, request.message()) {
        Ok(shared) => handle_in_account(shared, spec, request).await,
        Err(route) => Box::pin(handle_other_account(route, spec, request)).await,
    }
}

/// A request whose account is not open yet (open it, then serve it there), or refused.
async fn handle_other_account(route: Route, spec: &'static EndpointSpec, request: Incoming) {
    let (own, refused) = match route {
        Route::Open(tenants, account, own) => match tenants.open(&own, &account).await {
            Ok(tenant) => return handle_in_account(tenant, spec, request).await,
            Err(e) => (own, e),
        },
        Route::Refused(e, own) => (own, e),
    };
    answer_in_span(own, spec, request, Some(Stage::Answered(Err(refused)))).await
}

/// [`handle`] once the requester's account is known: `shared` is that account's.
async fn handle_in_account(shared: Arc<Shared>, spec: &'static EndpointSpec, request: Incoming) {
    match warm_in_account(&shared, spec, request.message()) {
        Ok(answer) => send_warm(&shared, spec, &request, answer).await,
        // Boxed: only requests that are not warm (or are logged) pay for the room.
        Err(stage) => Box::pin(answer_in_span(shared, spec, request, stage)).await,
    }
}

/// Counts a request in its account's STATS and, for an endpoint that is quiet when warm
/// and below debug, asks the warm path's door ([`warm::answer`]) for its answer. Else the
/// stage its span starts from (`None`: nothing was tried). Synchronous.
fn warm_in_account(
    shared: &Shared,
    spec: &'static EndpointSpec,
    message: &async_nats::Message,
) -> Result<WarmAnswer, Option<Stage>> {
    if let Some(account) = &shared.account {
        shared.metrics.record_account(spec.name, account);
    }
    if !spec.quiet_when_warm || tracing::enabled!(tracing::Level::DEBUG) {
        return Err(None);
    }
    let answer = warm::answer(&shared.provisioner, &shared.warm_replies, spec, message);
    answer.map_err(|not| Some(Stage::after_warm(Err(not))))
}

/// Sends a warm answer (no span, no log line: counted in STATS `data.warm`).
async fn send_warm(
    shared: &Shared,
    spec: &'static EndpointSpec,
    request: &Incoming,
    answer: WarmAnswer,
) {
    shared.metrics.record_warm(spec.name, answer.resources);
    if let Err(e) = shared
        .route
        .send(request, HeaderMap::new(), answer.body)
        .await
    {
        debug!("no reply sent: {e}");
    }
}

/// The rest of a request, in its span: prepare and try the warm answer (unless
/// [`warm_in_account`] did: `stage`), the cold path, the reply, and the log line. One span
/// with subject, lattice, outcome and duration: only requests that are not answered warm
/// without a log line pay for it.
async fn answer_in_span(
    shared: Arc<Shared>,
    spec: &'static EndpointSpec,
    request: Incoming,
    stage: Option<Stage>,
) {
    let started = Instant::now();
    let span = tracing::info_span!(
        "request",
        endpoint = spec.name,
        subject = %request.message().subject,
        lattice = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    async move {
        let provisioner = &shared.provisioner;
        let metrics = &shared.metrics;
        // With `answered` below, lets a log reader check that every request taken was
        // answered (the SIGTERM test does).
        debug!("received");
        let message = request.message();
        // Either the answer, or work for the cold path.
        let stage = match stage {
            Some(stage) => stage,
            None => match endpoints::prepare(
                provisioner,
                spec,
                &message.subject,
                message.headers.as_ref(),
                &message.payload,
            ) {
                Err(refused) => Stage::Answered(Err(refused)),
                Ok(prepared) => Stage::after_warm(prepared.try_warm(provisioner)),
            },
        };
        let result = match stage {
            Stage::Prepared(cold) => {
                // Changes made for this request name it in their audit events.
                let origin = Origin::request(spec.name, &message.subject, message.headers.as_ref());
                Box::pin(audit::with_origin(origin, cold.run(provisioner))).await
            }
            Stage::Answered(answer) => answer,
        };
        let span = tracing::Span::current();
        // A warm answer is not logged unless at debug: then nobody reads the span's
        // fields, and recording them would be most of the cost of answering.
        let (mut warm, mut quiet) = (false, false);
        let (headers, body) = match result {
            Ok(reply) => {
                warm = !reply.reports.is_empty() && reply.reports.iter().all(|r| r.warm);
                quiet = warm && !tracing::enabled!(tracing::Level::DEBUG);
                if !quiet && !span.is_disabled() {
                    if let Some(l) = &reply.lattice {
                        span.record("lattice", l.as_str());
                    }
                    let outcome = summarize(&reply.reports);
                    span.record("outcome", outcome.as_str());
                }
                metrics.record_reports(spec.name, &reply.reports);
                (HeaderMap::new(), reply.to_json().into())
            }
            Err(error) => {
                span.record("outcome", format!("error {}", error.code()).as_str());
                if let Some(l) = error.lattice() {
                    span.record("lattice", l);
                }
                metrics.record_failure(spec.name, &error);
                if error.code() >= 500 {
                    warn!(code = error.code(), "{}", error.message);
                } else {
                    debug!(code = error.code(), "{}", error.message);
                }
                (error_headers(&error), error_body(&error))
            }
        };
        // One send for both outcomes: each `.await` of a send future takes its own room.
        let sent = shared.route.send(&request, headers, body).await;
        if !quiet {
            span.record("duration_us", started.elapsed().as_micros() as u64);
        }
        match sent {
            // Warm answers are the bulk of a fleet's start and change nothing: counted in
            // STATS (`data.warm`), logged only at debug.
            Ok(()) if quiet => {}
            Ok(()) if warm => debug!("answered"),
            Ok(()) => info!("answered"),
            // A request published without a reply subject was still carried out.
            Err(e) => debug!("no reply sent: {e}"),
        }
    }
    .instrument(span)
    .await
}

/// Where replies go: through the request (counted in the service's STATS) while the
/// service connection is up, through the JetStream connection once it is draining.
///
/// The switch must not let a reply slip behind the drain: async-nats ends a drained
/// connection without writing what it still holds (a reply queued behind the drain, or
/// not yet written when the drain completes) although `respond` returned `Ok`, and its
/// requester would wait in vain (one such reply in a CI rehearsal of the SIGTERM test).
/// So a reply counts itself in `queuing` *before* it reads `draining`, and the shutdown
/// sets `draining` *before* it waits for `queuing` to reach zero: with sequentially
/// consistent atomics, a reply either sees the switch or is waited for. Two atomic
/// operations per reply, where a lock would put a mutex on the hot path.
struct ReplyRoute {
    draining: AtomicBool,
    /// Replies being queued on the service connection right now.
    queuing: AtomicUsize,
    fallback: async_nats::Client,
}

/// Counts a reply out of [`ReplyRoute::queuing`] however its send ends.
struct Queuing<'a>(&'a AtomicUsize);

impl Drop for Queuing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ReplyRoute {
    /// Switches replies to the JetStream connection and waits until every reply that was
    /// still headed for the service connection is queued there (each takes one channel
    /// send; bounded at 5 s all the same).
    async fn stop_queuing(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let waited = Instant::now();
        while self.queuing.load(Ordering::SeqCst) > 0 {
            if waited.elapsed() > Duration::from_secs(5) {
                warn!("replies still being queued on the service connection after 5 s");
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn send(
        &self,
        request: &Incoming,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Result<(), async_nats::PublishError> {
        if let Incoming::Endpoint(request) = request {
            self.queuing.fetch_add(1, Ordering::SeqCst);
            let queuing = Queuing(&self.queuing);
            if !self.draining.load(Ordering::SeqCst) {
                return if headers.is_empty() {
                    request.respond(Ok(body)).await
                } else {
                    request.respond_with_headers(Ok(body), headers).await
                };
            }
            drop(queuing);
        }
        let Some(reply) = request.message().reply.clone() else {
            return Err(async_nats::PublishError::new(
                async_nats::client::PublishErrorKind::InvalidSubject,
            ));
        };
        self.fallback
            .publish_with_headers(reply, headers, body)
            .await
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

/// The ADR-32 error headers.
fn error_headers(error: &ProvisionError) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::service::NATS_SERVICE_ERROR,
        error.header_text().as_str(),
    );
    headers.insert(
        async_nats::service::NATS_SERVICE_ERROR_CODE,
        error.code().to_string().as_str(),
    );
    headers
}

fn error_body(error: &ProvisionError) -> bytes::Bytes {
    serde_json::to_vec(&error.body()).unwrap_or_default().into()
}

/// Whether two clients are one connection (the server gives each connection an id).
fn same_connection(a: &async_nats::Client, b: &async_nats::Client) -> bool {
    let (a, b) = (a.server_info(), b.server_info());
    a.server_id == b.server_id && a.client_id == b.client_id
}

/// `created=1 exists=1` for logs.
fn summarize(reports: &[crate::reconcile::ResourceReport]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in reports {
        *counts.entry(r.action.as_str()).or_default() += 1;
    }
    let warm = if !reports.is_empty() && reports.iter().all(|r| r.warm) {
        " warm"
    } else {
        ""
    };
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{warm}", parts.join(" "))
}
