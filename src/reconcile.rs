//! The executor: carries out a plan against one JetStream account. It never deletes,
//! purges or recreates a stream.
//!
//! `plan` (and `status`) observe every resource and print the [`Plan`] ([`Reconciler::plan`]).
//! `apply` goes through the same value one resource at a time, with three strategies that
//! keep the hot path cheap when a fleet of hosts starts at once:
//! - the verdict cache (`known.rs`): a resource checked with the same desired config is
//!   answered without any JetStream call;
//! - single flight: concurrent requests that need the same resource share one
//!   observe-plan-execute, so a burst for a new lattice creates each stream once;
//! - create first on a single server: a cold resource is planned as missing and created
//!   without looking it up: the server answers an identical create of an existing stream
//!   as cheaply as a look-up, and refuses a different one (10058), after which the
//!   resource is observed and planned again. A cluster is asked first, because there an
//!   identical create is a proposal to the meta group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use serde_json::{json, Value};

use crate::catalog::{Desired, DesiredKey};
use crate::error::{ErrorKind, ProvisionError};
use crate::jsapi::{codes, Call, JetStreamApi, JsError, StreamInfo};
use crate::known::{KnownStreams, Topology, Warm, WarmStamp};
use crate::origin::{current_origin, Origin};
use crate::plan::{
    plan, plan_item, Action, Change, ChangeListener, Plan, PlanItem, ResourceReport, Step,
};

mod outcome;
use outcome::{collect_reports, EnsureResult, Named};

type SharedEnsure = Shared<BoxFuture<'static, EnsureResult>>;

/// The verdict cache and how long a verdict is trusted without a re-check.
struct Cache {
    known: Arc<KnownStreams>,
    ttl: Duration,
}

/// The engine: plans and applies desired resources against one JetStream account.
pub struct Reconciler {
    js: JetStreamApi,
    /// `None` for a one-shot run (the CLI), which would never read it.
    cache: Option<Cache>,
    topology: Arc<Topology>,
    inflight: Mutex<HashMap<String, SharedEnsure>>,
    listener: Option<ChangeListener>,
}

impl Reconciler {
    /// `known` is shared with whoever invalidates it (advisories, reconnects); a verdict is
    /// trusted for `cache_ttl`.
    pub fn new(js: JetStreamApi, known: Arc<KnownStreams>, cache_ttl: Duration) -> Self {
        let topology = known.topology();
        Reconciler {
            js,
            cache: Some(Cache {
                known,
                ttl: cache_ttl,
            }),
            topology,
            inflight: Mutex::new(HashMap::new()),
            listener: None,
        }
    }

    /// A reconciler without a verdict cache, for one run that checks every resource once
    /// (`apply`, `plan`).
    pub fn uncached(js: JetStreamApi) -> Self {
        Reconciler {
            js,
            cache: None,
            topology: Arc::default(),
            inflight: Mutex::new(HashMap::new()),
            listener: None,
        }
    }

    /// Calls `listener` for every create and update this reconciler makes.
    pub fn with_listener(mut self, listener: ChangeListener) -> Self {
        self.listener = Some(listener);
        self
    }

    pub fn js(&self) -> &JetStreamApi {
        &self.js
    }

    /// The verdict cache, if this reconciler keeps one.
    pub fn known(&self) -> Option<&KnownStreams> {
        self.cache.as_ref().map(|c| c.known.as_ref())
    }

    /// Observes every resource (fresh, never from the cache) and plans it. Changes
    /// nothing.
    pub async fn plan(&self, desired: Vec<Desired>) -> Result<Plan, ProvisionError> {
        let observed = join_all(desired.iter().map(|d| self.observe(&d.stream))).await;
        let observed: Vec<Option<Arc<StreamInfo>>> = observed
            .into_iter()
            .map(|o| o.map(|o| o.map(Arc::new)))
            .collect::<Result<_, _>>()?;
        Ok(plan(desired, observed))
    }

    /// The warm path (see [`KnownStreams::warm`]); the keys back without a cache.
    pub fn warm(&self, keys: Vec<DesiredKey>) -> Result<Warm, Vec<DesiredKey>> {
        match &self.cache {
            Some(cache) => cache.known.warm(keys, cache.ttl),
            None => Err(keys),
        }
    }

    /// Whether a warm answer still holds (see [`KnownStreams::still_warm`]).
    pub fn still_warm(&self, stamp: &WarmStamp) -> bool {
        self.known().is_some_and(|k| k.still_warm(stamp))
    }

    /// Ensures every resource exists and is usable. Independent resources are handled
    /// concurrently; a resource is handled after those it sources from. On failure the
    /// error carries the outcome of every resource.
    pub async fn apply(
        self: &Arc<Self>,
        desired: Vec<Desired>,
    ) -> Result<Vec<ResourceReport>, ProvisionError> {
        let mut reports: Vec<Option<EnsureResult>> = vec![None; desired.len()];
        // Named in a failed resource's entry of an error body.
        let names: Vec<Named> = desired.iter().map(Named::of).collect();
        // Warm path: what was checked with the same desired config needs no call.
        let mut pending = Vec::new();
        for (i, d) in desired.into_iter().enumerate() {
            match self.cached_report(&d) {
                Some(report) => reports[i] = Some(Ok(report)),
                None => pending.push((i, d)),
            }
        }
        // Cold path, in waves: a resource whose sources are still pending waits.
        while !pending.is_empty() {
            let waiting: Vec<String> = pending.iter().map(|(_, d)| d.stream.clone()).collect();
            let (ready, later): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(_, d)| !d.depends_on.iter().any(|dep| waiting.contains(dep)));
            if ready.is_empty() {
                return Err(ProvisionError::internal(
                    "the catalog has a dependency cycle; this is a bug",
                ));
            }
            let results = join_all(ready.iter().map(|(_, d)| self.ensure_shared(d.clone()))).await;
            let mut failed_sources = Vec::new();
            for ((i, d), result) in ready.into_iter().zip(results) {
                if result.is_err() {
                    failed_sources.push(d.stream.clone());
                }
                reports[i] = Some(result);
            }
            pending = Vec::new();
            for (i, d) in later {
                if let Some(dep) = d.depends_on.iter().find(|dep| failed_sources.contains(dep)) {
                    reports[i] = Some(Err(ProvisionError::new(
                        ErrorKind::Conflict,
                        format!("not created because its source {dep} failed"),
                    )));
                } else {
                    pending.push((i, d));
                }
            }
        }
        collect_reports(reports, &names)
    }

    /// The warm report of one resource, if its verdict is fresh.
    fn cached_report(&self, d: &Desired) -> Option<ResourceReport> {
        let cache = self.cache.as_ref()?;
        cache.known.report(d.key(), cache.ttl)
    }

    /// Read before the first JetStream call for a resource: a verdict is stored only if
    /// nothing was forgotten since.
    fn generation(&self) -> u64 {
        self.known().map_or(0, KnownStreams::generation)
    }

    fn remember(&self, generation: u64, item: &PlanItem) {
        if let Some(known) = self.known() {
            known.remember(generation, item);
        }
    }

    /// Joins a running ensure of the same resource and config, or starts one. A request
    /// that joins sees the change another request's flight made as `exists`: the resource
    /// is created (or updated) once, and reported so once.
    fn ensure_shared(self: &Arc<Self>, desired: Desired) -> BoxFuture<'static, EnsureResult> {
        let key = format!("{}\u{0}{}", desired.stream, desired.config);
        let mut inflight = match self.inflight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(running) = inflight.get(&key) {
            return running.clone().map(joined).boxed();
        }
        // A flight that ended after this request missed the cache stored its verdict
        // before leaving `inflight`: look again, or a burst would start a second flight.
        if let Some(report) = self.cached_report(&desired) {
            return futures::future::ready(Ok(report)).boxed();
        }
        let this = Arc::clone(self);
        let key_for_task = key.clone();
        // Captured here: the shared future may later be polled by another request's task.
        let origin = current_origin();
        let fut = async move {
            let result = this.ensure(desired, origin).await;
            if let Ok(mut inflight) = this.inflight.lock() {
                inflight.remove(&key_for_task);
            }
            result
        }
        .boxed()
        .shared();
        inflight.insert(key, fut.clone());
        fut.boxed()
    }

    /// Observe (or, on a single server, assume missing), plan and execute one resource.
    async fn ensure(&self, desired: Desired, origin: Option<Arc<Origin>>) -> EnsureResult {
        let generation = self.generation();
        let item = if self.topology.single_server() {
            plan_item(desired, None)
        } else {
            match self.js.stream_info(&desired.stream).await {
                // JetStream leaves a look-up unanswered while another instance's create of
                // the same stream is under way (two instances and a burst, nats-server
                // 2.12.8). A create is answered and never changes an existing stream:
                // identical is reported as existing, different goes through the planner.
                Err(JsError::TimedOut) => plan_item(desired, None),
                answer => {
                    let observed = self.judge(&desired.stream, answer)?;
                    plan_item(desired, observed.map(Arc::new))
                }
            }
        };
        self.execute(item, generation, origin).await
    }

    /// Carries out one planned step. `generation` is from before the first JetStream call
    /// made for this resource.
    async fn execute(
        &self,
        item: PlanItem,
        generation: u64,
        origin: Option<Arc<Origin>>,
    ) -> EnsureResult {
        match item.step {
            Step::Exists => {
                self.remember(generation, &item);
                let replicas = item.observed.as_ref().map(|i| i.replicas()).unwrap_or(0);
                Ok(ResourceReport::from_plan(&item, Action::Exists, replicas))
            }
            Step::Drift => Ok(ResourceReport::planned(&item)),
            Step::Create => self.create(item, generation, origin).await,
            Step::Update { to, .. } => self.raise_replicas(item, to, generation, origin).await,
        }
    }

    /// Creates the stream; an identical stream that exists is reported as existing, a
    /// different one is observed and planned again.
    async fn create(
        &self,
        item: PlanItem,
        generation: u64,
        origin: Option<Arc<Origin>>,
    ) -> EnsureResult {
        let stream = item.desired.stream.clone();
        let sent = Instant::now();
        match self.js.stream_create(&item.desired.config).await {
            Ok(info) => {
                self.topology.learn(&info);
                // An identical create of a stream that exists succeeds: a cluster says so
                // by leaving out `did_create`, a single server only by the stream's age.
                let created = if info.clustered {
                    info.did_create
                } else {
                    info.created_within(sent.elapsed())
                };
                let info = Arc::new(info);
                let verified = plan_item(item.desired.clone(), Some(info.clone()));
                self.remember(generation, &verified);
                if !created {
                    return Ok(match verified.step {
                        Step::Drift => ResourceReport::planned(&verified),
                        _ => ResourceReport::from_plan(&verified, Action::Exists, info.replicas()),
                    });
                }
                let report = ResourceReport::from_plan(&item, Action::Created, info.replicas());
                self.notify(&report, None, &info.config, origin);
                Ok(report)
            }
            // It exists with another config (made by a host or wadm, or by hand): whether
            // that is fine is a question for the planner.
            Err(e) if e.err_code() == Some(codes::STREAM_NAME_IN_USE) => {
                let observed = self.observe(&stream).await?;
                let again = plan_item(item.desired, observed.map(Arc::new));
                match again.step {
                    Step::Create => Err(e.explain(Call::Create(&stream), self.js.domain())),
                    _ => Box::pin(self.execute(again, generation, origin)).await,
                }
            }
            Err(e) => Err(e.explain(Call::Create(&stream), self.js.domain())),
        }
    }

    /// Raises `num_replicas` by an update built from the stream's current full config:
    /// only that one field changes, so nothing else can be reset.
    async fn raise_replicas(
        &self,
        item: PlanItem,
        to: u64,
        generation: u64,
        origin: Option<Arc<Origin>>,
    ) -> EnsureResult {
        let stream = item.desired.stream.clone();
        let Some(current) = item.observed.as_ref() else {
            return Err(ProvisionError::internal(format!(
                "planned an update of {stream} without observing it; this is a bug"
            )));
        };
        // A server that is not clustered accepts this update and stores the number, yet
        // keeps one copy: refuse instead of reporting replicas that do not exist.
        if !current.clustered && to > 1 {
            return Err(ProvisionError::new(
                ErrorKind::Conflict,
                format!(
                    "cannot raise the replicas of {stream} from {} to {to}: {}",
                    current.replicas(),
                    crate::jsapi::NOT_CLUSTERED_HINT
                ),
            ));
        }
        let mut config = current.config.clone();
        config["num_replicas"] = json!(to);
        match self.js.stream_update(&config).await {
            Ok(info) => {
                let info = Arc::new(info);
                self.remember(
                    generation,
                    &plan_item(item.desired.clone(), Some(info.clone())),
                );
                let report = ResourceReport::from_plan(&item, Action::Updated, info.replicas());
                self.notify(&report, Some(&current.config), &info.config, origin);
                Ok(report)
            }
            Err(e) => Err(e.explain(Call::RaiseReplicas(&stream, to), self.js.domain())),
        }
    }

    async fn observe(&self, stream: &str) -> Result<Option<StreamInfo>, ProvisionError> {
        let answer = self.js.stream_info(stream).await;
        self.judge(stream, answer)
    }

    /// What a look-up's answer means: the stream's info, none, or an error for the
    /// operator.
    fn judge(
        &self,
        stream: &str,
        answer: Result<Option<StreamInfo>, JsError>,
    ) -> Result<Option<StreamInfo>, ProvisionError> {
        let info =
            answer.map_err(|e: JsError| e.explain(Call::Lookup(stream), self.js.domain()))?;
        if let Some(info) = &info {
            self.topology.learn(info);
        }
        match info {
            // The answer came from a replica that lost its quorum: the stream exists but
            // nobody can use it, so "exists" would be a lie.
            Some(info) if info.quorum_lost => Err(ProvisionError::unavailable(format!(
                "most of the {} replicas of stream {stream} are offline, so JetStream has no \
                 quorum for it: bring those JetStream servers back, then retry",
                info.replicas()
            ))),
            other => Ok(other),
        }
    }

    fn notify(
        &self,
        report: &ResourceReport,
        before: Option<&Value>,
        after: &Value,
        origin: Option<Arc<Origin>>,
    ) {
        if let Some(listener) = &self.listener {
            listener(&Change {
                report: report.clone(),
                before: before.cloned(),
                after: after.clone(),
                origin,
            });
        }
    }
}

/// The outcome of a flight as a request that joined it sees it: the change was another
/// request's, so for this one the resource exists.
fn joined(result: EnsureResult) -> EnsureResult {
    result.map(|mut report| {
        if matches!(report.action, Action::Created | Action::Updated) {
            report.action = Action::Exists;
            report.previous_replicas = None;
        }
        report
    })
}
