//! What this instance knows about JetStream without asking: the verdicts on the streams it
//! checked, and whether the server is clustered. The warm path's one door: a warm request
//! is answered from here ([`KnownStreams::warm`]) without any JetStream call and without
//! building a stream config.
//!
//! Verdicts expire after a bounded time (`--cache-ttl`) and are dropped at once when
//! JetStream advises that the stream was deleted or updated (`advisories.rs`), or on a
//! reconnect, so an out-of-band change is noticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::catalog::DesiredKey;
use crate::jsapi::StreamInfo;
use crate::plan::{Finding, PlanItem, ResourceReport, Step};
use crate::settings::ResourceSettings;

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

impl Verdicts {
    /// The verdict on a resource checked with the same desired config less than `max_age`
    /// ago.
    fn fresh(&self, key: &DesiredKey, max_age: Duration) -> Option<&Verdict> {
        let v = self.by_stream.get(&key.stream)?;
        let fresh = v.seen.elapsed() < max_age
            && v.multitenant == key.multitenant
            && v.settings == key.settings;
        fresh.then_some(v)
    }
}

const TOPOLOGY_UNKNOWN: u8 = 0;
const TOPOLOGY_SINGLE: u8 = 1;
const TOPOLOGY_CLUSTERED: u8 = 2;

/// Whether the server is clustered, as learnt from any stream answer. The executor creates
/// first on a single server (see `reconcile.rs`); it needs this even without a cache.
#[derive(Default)]
pub struct Topology(AtomicU8);

impl Topology {
    /// Learns from any stream answer whether the server is clustered.
    pub fn learn(&self, info: &StreamInfo) {
        let topology = if info.clustered {
            TOPOLOGY_CLUSTERED
        } else {
            TOPOLOGY_SINGLE
        };
        self.0.store(topology, Ordering::Relaxed);
    }

    /// Known to be a single server (not clustered).
    pub fn single_server(&self) -> bool {
        self.0.load(Ordering::Relaxed) == TOPOLOGY_SINGLE
    }

    fn forget(&self) {
        self.0.store(TOPOLOGY_UNKNOWN, Ordering::Relaxed);
    }
}

/// What this instance knows about JetStream without asking: the verdicts on the streams
/// it checked, with when, and whether the server is clustered.
#[derive(Default)]
pub struct KnownStreams {
    verdicts: Mutex<Verdicts>,
    topology: Arc<Topology>,
}

/// A warm answer: the reports, and what they were made from.
#[derive(Debug)]
pub struct Warm {
    pub reports: Vec<ResourceReport>,
    pub stamp: WarmStamp,
}

/// Which verdicts a warm answer was made from (stream and verdict version), and when the
/// first of them expires: see [`KnownStreams::still_warm`].
#[derive(Debug, Clone)]
pub struct WarmStamp {
    verdicts: Vec<(String, u64)>,
    until: Instant,
}

impl KnownStreams {
    /// The lock is never held across an await and the map stays consistent whatever
    /// panicked while holding it, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Verdicts> {
        self.verdicts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The topology this cache forgets on a reconnect, shared with the executor.
    pub fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.topology)
    }

    /// Read before the first JetStream call made for a resource, and handed back to
    /// [`KnownStreams::remember`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Stores the verdict of a plan made from what JetStream just said, if the resource is
    /// usable and nothing was forgotten since `generation` was read.
    pub fn remember(&self, generation: u64, item: &PlanItem) {
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
        self.topology.forget();
    }

    pub fn len(&self) -> usize {
        self.lock().by_stream.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The warm path: every resource answered from verdicts younger than `ttl`, without
    /// JetStream and without building a config; or the keys back when one of them needs a
    /// check.
    pub fn warm(&self, keys: Vec<DesiredKey>, ttl: Duration) -> Result<Warm, Vec<DesiredKey>> {
        let verdicts = self.lock();
        let mut until: Option<Instant> = None;
        let found: Option<Vec<(u64, Vec<Finding>, u64)>> = keys
            .iter()
            .map(|k| {
                verdicts.fresh(k, ttl).map(|v| {
                    let expires = v.seen + ttl;
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
        let verdicts = self.lock();
        stamp.verdicts.iter().all(|(stream, version)| {
            verdicts
                .by_stream
                .get(stream)
                .is_some_and(|v| v.version == *version)
        })
    }

    /// The warm report of one resource, if its verdict is younger than `ttl`.
    pub fn report(&self, key: DesiredKey, ttl: Duration) -> Option<ResourceReport> {
        let (replicas, notes) = self
            .lock()
            .fresh(&key, ttl)
            .map(|v| (v.replicas, v.notes.clone()))?;
        Some(ResourceReport::warm(key, replicas, notes))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog;
    use crate::plan::plan_item;
    use crate::settings::Settings;

    /// The plan of a bucket that exists as the catalog makes it, and its key.
    fn usable() -> (PlanItem, DesiredKey) {
        let d = catalog::lattice_resources("x", &Settings::default()).remove(0);
        let key = d.key();
        let info = StreamInfo {
            config: d.config.clone(),
            ..Default::default()
        };
        (plan_item(d, Some(Arc::new(info))), key)
    }

    #[test]
    fn a_check_that_began_before_a_forget_stores_nothing() {
        let known = KnownStreams::default();
        let (item, key) = usable();
        let generation = known.generation();
        known.forget(&key.stream);
        known.remember(generation, &item);
        assert!(known.is_empty());
        known.remember(known.generation(), &item);
        assert_eq!(known.len(), 1);
        let ttl = Duration::from_secs(60);
        assert!(known.report(key.clone(), ttl).is_some());
        // Another desired config (settings) is not answered from this verdict.
        let mut other = key;
        other.settings.replicas = Some(3);
        assert!(known.report(other, ttl).is_none());
    }

    #[test]
    fn a_warm_answer_holds_until_its_verdict_is_forgotten() {
        let known = KnownStreams::default();
        let (item, key) = usable();
        let ttl = Duration::from_secs(60);
        assert!(known.warm(vec![key.clone()], ttl).is_err());
        known.remember(known.generation(), &item);
        let warm = known.warm(vec![key.clone()], ttl).expect("warm");
        assert_eq!(warm.reports[0].stream, key.stream);
        assert!(warm.reports[0].warm);
        assert_eq!(json!(warm.reports[0].action), json!("exists"));
        assert!(known.still_warm(&warm.stamp));
        known.forget_all();
        assert!(!known.still_warm(&warm.stamp));
        assert!(!known.topology().single_server());
    }
}
