//! Everything `serve` runs, assembled in one place. `main.rs` and the tests both start the
//! service through [`ServiceSetup`], so what the tests exercise is what operators run:
//! the JetStream connection (its cache forgotten on every reconnect), the service's own
//! connection (drained at shutdown), audit events, the reconciler, the access policy and
//! the discovery metadata.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditPublisher, Instance};
use crate::config::{self, Resolved};
use crate::host_auth::HostAuth;
use crate::jsapi::JetStreamApi;
use crate::known::KnownStreams;
use crate::metrics::Metrics;
use crate::policy::LatticePolicy;
use crate::provisioner::Provisioner;
use crate::reconcile::Reconciler;
use crate::service::{self, ServeOptions};
use crate::subjects::SERVICE_NAME;

/// How the service is to run: the resolved connection and settings, and `serve`'s knobs.
pub struct ServiceSetup {
    pub resolved: Resolved,
    /// How long a verdict on a resource is trusted without a JetStream call.
    pub cache_ttl: Duration,
    /// Longest wait for a JetStream API answer.
    pub js_timeout: Duration,
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    pub policy: LatticePolicy,
    pub host_auth: HostAuth,
    /// `serve --id-file`: where the instance's id goes, for `ping --self-file`.
    pub id_file: Option<std::path::PathBuf>,
    /// `--operator`: wadm requests also ensure this operator version's stream.
    pub operator: Option<crate::catalog::Operator>,
    /// How long a tenant account's connection stays open without a request (`accounts`).
    pub account_idle: Duration,
}

impl ServiceSetup {
    /// `serve`'s defaults for everything but the connection and settings.
    pub fn new(resolved: Resolved) -> Self {
        ServiceSetup {
            resolved,
            cache_ttl: Duration::from_secs(30),
            js_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            policy: LatticePolicy::default(),
            host_auth: HostAuth::default(),
            id_file: None,
            operator: None,
            account_idle: Duration::from_secs(600),
        }
    }

    /// Connects (twice: JetStream and the service) and wires every part.
    pub async fn connect(self) -> Result<ConnectedService, String> {
        let resolved = self.resolved;
        let known = Arc::new(KnownStreams::default());
        let js_client = config::connect(&resolved, SERVICE_NAME, Some(known.clone())).await?;
        let js = JetStreamApi::new(
            js_client.clone(),
            resolved.js_domain.clone(),
            self.js_timeout,
        );
        let audit = AuditPublisher::start(
            js_client,
            Instance::new(SERVICE_NAME),
            resolved.js_domain.clone(),
        );
        let reconciler = Arc::new(
            Reconciler::new(js, known.clone(), self.cache_ttl).with_listener(audit.listener()),
        );
        let settings = resolved.settings.clone();
        let tenants = Arc::new(crate::accounts::Tenants::new(
            config::AccountConfig::resolve_all(&resolved, &resolved.file_accounts)?,
            crate::accounts::Build {
                cache_ttl: self.cache_ttl,
                js_timeout: self.js_timeout,
                audit: Some(audit.clone()),
                host_auth: self.host_auth.clone(),
                operator: self.operator,
                // A copy of the own policy's settings (not its bookkeeping): the
                // defaults of each tenant account's policy.
                policy: Arc::new(
                    LatticePolicy::new(self.policy.allowed().to_vec(), self.policy.max_lattices())
                        .and_then(|p| p.with_reserved(self.policy.reserved().to_vec()))?,
                ),
            },
        ));
        tenants.spawn_idle_closer(self.account_idle);
        let mut metadata = HashMap::from([
            (
                "js_domain".to_string(),
                resolved.js_domain.clone().unwrap_or_default(),
            ),
            ("replicas".to_string(), settings.all.replicas().to_string()),
            (
                "subjects".to_string(),
                format!("{}.>", crate::subjects::SUBJECT_PREFIX),
            ),
            ("instance_id".to_string(), audit.instance().id.clone()),
            (
                "audit_events".to_string(),
                format!("{}.<action>", crate::subjects::EVENTS_PREFIX),
            ),
        ]);
        if let Some(operator) = self.operator {
            metadata.insert("operator".to_string(), operator.as_str().to_string());
        }
        if let Some(storage) = settings.all.storage {
            metadata.insert("storage".to_string(), storage.as_str().to_string());
        }
        let provisioner = Arc::new(
            Provisioner::new(reconciler, settings)
                .with_policy(self.policy)
                .with_host_auth(self.host_auth)
                .with_operator(self.operator),
        );
        // Its own connection: drained at shutdown so that no request on the wire is lost,
        // while replies still go out on the JetStream connection.
        let service_client = config::connect(&resolved, SERVICE_NAME, None).await?;
        Ok(ConnectedService {
            service_client,
            provisioner,
            metrics: Arc::new(Metrics::default()),
            known,
            audit,
            options: ServeOptions {
                drain_timeout: self.drain_timeout,
                metadata,
                id_file: self.id_file,
                tenants: Some(tenants),
            },
        })
    }
}

/// A service connected and wired, ready to serve.
pub struct ConnectedService {
    service_client: async_nats::Client,
    pub provisioner: Arc<Provisioner>,
    pub metrics: Arc<Metrics>,
    pub known: Arc<KnownStreams>,
    audit: AuditPublisher,
    options: ServeOptions,
}

impl ConnectedService {
    /// Serves until `shutdown` resolves, drains, and delivers the last audit events.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        service::serve(
            self.service_client,
            self.provisioner,
            self.metrics,
            self.options,
            shutdown,
        )
        .await
        .map_err(|e| format!("the service failed: {e}"))?;
        self.audit.close(Duration::from_secs(5)).await;
        Ok(())
    }
}
