//! Answering one request: warm in the receive loop ([`answer_inline`]), or in a task of
//! its own with a span and a log line ([`answer_in_span`]), in the requester's account.

use std::sync::Arc;
use std::time::Instant;

use async_nats::service::Request;
use async_nats::HeaderMap;
use tracing::{debug, info, warn, Instrument};

use crate::endpoints::warm::{self, NotWarm, WarmAnswer};
use crate::endpoints::{self, EndpointSpec, Prepared, Reply};
use crate::error::ProvisionError;
use crate::origin::{self, Origin};

use super::reply_route::{error_body, error_headers};
use super::shared::{account_of, Route, Shared};

/// A request as it arrived: through its endpoint (answered through it, so that the
/// service's STATS count it), or, at shutdown, through the witness (see [`crate::witness`];
/// answered on the JetStream connection).
pub(super) enum Incoming {
    Endpoint(Request),
    Witness(async_nats::Message),
}

impl Incoming {
    pub(super) fn message(&self) -> &async_nats::Message {
        match self {
            Incoming::Endpoint(request) => &request.message,
            Incoming::Witness(message) => message,
        }
    }

    pub(super) fn message_mut(&mut self) -> &mut async_nats::Message {
        match self {
            Incoming::Endpoint(request) => &mut request.message,
            Incoming::Witness(message) => message,
        }
    }
}

/// What tells two requests apart at shutdown: subject, reply subject and body (a client
/// may use one reply subject for several requests).
#[derive(PartialEq, Eq, Hash)]
pub(super) struct RequestKey(String, Option<String>, bytes::Bytes);

impl RequestKey {
    pub(super) fn of(message: &async_nats::Message) -> RequestKey {
        RequestKey(
            message.subject.to_string(),
            message.reply.as_ref().map(|r| r.to_string()),
            message.payload.clone(),
        )
    }
}

/// How far a request got before its span (see [`handle`]).
pub(super) enum Stage {
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
pub(super) enum Later {
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
pub(super) async fn answer_inline(
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
pub(super) async fn handle(
    shared: Arc<Shared>,
    spec: &'static EndpointSpec,
    mut request: Incoming,
) {
    crate::headers::keep_only_used(request.message_mut());
    // Boxed: only requests of another account pay for the room of opening it or refusing.
    match account_of(shared, request.message()) {
        Ok(shared) => handle_in_account(shared, spec, request).await,
        Err(route) => Box::pin(handle_other_account(route, spec, request)).await,
    }
}

/// A request whose account is not open yet (open it, then serve it there), or refused.
pub(super) async fn handle_other_account(
    route: Route,
    spec: &'static EndpointSpec,
    request: Incoming,
) {
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
pub(super) async fn answer_in_span(
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
                Box::pin(origin::with_origin(origin, cold.run(provisioner))).await
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

/// `created=1 exists=1` for logs.
fn summarize(reports: &[crate::plan::ResourceReport]) -> String {
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
