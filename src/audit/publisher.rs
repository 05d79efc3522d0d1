//! The publishing side of the audit trail: a bounded queue and one task that publishes
//! from it, so that a slow connection never holds up a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, Instance, QUEUE_CAPACITY};
use crate::plan::{Change, ChangeListener};

enum Message {
    Event(Box<AuditEvent>),
    /// Publish everything queued before, flush, then answer and stop.
    Close(oneshot::Sender<()>),
}

/// Publishes audit events from a bounded queue. A clone publishes through the same queue.
#[derive(Clone)]
pub struct AuditPublisher {
    queue: mpsc::Sender<Message>,
    instance: Instance,
    js_domain: Option<String>,
    dropped: Arc<AtomicU64>,
}

impl AuditPublisher {
    /// Starts the publishing task on `client`.
    pub fn start(
        client: async_nats::Client,
        instance: Instance,
        js_domain: Option<String>,
    ) -> Self {
        let (queue, mut rx) = mpsc::channel::<Message>(QUEUE_CAPACITY);
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                match message {
                    Message::Event(event) => {
                        let Some(body) = event.to_bytes() else {
                            continue;
                        };
                        if let Err(e) = client.publish(event.subject(), body.into()).await {
                            tracing::warn!(
                                resource = %event.resource.name,
                                action = event.action,
                                "audit event not published: {e}"
                            );
                        }
                    }
                    Message::Close(done) => {
                        if let Err(e) = client.flush().await {
                            tracing::warn!("audit events may be lost: flush failed: {e}");
                        }
                        let _ = done.send(());
                        break;
                    }
                }
            }
        });
        AuditPublisher {
            queue,
            instance,
            js_domain,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Events dropped because the queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The listener to hand to the reconciler (`Reconciler::with_listener`). Never
    /// blocks: a full queue drops the event.
    pub fn listener(&self) -> ChangeListener {
        self.listener_in(None, self.js_domain.clone())
    }

    /// [`AuditPublisher::listener`] for the reconciler of a tenant account (`accounts`):
    /// its events name the account and its JetStream domain.
    pub fn listener_in(
        &self,
        account: Option<String>,
        js_domain: Option<String>,
    ) -> ChangeListener {
        let queue = self.queue.clone();
        let instance = self.instance.clone();
        let dropped = self.dropped.clone();
        Arc::new(move |change: &Change| {
            let Some(mut event) = AuditEvent::of(change, &instance, js_domain.as_deref()) else {
                return;
            };
            event.account = account.clone();
            if let Err(e) = queue.try_send(Message::Event(Box::new(event))) {
                let total = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the publisher has stopped",
                };
                tracing::warn!(
                    resource = %change.report.name,
                    dropped = total,
                    "audit event dropped: {why}"
                );
            }
        })
    }

    /// Queues an event built by the caller (backup and restore). Never blocks: a full
    /// queue drops the event.
    pub fn publish(&self, event: AuditEvent) {
        if self
            .queue
            .try_send(Message::Event(Box::new(event)))
            .is_err()
        {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = total, "audit event dropped: the queue is full");
        }
    }

    /// Publishes what is queued and flushes, waiting at most `timeout`.
    pub async fn close(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        let closing = async {
            if self.queue.send(Message::Close(done)).await.is_ok() {
                let _ = finished.await;
            }
        };
        if tokio::time::timeout(timeout, closing).await.is_err() {
            tracing::warn!("audit events still queued after {timeout:?}; some may be lost");
        }
    }
}
