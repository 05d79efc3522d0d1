//! Keeps the warm-path cache honest: JetStream publishes an advisory whenever a stream is
//! deleted or its config updated, and the provisioner forgets that stream at once, so the
//! next request checks it again (and recreates a deleted bucket, or reports drift).
//!
//! `service::serve` subscribes itself and handles the advisories in its request loop,
//! ahead of any request that arrived after them. On a single server the advisory of a
//! delete or update leaves the server before the answer to the API call that caused it,
//! so a request sent after that answer finds the stream already forgotten. In a cluster
//! the advisory comes from the stream's leader and may trail the answer by a moment.
//!
//! Advisories are best effort (they are lost while disconnected, and a user may lack the
//! permission to subscribe), so verdicts also have a bounded lifetime (`--cache-ttl`) and
//! are all forgotten on every reconnect (see `config::connect`).

use futures::Stream;
use tracing::{debug, info};

use crate::known::KnownStreams;

// Advisory subjects for stream deletions and updates; the last token is the stream.
use crate::subjects::STREAM_ADVISORIES;

/// Subscribes to the deletion and update advisories (plain `$JS.EVENT…` subjects: a
/// JetStream domain does not change them).
pub async fn subscribe(
    client: &async_nats::Client,
) -> Result<impl Stream<Item = async_nats::Message> + Unpin + Send, async_nats::SubscribeError> {
    let mut subscriptions = Vec::new();
    for subject in STREAM_ADVISORIES {
        subscriptions.push(client.subscribe(subject).await?);
    }
    info!("watching stream advisories to keep the cache fresh");
    Ok(futures::stream::select_all(subscriptions))
}

/// Forgets the stream an advisory names, in the cache if there is one (the reconciler's
/// `known()`: a reconciler without a cache has nothing to forget).
pub fn forget<'a>(known: impl Into<Option<&'a KnownStreams>>, advisory: &async_nats::Message) {
    let Some(known) = known.into() else {
        return;
    };
    if let Some(stream) = advisory.subject.rsplit('.').next() {
        debug!(stream, subject = %advisory.subject, "stream changed out of band; forgetting it");
        known.forget(stream);
    }
}
