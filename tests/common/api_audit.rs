//! The JetStream API calls as the server itself records them: it publishes an audit
//! advisory on `$JS.EVENT.ADVISORY.API` for every API call in the account. Tests and the
//! bench count `STREAM.CREATE`/`STREAM.INFO` calls from these, not from the provisioner's
//! own word.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

/// Collects the API subjects of the audit advisories, in order.
pub struct ApiAudit {
    subjects: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiAudit {
    pub async fn start(client: &async_nats::Client) -> ApiAudit {
        let mut subscription = client
            .subscribe("$JS.EVENT.ADVISORY.API")
            .await
            .expect("subscribe to the API audit advisories");
        client.flush().await.expect("flush");
        let subjects = Arc::new(Mutex::new(Vec::new()));
        let sink = subjects.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let audit: Value = serde_json::from_slice(&message.payload).unwrap_or_default();
                let subject = audit["subject"].as_str().unwrap_or_default().to_string();
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(subject);
            }
        });
        ApiAudit { subjects, task }
    }

    fn snapshot(&self) -> Vec<String> {
        self.subjects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every call recorded before a marker call made now: the server publishes its audit
    /// advisories in order, so once the marker's arrives, all earlier ones have.
    pub async fn calls_so_far(&self, client: &async_nats::Client) -> Vec<String> {
        let marker = format!("STREAM.INFO.audit-marker-{}", nuid::next());
        // The marker stream does not exist: the answer is an error, the audit is the point.
        let _ = client
            .request(format!("$JS.API.{marker}"), "{}".into())
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let subjects = self.snapshot();
            if let Some(at) = subjects.iter().position(|s| s.ends_with(&marker)) {
                return subjects[..at].to_vec();
            }
            assert!(Instant::now() < deadline, "the marker's audit never came");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every call recorded once no new one has arrived for 300 ms.
    pub async fn settled(&self) -> Vec<String> {
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.snapshot();
            if now.len() == last {
                return now;
            }
            last = now.len();
        }
    }
}

impl Drop for ApiAudit {
    fn drop(&mut self) {
        self.task.abort();
    }
}
