//! Where a reply goes, and the switch at shutdown that must not lose one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use tracing::warn;

use crate::error::ProvisionError;

use super::answer::Incoming;

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
pub(super) struct ReplyRoute {
    pub(super) draining: AtomicBool,
    /// Replies being queued on the service connection right now.
    pub(super) queuing: AtomicUsize,
    pub(super) fallback: async_nats::Client,
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
    pub(super) async fn stop_queuing(&self) {
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

    pub(super) async fn send(
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

/// The ADR-32 error headers.
pub(super) fn error_headers(error: &ProvisionError) -> HeaderMap {
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

pub(super) fn error_body(error: &ProvisionError) -> bytes::Bytes {
    serde_json::to_vec(&error.body()).unwrap_or_default().into()
}
