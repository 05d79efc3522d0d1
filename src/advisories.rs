//! Keeps the warm-path cache honest: JetStream publishes an advisory whenever a stream is
//! deleted or its config updated, and the provisioner forgets that stream at once, so the
//! next request observes it again (and recreates a deleted bucket).
//!
//! Advisories are best effort (they are lost while disconnected, and a user may lack the
//! permission to subscribe), so the cache also has a bounded lifetime and is cleared on
//! every reconnect (see `config::connect`).

use std::sync::Arc;

use futures::StreamExt;
use tracing::{debug, info};

use crate::reconcile::KnownStreams;

/// Advisory subjects for stream deletions and updates; the last token is the stream.
pub const SUBJECTS: [&str; 2] = [
    "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
    "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
];

/// Subscribes to the advisories and forgets each named stream. Runs until the client is
/// closed.
pub async fn watch(
    client: async_nats::Client,
    known: Arc<KnownStreams>,
) -> Result<(), async_nats::SubscribeError> {
    let mut subscriptions = Vec::new();
    for subject in SUBJECTS {
        subscriptions.push(client.subscribe(subject).await?);
    }
    info!("watching stream advisories to keep the cache fresh");
    tokio::spawn(async move {
        let mut all = futures::stream::select_all(subscriptions);
        while let Some(message) = all.next().await {
            if let Some(stream) = message.subject.rsplit('.').next() {
                debug!(stream, subject = %message.subject, "stream changed out of band; forgetting it");
                known.forget(stream);
            }
        }
    });
    Ok(())
}
