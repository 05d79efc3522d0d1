//! The provisioner service run in-process through `runtime::ServiceSetup`, the same
//! assembly `main.rs serve` uses, in a tokio task with a shutdown trigger. Every test that
//! runs the service in-process starts it here, with [`Options`] for what differs.
//!
//! ```ignore
//! let server = common::NatsServer::start();
//! let service = common::provisioner::spawn(&server.url(), Settings::default()).await;
//! // ... requests on wasmcloud.provision.> ...
//! service.stop().await;
//!
//! // As a user of a least-privilege bed, with a policy; `admin` may send `$SRV.INFO`:
//! let service = Options::new()
//!     .user("provisioner", PASSWORD)
//!     .policy(policy)
//!     .start(&server.url(), &admin)
//!     .await;
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use wasmcloud_provisioner::catalog::Operator;
use wasmcloud_provisioner::config::FileAccount;
use wasmcloud_provisioner::config::{Auth, ConnectArgs};
use wasmcloud_provisioner::endpoints::ENDPOINTS;
use wasmcloud_provisioner::host_auth::HostAuth;
use wasmcloud_provisioner::known::KnownStreams;
use wasmcloud_provisioner::metrics::Metrics;
use wasmcloud_provisioner::policy::LatticePolicy;
use wasmcloud_provisioner::runtime::ServiceSetup;
use wasmcloud_provisioner::settings::Settings;
use wasmcloud_provisioner::subjects::SERVICE_NAME;

/// How an in-process service is set up; `Options::new()` is `serve` with its defaults.
pub struct Options {
    /// Connection flags: a user, an inbox prefix, a JetStream domain… (`server` is the URL
    /// the service is started on). Flags only: no config file, no natscli context.
    pub connect: ConnectArgs,
    /// Replaces the authentication `connect` gives (a JWT and seed in operator mode).
    pub auth: Option<Auth>,
    pub settings: Settings,
    pub cache_ttl: Duration,
    pub js_timeout: Duration,
    pub drain_timeout: Duration,
    pub policy: LatticePolicy,
    pub host_auth: HostAuth,
    pub operator: Option<Operator>,
    /// The tenant accounts served (`accounts` in the config file).
    pub accounts: BTreeMap<String, FileAccount>,
    pub account_idle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let serve = ServiceSetup::new(super::resolved(&ConnectArgs::default()));
        Options {
            connect: ConnectArgs::default(),
            auth: None,
            settings: Settings::default(),
            cache_ttl: serve.cache_ttl,
            js_timeout: serve.js_timeout,
            drain_timeout: serve.drain_timeout,
            policy: LatticePolicy::default(),
            host_auth: HostAuth::default(),
            operator: None,
            accounts: BTreeMap::new(),
            account_idle: serve.account_idle,
        }
    }
}

impl Options {
    pub fn new() -> Self {
        Options::default()
    }

    /// Connects as `user` with `password`.
    pub fn user(mut self, user: &str, password: &str) -> Self {
        self.connect.user = Some(user.to_string());
        self.connect.password = Some(password.to_string());
        self
    }

    pub fn connect(mut self, connect: ConnectArgs) -> Self {
        self.connect = connect;
        self
    }

    pub fn js_domain(mut self, domain: Option<&str>) -> Self {
        self.connect.js_domain = domain.map(str::to_string);
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    pub fn js_timeout(mut self, timeout: Duration) -> Self {
        self.js_timeout = timeout;
        self
    }

    pub fn policy(mut self, policy: LatticePolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn host_auth(mut self, host_auth: HostAuth) -> Self {
        self.host_auth = host_auth;
        self
    }

    pub fn operator(mut self, operator: Option<Operator>) -> Self {
        self.operator = operator;
        self
    }

    pub fn accounts(mut self, accounts: BTreeMap<String, FileAccount>) -> Self {
        self.accounts = accounts;
        self
    }

    pub fn account_idle(mut self, idle: Duration) -> Self {
        self.account_idle = idle;
        self
    }

    /// The assembly `serve` would make of these options against `url`.
    pub fn setup(self, url: &str) -> ServiceSetup {
        let connect = ConnectArgs {
            server: Some(url.to_string()),
            ..self.connect
        };
        let mut resolved = super::resolved(&connect);
        resolved.settings = self.settings;
        resolved.file_accounts = self.accounts;
        if let Some(auth) = self.auth {
            resolved.auth = auth;
        }
        ServiceSetup {
            cache_ttl: self.cache_ttl,
            js_timeout: self.js_timeout,
            drain_timeout: self.drain_timeout,
            policy: self.policy,
            host_auth: self.host_auth,
            operator: self.operator,
            account_idle: self.account_idle,
            ..ServiceSetup::new(resolved)
        }
    }

    /// Starts the service against `url`; `observer` (a client allowed to send
    /// `$SRV.INFO`, in the service's account) waits until it is ready.
    pub async fn start(self, url: &str, observer: &async_nats::Client) -> RunningService {
        start(self.setup(url), observer).await
    }

    /// [`Options::start`] on a server without authentication.
    pub async fn spawn(self, url: &str) -> RunningService {
        let observer = super::connect(url).await;
        self.start(url, &observer).await
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
    Options::new().settings(settings).spawn(url).await
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
pub(super) async fn ready_instances(client: &async_nats::Client) -> usize {
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
    /// Whether `serve()` is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Requests of `endpoint` answered without any JetStream call.
    pub fn warm(&self, endpoint: &str) -> u64 {
        self.metrics.data(endpoint)["warm"].as_u64().unwrap_or(0)
    }

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

/// How long [`wait_discoverable`] waits.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The ids of the provisioner instances that answer `$SRV.PING` within `window`.
pub async fn ping_ids(client: &async_nats::Client, window: Duration) -> HashSet<String> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(format!("$SRV.PING.{SERVICE_NAME}"), inbox, Bytes::new())
        .await
        .expect("publish ping");
    let mut ids = HashSet::new();
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return ids,
            next = replies.next() => match next {
                Some(m) => {
                    let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                    if v["name"] == SERVICE_NAME {
                        if let Some(id) = v["id"].as_str() {
                            ids.insert(id.to_string());
                        }
                    }
                }
                None => return ids,
            }
        }
    }
}

/// Waits until `n` instances (in-process or the real binary) are discoverable and each
/// lists every endpoint; their ids.
pub async fn wait_discoverable(client: &async_nats::Client, n: usize) -> HashSet<String> {
    let deadline = Instant::now() + DISCOVERY_TIMEOUT;
    loop {
        let ids = ping_ids(client, Duration::from_millis(300)).await;
        if ids.len() >= n {
            let mut complete = 0;
            for id in &ids {
                let info = client
                    .request(format!("$SRV.INFO.{SERVICE_NAME}.{id}"), Bytes::new())
                    .await;
                if let Ok(m) = info {
                    let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                    let endpoints = v["endpoints"].as_array().map(Vec::len).unwrap_or(0);
                    if endpoints == wasmcloud_provisioner::endpoints::ENDPOINTS.len() {
                        complete += 1;
                    }
                }
            }
            if complete >= n {
                return ids;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{n} provisioner start_instance(s) not discoverable via $SRV.PING in time (saw {ids:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
