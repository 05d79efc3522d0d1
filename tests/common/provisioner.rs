//! The provisioner service run in-process through `runtime::ServiceSetup`, the same
//! assembly `main.rs serve` uses, in a tokio task with a shutdown trigger.
//!
//! ```ignore
//! let server = common::NatsServer::start();
//! let service = common::provisioner::spawn(&server.url(), Settings::default()).await;
//! // ... requests on wasmcloud.provision.> ...
//! service.shutdown().await.expect("serve() returns Ok");
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use wasmcloud_provisioner::config::ConnectArgs;
use wasmcloud_provisioner::endpoints::ENDPOINTS;
use wasmcloud_provisioner::metrics::Metrics;
use wasmcloud_provisioner::reconcile::KnownStreams;
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::service::SERVICE_NAME;
use wasmcloud_provisioner::settings::Settings;

/// How an in-process service is set up; `Default` matches `serve`'s defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: Settings,
    pub js_domain: Option<String>,
    pub cache_ttl: Duration,
    pub js_timeout: Duration,
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: Settings::default(),
            js_domain: None,
            cache_ttl: Duration::from_secs(30),
            js_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// A running service. Dropping it triggers shutdown without waiting.
pub struct RunningService {
    pub metrics: Arc<Metrics>,
    pub known: Arc<KnownStreams>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

/// Starts a service with `settings` against `url` and waits until every endpoint answers.
pub async fn spawn(url: &str, settings: Settings) -> RunningService {
    spawn_with(
        url,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await
}

/// Like [`spawn`], with every knob.
pub async fn spawn_with(url: &str, options: Options) -> RunningService {
    let observer = super::connect(url).await;
    // Flags only: no config file, no natscli context from this machine.
    let connect = ConnectArgs {
        server: Some(url.to_string()),
        js_domain: options.js_domain.clone(),
        ..Default::default()
    };
    let mut resolved = super::resolved(&connect);
    resolved.settings = options.settings.clone();
    let setup = ServiceSetup {
        cache_ttl: options.cache_ttl,
        js_timeout: options.js_timeout,
        drain_timeout: options.drain_timeout,
        ..ServiceSetup::new(resolved)
    };
    start(setup, &observer).await
}

/// Connects and serves `setup` (any user, policy, host auth, operator…) in a task, and
/// waits until `observer` (a client allowed to send `$SRV.INFO`) sees one more instance
/// with every endpoint registered.
pub async fn start(setup: ServiceSetup, observer: &async_nats::Client) -> RunningService {
    let before = ready_instances(observer).await;
    let service = setup
        .connect()
        .await
        .expect("the in-process provisioner connects");
    let metrics = service.metrics.clone();
    let known = service.known.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(service.serve(async move {
        // A dropped sender also means "stop".
        let _ = rx.await;
    }));
    let task = tokio::spawn(async move {
        match task.await {
            Ok(result) => result,
            Err(e) => Err(format!("serve() panicked or was cancelled: {e}")),
        }
    });

    let deadline = Instant::now() + super::START_TIMEOUT;
    loop {
        if ready_instances(observer).await > before {
            break;
        }
        if task.is_finished() {
            panic!("serve() ended before it was ready: {:?}", task.await);
        }
        assert!(
            Instant::now() < deadline,
            "the in-process provisioner did not register all its endpoints in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    RunningService {
        metrics,
        known,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// How many instances of the service answer `$SRV.INFO` with every endpoint registered.
/// Collects replies until none arrived for a short while (readiness only, never asserted
/// on).
async fn ready_instances(client: &async_nats::Client) -> usize {
    let inbox = client.new_inbox();
    let Ok(mut replies) = client.subscribe(inbox.clone()).await else {
        return 0;
    };
    let subject = format!("$SRV.INFO.{SERVICE_NAME}");
    if client
        .publish_with_reply(subject, inbox, "".into())
        .await
        .is_err()
    {
        return 0;
    }
    let _ = client.flush().await;
    let mut ready = 0;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), replies.next()).await
    {
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
            continue;
        };
        let registered = info["endpoints"].as_array().map(Vec::len).unwrap_or(0);
        if registered == ENDPOINTS.len() {
            ready += 1;
        }
    }
    ready
}

impl RunningService {
    /// Asks the service to stop (as SIGTERM does) without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for `serve()` to return (after [`RunningService::trigger_shutdown`]).
    pub async fn join(mut self) -> Result<(), String> {
        let task = self.task.take().expect("joined once");
        match tokio::time::timeout(Duration::from_secs(120), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(format!("serve() task failed: {e}")),
            Err(_) => Err("serve() did not return within 120 s of shutdown".into()),
        }
    }

    /// Triggers shutdown and waits for `serve()` to return.
    pub async fn shutdown(mut self) -> Result<(), String> {
        self.trigger_shutdown();
        self.join().await
    }

    /// [`RunningService::shutdown`], panicking unless `serve()` returns `Ok`.
    pub async fn stop(self) {
        self.shutdown().await.expect("serve() returns Ok");
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.trigger_shutdown();
    }
}
