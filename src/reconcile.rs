//! Desired vs. observed: observe each resource, plan one step for it, apply the plan.
//!
//! A [`PlanItem`] is a value: the same code prints it for a dry run and the `plan`
//! command, and hands it to the executor for a real run. The steps are:
//! - `Create`: the stream does not exist; create it with the catalog's config.
//! - `Exists`: it exists and everything the apps need holds.
//! - `Update`: it exists but has fewer replicas than wanted; raise them by an update that
//!   starts from the stream's *current* full config (never from defaults).
//! - `Drift`: it exists but would break an app; report want vs. have, change nothing.
//!
//! The executor never deletes, purges or recreates a stream.
//!
//! Three things keep the hot path cheap when a fleet of hosts starts at once:
//! - a cache of verdicts ([`KnownStreams`]): which streams this instance found usable for
//!   which desired config. A warm request ([`Reconciler::warm`]) is answered from it
//!   without any JetStream call and without building a stream config. Verdicts expire
//!   after a bounded time and are dropped at once when JetStream advises that the stream
//!   was deleted or updated, so an out-of-band change is noticed;
//! - single flight: concurrent requests that need the same resource share one
//!   observe-and-create, so a burst for a new lattice creates each stream once;
//! - on a single server, a cold resource is created without looking it up first: the
//!   server answers an identical create of an existing stream as cheaply as a look-up, and
//!   refuses a different one (10058), which sends the resource through the planner as
//!   before. A cluster is asked first, because there an identical create is a proposal
//!   to the meta group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{self, App, Desired, DesiredKey, Kind};
use crate::error::{ErrorKind, Outcome, ProvisionError, FAILED};
use crate::jsapi::{codes, Call, JetStreamApi, JsError, StreamInfo};
use crate::settings::ResourceSettings;

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Create,
    Exists,
    Update { from: u64, to: u64 },
    Drift,
}

/// One difference between the desired and the observed config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub field: String,
    pub want: Value,
    pub have: Value,
    /// The app that breaks (drift only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaks: Option<App>,
    pub why: String,
}

/// The planned step for one resource, with what it was planned from.
#[derive(Debug, Clone)]
pub struct PlanItem {
    pub desired: Desired,
    pub observed: Option<Arc<StreamInfo>>,
    pub step: Step,
    /// Must-hold checks that fail: the resource breaks an app.
    pub drift: Vec<Finding>,
    /// Differences the apps tolerate, reported so the operator knows.
    pub notes: Vec<Finding>,
}

/// Plans one resource from what was observed.
pub fn plan_item(desired: Desired, observed: Option<Arc<StreamInfo>>) -> PlanItem {
    let Some(info) = observed.clone() else {
        return PlanItem {
            desired,
            observed,
            step: Step::Create,
            drift: Vec::new(),
            notes: Vec::new(),
        };
    };
    let have = &info.config;
    let drift: Vec<Finding> = desired
        .must_hold
        .iter()
        .filter_map(|check| {
            catalog::violated(check, have).map(|have| Finding {
                field: check.field.to_string(),
                want: catalog::wanted(check),
                have,
                breaks: Some(check.breaks),
                why: check.why.to_string(),
            })
        })
        .collect();
    let mut notes = tolerated_differences(&desired, have, &drift);
    let want_replicas = desired.settings.replicas() as u64;
    let have_replicas = info.replicas();
    let step = if !drift.is_empty() {
        Step::Drift
    } else if have_replicas < want_replicas {
        if !info.clustered && want_replicas > 1 {
            notes.push(Finding {
                field: "num_replicas".into(),
                want: json!(want_replicas),
                have: json!(have_replicas),
                breaks: None,
                why: crate::jsapi::NOT_CLUSTERED_HINT.into(),
            });
        }
        Step::Update {
            from: have_replicas,
            to: want_replicas,
        }
    } else {
        if have_replicas > want_replicas {
            notes.push(Finding {
                field: "num_replicas".into(),
                want: json!(want_replicas),
                have: json!(have_replicas),
                breaks: None,
                why: "more replicas than asked for; the provisioner never lowers replicas, \
                      do it by hand if you mean it"
                    .into(),
            });
        }
        Step::Exists
    };
    PlanItem {
        desired,
        observed,
        step,
        drift,
        notes,
    }
}

/// Differences the apps tolerate, and settings that expose or alter the data, as the
/// catalog's field table classifies them (see `catalog::FIELDS`).
fn tolerated_differences(desired: &Desired, have: &Value, drift: &[Finding]) -> Vec<Finding> {
    let drifted: Vec<&str> = drift.iter().map(|d| d.field.as_str()).collect();
    desired
        .row
        .notes(&desired.config, have, &drifted)
        .into_iter()
        .map(|note| Finding {
            field: note.field,
            want: note.want,
            have: note.have,
            breaks: None,
            why: note.why,
        })
        .collect()
}

/// What was done (or, in a dry run, would be done) to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Exists,
    Updated,
    Drift,
    WouldCreate,
    WouldUpdate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Exists => "exists",
            Action::Updated => "updated",
            Action::Drift => "drift",
            Action::WouldCreate => "would_create",
            Action::WouldUpdate => "would_update",
        }
    }

    /// Whether a dry run with this outcome means "something would change".
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Action::Created | Action::Updated | Action::WouldCreate | Action::WouldUpdate
        )
    }
}

/// The per-resource outcome carried in every reply.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceReport {
    /// Bucket or stream name as users know it.
    pub name: String,
    pub kind: Kind,
    pub stream: String,
    pub action: Action,
    /// Replicas the stream has after this request (or has now, in a dry run).
    pub replicas: u64,
    pub desired_replicas: u64,
    /// Replicas before an update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_replicas: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Finding>,
    /// True when answered from this instance's cache, without a JetStream call.
    #[serde(skip)]
    pub warm: bool,
}

impl ResourceReport {
    fn from_plan(item: &PlanItem, action: Action, replicas: u64) -> Self {
        let previous_replicas = match item.step {
            Step::Update { from, .. } => Some(from),
            _ => None,
        };
        ResourceReport {
            name: item.desired.name.clone(),
            kind: item.desired.row.kind,
            stream: item.desired.stream.clone(),
            action,
            replicas,
            desired_replicas: item.desired.settings.replicas() as u64,
            previous_replicas,
            drift: item.drift.clone(),
            notes: item.notes.clone(),
            warm: false,
        }
    }

    /// An existing resource answered from this instance's verdict on it.
    fn warm(key: DesiredKey, replicas: u64, notes: Vec<Finding>) -> Self {
        ResourceReport {
            desired_replicas: key.settings.replicas() as u64,
            name: key.name,
            kind: key.row.kind,
            stream: key.stream,
            action: Action::Exists,
            replicas,
            previous_replicas: None,
            drift: Vec::new(),
            notes,
            warm: true,
        }
    }

    /// The dry-run report of a planned item.
    pub fn planned(item: &PlanItem) -> Self {
        let current = item.observed.as_ref().map(|i| i.replicas()).unwrap_or(0);
        let action = match item.step {
            Step::Create => Action::WouldCreate,
            Step::Exists => Action::Exists,
            Step::Update { .. } => Action::WouldUpdate,
            Step::Drift => Action::Drift,
        };
        Self::from_plan(item, action, current)
    }
}

/// A change the provisioner made, handed to whoever listens (audit events).
#[derive(Debug, Clone)]
pub struct Change {
    pub report: ResourceReport,
    /// The config before the change (`None` for a create).
    pub before: Option<Value>,
    pub after: Value,
    /// The request (or command) that caused it, when known.
    pub origin: Option<Arc<crate::audit::Origin>>,
}

/// Receives every change as it is made.
pub type ChangeListener = Arc<dyn Fn(&Change) + Send + Sync>;

/// What this instance found when it last checked a stream: it exists and everything the
/// apps need holds for the desired config it was checked against. Deliberately small (a
/// fleet may have thousands of lattices): the outcome, not the stream's config.
struct Verdict {
    /// The desired config it was checked against: with the stream name, these determine
    /// it (see [`DesiredKey`]).
    multitenant: bool,
    settings: ResourceSettings,
    replicas: u64,
    notes: Vec<Finding>,
    seen: Instant,
    /// Unique per stored verdict: a [`WarmStamp`] names the verdicts it was made from.
    version: u64,
}

#[derive(Default)]
struct Verdicts {
    by_stream: HashMap<String, Verdict>,
    /// The last [`Verdict::version`] handed out.
    versions: u64,
    /// Bumped by every forget. A check that began before a forget may have seen the old
    /// stream, so it stores nothing (see [`KnownStreams::remember`]).
    generation: u64,
}

const TOPOLOGY_UNKNOWN: u8 = 0;
const TOPOLOGY_SINGLE: u8 = 1;
const TOPOLOGY_CLUSTERED: u8 = 2;

/// What this instance knows about JetStream without asking: the verdicts on the streams
/// it checked, with when, and whether the server is clustered.
#[derive(Default)]
pub struct KnownStreams {
    verdicts: Mutex<Verdicts>,
    topology: AtomicU8,
}

impl KnownStreams {
    /// The lock is never held across an await and the map stays consistent whatever
    /// panicked while holding it, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Verdicts> {
        self.verdicts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The verdict on a resource checked with the same desired config less than
    /// `max_age` ago.
    fn fresh<'a>(
        verdicts: &'a Verdicts,
        key: &DesiredKey,
        max_age: Duration,
    ) -> Option<&'a Verdict> {
        let v = verdicts.by_stream.get(&key.stream)?;
        let fresh = v.seen.elapsed() < max_age
            && v.multitenant == key.multitenant
            && v.settings == key.settings;
        fresh.then_some(v)
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Stores the verdict of a plan made from what JetStream just said, if the resource is
    /// usable and nothing was forgotten since `generation` was read.
    fn remember(&self, generation: u64, item: &PlanItem) {
        let (Step::Exists, Some(info)) = (&item.step, &item.observed) else {
            return;
        };
        let mut verdicts = self.lock();
        if verdicts.generation != generation {
            return;
        }
        let d = &item.desired;
        verdicts.versions += 1;
        let version = verdicts.versions;
        verdicts.by_stream.insert(
            d.stream.clone(),
            Verdict {
                multitenant: d.multitenant,
                settings: d.settings.clone(),
                replicas: info.replicas(),
                notes: item.notes.clone(),
                seen: Instant::now(),
                version,
            },
        );
    }

    /// Forgets one stream (it was deleted or changed out of band).
    pub fn forget(&self, stream: &str) {
        let mut verdicts = self.lock();
        verdicts.generation += 1;
        verdicts.by_stream.remove(stream);
    }

    /// Forgets everything, the topology too (after a reconnect, events may have been
    /// missed, and the server may be another one).
    pub fn forget_all(&self) {
        let mut verdicts = self.lock();
        verdicts.generation += 1;
        verdicts.by_stream.clear();
        self.topology.store(TOPOLOGY_UNKNOWN, Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.lock().by_stream.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Learns from any stream answer whether the server is clustered.
    fn learn_topology(&self, info: &StreamInfo) {
        let topology = if info.clustered {
            TOPOLOGY_CLUSTERED
        } else {
            TOPOLOGY_SINGLE
        };
        self.topology.store(topology, Ordering::Relaxed);
    }

    /// Known to be a single server (not clustered).
    fn single_server(&self) -> bool {
        self.topology.load(Ordering::Relaxed) == TOPOLOGY_SINGLE
    }
}

/// A warm answer: the reports, and what they were made from.
#[derive(Debug)]
pub struct Warm {
    pub reports: Vec<ResourceReport>,
    pub stamp: WarmStamp,
}

/// Which verdicts a warm answer was made from (stream and verdict version), and when the
/// first of them expires: see [`Reconciler::still_warm`].
#[derive(Debug, Clone)]
pub struct WarmStamp {
    verdicts: Vec<(String, u64)>,
    until: Instant,
}

type EnsureResult = Result<ResourceReport, ProvisionError>;
type SharedEnsure = Shared<BoxFuture<'static, EnsureResult>>;

/// The engine: plans and applies desired resources against one JetStream account.
pub struct Reconciler {
    js: JetStreamApi,
    known: Arc<KnownStreams>,
    /// How long a seen config is trusted without a re-check.
    cache_ttl: Duration,
    inflight: Mutex<HashMap<String, SharedEnsure>>,
    listener: Option<ChangeListener>,
}

impl Reconciler {
    /// `known` is shared with whoever invalidates it (advisories, reconnects).
    pub fn new(js: JetStreamApi, known: Arc<KnownStreams>, cache_ttl: Duration) -> Self {
        Reconciler {
            js,
            known,
            cache_ttl,
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

    pub fn known(&self) -> &KnownStreams {
        &self.known
    }

    /// Observes every resource (fresh, never from the cache) and plans it. Changes
    /// nothing.
    pub async fn plan(&self, desired: Vec<Desired>) -> Result<Vec<PlanItem>, ProvisionError> {
        let observed = join_all(desired.iter().map(|d| self.observe(&d.stream))).await;
        desired
            .into_iter()
            .zip(observed)
            .map(|(d, o)| o.map(|o| plan_item(d, o.map(Arc::new))))
            .collect()
    }

    /// The warm path: every resource answered from verdicts, without JetStream and
    /// without building a config; or the keys back when one of them needs a check.
    pub fn warm(&self, keys: Vec<DesiredKey>) -> Result<Warm, Vec<DesiredKey>> {
        let verdicts = self.known.lock();
        let mut until: Option<Instant> = None;
        let found: Option<Vec<(u64, Vec<Finding>, u64)>> = keys
            .iter()
            .map(|k| {
                KnownStreams::fresh(&verdicts, k, self.cache_ttl).map(|v| {
                    let expires = v.seen + self.cache_ttl;
                    until = Some(until.map_or(expires, |u| u.min(expires)));
                    (v.replicas, v.notes.clone(), v.version)
                })
            })
            .collect();
        drop(verdicts);
        let (Some(found), Some(until)) = (found, until) else {
            return Err(keys);
        };
        let mut stamp = WarmStamp {
            verdicts: Vec::with_capacity(keys.len()),
            until,
        };
        let reports = keys
            .into_iter()
            .zip(found)
            .map(|(key, (replicas, notes, version))| {
                stamp.verdicts.push((key.stream.clone(), version));
                ResourceReport::warm(key, replicas, notes)
            })
            .collect();
        Ok(Warm { reports, stamp })
    }

    /// Whether a warm answer still holds: each verdict it was made from is still the one
    /// stored (none was forgotten or replaced since) and none has expired.
    pub fn still_warm(&self, stamp: &WarmStamp) -> bool {
        if Instant::now() >= stamp.until {
            return false;
        }
        let verdicts = self.known.lock();
        stamp.verdicts.iter().all(|(stream, version)| {
            verdicts
                .by_stream
                .get(stream)
                .is_some_and(|v| v.version == *version)
        })
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
        let key = DesiredKey {
            row: d.row,
            name: d.name.clone(),
            stream: d.stream.clone(),
            multitenant: d.multitenant,
            settings: d.settings.clone(),
        };
        let (replicas, notes) = KnownStreams::fresh(&self.known.lock(), &key, self.cache_ttl)
            .map(|v| (v.replicas, v.notes.clone()))?;
        Some(ResourceReport::warm(key, replicas, notes))
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
            return running
                .clone()
                .map(|result| {
                    result.map(|mut report| {
                        if matches!(report.action, Action::Created | Action::Updated) {
                            report.action = Action::Exists;
                            report.previous_replicas = None;
                        }
                        report
                    })
                })
                .boxed();
        }
        // A flight that ended after this request missed the cache stored its verdict
        // before leaving `inflight`: look again, or a burst would start a second flight.
        if let Some(report) = self.cached_report(&desired) {
            return futures::future::ready(Ok(report)).boxed();
        }
        let this = Arc::clone(self);
        let key_for_task = key.clone();
        // Captured here: the shared future may later be polled by another request's task.
        let origin = crate::audit::current_origin();
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

    /// Observe, plan and apply one resource.
    async fn ensure(
        &self,
        desired: Desired,
        origin: Option<Arc<crate::audit::Origin>>,
    ) -> EnsureResult {
        let generation = self.known.generation();
        if self.known.single_server() {
            return self
                .create(plan_item(desired, None), generation, origin)
                .await;
        }
        let answer = self.js.stream_info(&desired.stream).await;
        // JetStream leaves a look-up unanswered while another instance's create of the same
        // stream is under way (two instances and a burst, nats-server 2.12.8). A create is
        // answered and never changes an existing stream: identical is reported as
        // existing, different goes through the planner.
        if matches!(answer, Err(JsError::TimedOut)) {
            return self
                .create(plan_item(desired, None), generation, origin)
                .await;
        }
        let observed = self.judge(&desired.stream, answer)?;
        let item = plan_item(desired, observed.map(Arc::new));
        match item.step.clone() {
            Step::Exists => {
                self.known.remember(generation, &item);
                Ok(ResourceReport::from_plan(
                    &item,
                    Action::Exists,
                    item.observed.as_ref().map(|i| i.replicas()).unwrap_or(0),
                ))
            }
            Step::Drift => Ok(ResourceReport::planned(&item)),
            Step::Create => self.create(item, generation, origin).await,
            Step::Update { to, .. } => self.raise_replicas(item, to, generation, origin).await,
        }
    }

    /// Creates the stream; an identical stream that exists is reported as existing, a
    /// different one goes through the planner. `generation` is from before the first
    /// JetStream call made for this resource.
    async fn create(
        &self,
        item: PlanItem,
        generation: u64,
        origin: Option<Arc<crate::audit::Origin>>,
    ) -> EnsureResult {
        let stream = item.desired.stream.clone();
        let sent = Instant::now();
        match self.js.stream_create(&item.desired.config).await {
            Ok(info) => {
                self.known.learn_topology(&info);
                // An identical create of a stream that exists succeeds: a cluster says so
                // by leaving out `did_create`, a single server only by the stream's age.
                let created = if info.clustered {
                    info.did_create
                } else {
                    info.created_within(sent.elapsed())
                };
                let info = Arc::new(info);
                let verified = plan_item(item.desired.clone(), Some(info.clone()));
                self.known.remember(generation, &verified);
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
                    Step::Exists => {
                        self.known.remember(generation, &again);
                        let replicas = again.observed.as_ref().map(|i| i.replicas()).unwrap_or(0);
                        Ok(ResourceReport::from_plan(&again, Action::Exists, replicas))
                    }
                    Step::Update { to, .. } => {
                        Box::pin(self.raise_replicas(again, to, generation, origin)).await
                    }
                    Step::Drift => Ok(ResourceReport::planned(&again)),
                    Step::Create => Err(e.explain(Call::Create(&stream), self.js.domain())),
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
        origin: Option<Arc<crate::audit::Origin>>,
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
                self.known.remember(
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
            self.known.learn_topology(info);
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
        origin: Option<Arc<crate::audit::Origin>>,
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

/// Which resource an outcome is about, for the entry of one that failed.
#[derive(Debug, Clone, Serialize)]
struct Named {
    name: String,
    kind: Kind,
    stream: String,
}

impl Named {
    fn of(d: &Desired) -> Self {
        Named {
            name: d.name.clone(),
            kind: d.row.kind,
            stream: d.stream.clone(),
        }
    }
}

/// All reports, or the first error carrying every outcome in its details; `names` are the
/// resources in the same order, so that a failed one is named like the others.
fn collect_reports(
    reports: Vec<Option<EnsureResult>>,
    names: &[Named],
) -> Result<Vec<ResourceReport>, ProvisionError> {
    let reports: Vec<EnsureResult> = reports
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProvisionError::internal("resource was not handled"))))
        .collect();
    let Some(first_error) = reports.iter().find_map(|r| r.as_ref().err()).cloned() else {
        return Ok(reports.into_iter().filter_map(Result::ok).collect());
    };
    let outcome =
        reports
            .iter()
            .zip(names)
            .fold(Outcome::default(), |outcome, (r, named)| match r {
                Ok(report) => outcome.resource(&report.name, report.action.as_str(), report),
                Err(e) => outcome.resource(
                    &named.name,
                    FAILED,
                    json!({
                        "name": named.name,
                        "kind": named.kind,
                        "stream": named.stream,
                        "action": FAILED,
                        "error": e.body()["error"],
                    }),
                ),
            });
    Err(first_error.with_outcome(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn info(config: Value) -> Option<Arc<StreamInfo>> {
        Some(Arc::new(StreamInfo {
            config,
            clustered: true,
            ..Default::default()
        }))
    }

    #[test]
    fn missing_is_created_and_identical_exists() {
        let s = Settings::default();
        let d = catalog::lattice_resources("default", &s).remove(0);
        assert_eq!(plan_item(d.clone(), None).step, Step::Create);
        let same = plan_item(d.clone(), info(d.config.clone()));
        assert_eq!(same.step, Step::Exists);
        assert!(same.notes.is_empty(), "{:?}", same.notes);
    }

    #[test]
    fn fewer_replicas_are_raised_more_are_reported() {
        let s = Settings::default().with_replicas(3);
        let d = catalog::lattice_resources("default", &s).remove(0);
        let mut have = d.config.clone();
        have["num_replicas"] = json!(1);
        let item = plan_item(d.clone(), info(have.clone()));
        assert_eq!(item.step, Step::Update { from: 1, to: 3 });
        have["num_replicas"] = json!(5);
        let item = plan_item(d, info(have));
        assert_eq!(item.step, Step::Exists);
        assert_eq!(item.notes[0].field, "num_replicas");
    }

    #[test]
    fn drift_names_field_want_have_and_app() {
        let s = Settings::default();
        let d = catalog::wadm_resources(false, &s)
            .into_iter()
            .find(|d| d.stream == "wadm_events")
            .unwrap();
        let mut have = d.config.clone();
        have["subjects"] = json!(["wadm.evt.>"]);
        let item = plan_item(d, info(have));
        assert_eq!(item.step, Step::Drift);
        assert_eq!(item.drift[0].field, "subjects");
        assert_eq!(item.drift[0].have, json!(["wadm.evt.>"]));
        assert_eq!(item.drift[0].breaks, Some(App::Wadm));
    }

    #[test]
    fn a_bucket_whose_puts_hang_is_drift_and_a_republish_a_note() {
        let s = Settings::default();
        let d = catalog::lattice_resources("x", &s).remove(0);
        let mut have = d.config.clone();
        have["no_ack"] = json!(true);
        have["republish"] = json!({ "src": ">", "dest": "leak.>" });
        let item = plan_item(d, info(have));
        assert_eq!(item.step, Step::Drift);
        assert_eq!(item.drift.len(), 1, "{:?}", item.drift);
        assert_eq!(item.drift[0].field, "no_ack");
        assert_eq!(item.drift[0].breaks, Some(App::Host));
        let fields: Vec<_> = item.notes.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(fields, vec!["republish"]);
        assert!(item.notes[0].breaks.is_none());
    }

    #[test]
    fn a_failed_resource_is_named_in_the_error_body() {
        let s = Settings::default();
        let desired = catalog::lattice_resources("x", &s);
        let names: Vec<Named> = desired.iter().map(Named::of).collect();
        let first = plan_item(desired[0].clone(), None);
        let reports = vec![
            Some(Ok(ResourceReport::from_plan(&first, Action::Created, 1))),
            Some(Err(ProvisionError::new(
                ErrorKind::InsufficientStorage,
                "full",
            ))),
        ];
        let e = collect_reports(reports, &names).unwrap_err();
        assert_eq!(e.code(), 507);
        let body = e.body();
        let failed = &body["resources"][1];
        assert_eq!(failed["action"], "failed", "{body}");
        assert_eq!(failed["name"], "CONFIGDATA_x", "{body}");
        assert_eq!(failed["stream"], "KV_CONFIGDATA_x", "{body}");
        assert_eq!(failed["kind"], "kv", "{body}");
        assert_eq!(failed["error"]["code"], 507, "{body}");
        assert_eq!(body["resources"][0]["name"], "LATTICEDATA_x", "{body}");
    }

    #[test]
    fn tolerated_differences_are_notes_not_drift() {
        let s = Settings::default();
        let d = catalog::lattice_resources("x", &s).remove(1);
        let mut have = d.config.clone();
        have["storage"] = json!("memory");
        have["description"] = json!("mine");
        let item = plan_item(d, info(have));
        assert_eq!(item.step, Step::Exists);
        let fields: Vec<_> = item.notes.iter().map(|n| n.field.as_str()).collect();
        assert_eq!(fields, vec!["storage"]);
    }
}
