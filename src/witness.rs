//! Stopping the endpoints without losing a request that is on the wire.
//!
//! async-nats (0.51) forgets a subscription on its next poll after writing the UNSUB,
//! without waiting for the server's PONG: a request the server routed to an endpoint
//! before it processed the UNSUB, but that had not reached the client yet, is dropped and
//! its requester times out (nats-io/nats.rs#1325; async-nats's connection drain does the
//! same). Its one unsubscribe that keeps the subscription until the server is done with it
//! is `unsubscribe_after(n)`: server and client both end the subscription after exactly
//! `n` messages, so every message the server sends to it arrives.
//!
//! So at shutdown a *witness* takes over:
//! 1. a plain subscription on `wasmcloud.provision.>` joins, on the service connection;
//!    a marker published after it (`wasmcloud.provision._drain.<id>`) coming back proves
//!    the server has it: from then on every request reaches the witness too;
//! 2. the endpoints unsubscribe (async-nats's way: what was on the wire to them may be
//!    dropped, but the witness holds a copy of each such request);
//! 3. the witness ends with `unsubscribe_after(taken + MARGIN)` and markers are published
//!    until it has received its last message, so it ends exactly when the server's
//!    count does: nothing routed to it is lost;
//! 4. every request the witness saw that the endpoints did not deliver is answered.
//!
//! A request that another instance took is answered by both (the requester keeps the
//! first reply; every endpoint is idempotent). A request published without a reply
//! subject is carried out by whoever took it, not again from the witness.

use std::time::{Duration, Instant};

use async_nats::{Message, Subscriber};
use futures::StreamExt;
use tracing::warn;

use crate::endpoints::{EndpointSpec, ENDPOINTS};
use crate::subjects::DRAIN_MARKER_PREFIX;

/// More than can be buffered for, or on the wire to, the witness when it ends; as many
/// markers are published at most.
const MARGIN: u64 = 10_000;

/// The subject of the markers: under the service's prefix (so the witness matches it), on
/// no endpoint's subject.
pub fn marker_subject() -> String {
    format!("{DRAIN_MARKER_PREFIX}.{}", nuid::next())
}

/// The endpoint a subject belongs to (NATS matching of the endpoints' `*` tokens).
pub fn endpoint_for(subject: &str) -> Option<&'static EndpointSpec> {
    ENDPOINTS.iter().find(|spec| {
        let mut want = spec.subject.split('.');
        let mut got = subject.split('.');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some("*"), Some(_)) => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    })
}

/// The witness subscription and what it has received so far.
pub struct Witness {
    subscriber: Subscriber,
    client: async_nats::Client,
    /// Requests received (endpoint subjects with a reply subject), in order.
    seen: Vec<Message>,
    taken: u64,
}

impl Witness {
    /// Subscribes and waits until the server routes to the witness (a marker comes back);
    /// `None` if that does not happen within `timeout` (then the caller stops the old way).
    pub async fn start(client: &async_nats::Client, timeout: Duration) -> Option<Witness> {
        let subscriber = match client
            .subscribe(format!("{}.>", crate::subjects::SUBJECT_PREFIX))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                warn!("cannot subscribe the shutdown witness: {e}");
                return None;
            }
        };
        let mut witness = Witness {
            subscriber,
            client: client.clone(),
            seen: Vec::new(),
            taken: 0,
        };
        let marker = marker_subject();
        if let Err(e) = client.publish(marker.clone(), "".into()).await {
            warn!("cannot publish the shutdown marker: {e}");
            return None;
        }
        let deadline = Instant::now() + timeout;
        while let Ok(Some(message)) =
            tokio::time::timeout_at(deadline.into(), witness.subscriber.next()).await
        {
            if witness.take(message).as_deref() == Some(marker.as_str()) {
                return Some(witness);
            }
        }
        warn!(
            "the shutdown witness saw its marker not within {timeout:?} (may the provisioner \
             publish to {DRAIN_MARKER_PREFIX}.>?); requests on the wire may be lost"
        );
        None
    }

    /// Counts a message; keeps it if it is a request. Returns the subject of anything else.
    fn take(&mut self, mut message: Message) -> Option<String> {
        self.taken += 1;
        if endpoint_for(&message.subject).is_some() && message.reply.is_some() {
            // Kept until the shutdown ends: only the headers a request is answered with
            // (the same cut `service::handle` makes), not up to max_payload of anything.
            crate::headers::keep_only_used(&mut message);
            self.seen.push(message);
            None
        } else {
            Some(message.subject.to_string())
        }
    }

    /// Takes what arrived so far without waiting.
    pub fn take_ready(&mut self) {
        while let Some(Some(message)) = self.subscriber.next().now_or_never() {
            self.take(message);
        }
    }

    /// Ends the witness without losing anything routed to it (see the module docs) and
    /// returns every request it saw. Bounded by `timeout`.
    pub async fn finish(mut self, timeout: Duration) -> Vec<Message> {
        self.take_ready();
        let last = self.taken + MARGIN;
        if let Err(e) = self.subscriber.unsubscribe_after(last).await {
            warn!("cannot end the shutdown witness: {e}");
            return self.seen;
        }
        // Enough markers for the server's count to reach `last` whatever else arrives; the
        // ones past it go nowhere (nothing else subscribes to them).
        for _ in 0..MARGIN {
            if self
                .client
                .publish(marker_subject(), "".into())
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = self.client.flush().await;
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline.into(), self.subscriber.next()).await {
                Ok(Some(message)) => {
                    self.take(message);
                }
                // The server's last message to it arrived: it has ended.
                Ok(None) => return self.seen,
                Err(_) => {
                    warn!(
                        "the shutdown witness did not end within {timeout:?}; requests on \
                         the wire may be lost"
                    );
                    return self.seen;
                }
            }
        }
    }
}

use futures::FutureExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_their_endpoints() {
        assert_eq!(
            endpoint_for("wasmcloud.provision.lattice").map(|s| s.name),
            Some("lattice")
        );
        assert!(endpoint_for("wasmcloud.provision.lattice.x").is_some());
        assert!(endpoint_for("wasmcloud.provision.lattice.x.y").is_none());
        assert!(endpoint_for(&marker_subject()).is_none());
        assert!(endpoint_for("wasmcloud.provision.events.created").is_none());
    }
}
