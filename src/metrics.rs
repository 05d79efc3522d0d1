//! Per-endpoint counters reported in `$SRV.STATS` through the service's stats handler.
//!
//! async-nats counts an error only when it sends the error itself, and then with an empty
//! body. Error replies here carry a JSON body, so the service counts them here instead:
//! `data.errors` (by code) and `data.last_error` are the authoritative error figures.
//!
//! `data.resources` counts per-resource outcomes, also those inside error replies: a 409
//! for drift lists every resource of the request, so `drift` counts drifted resources
//! whether the request was a dry run or not, and `failed` counts resources whose JetStream
//! call failed. The keys are always present (zero until something happens), so a
//! dashboard sees a stable shape.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::error::ProvisionError;
use crate::plan::ResourceReport;

/// Every key of `data.resources`: the [`Action`](crate::plan::Action)s, and `failed`
/// ([`crate::error::FAILED`]) for a resource whose JetStream call failed.
pub const OUTCOMES: &[&str] = &[
    "created",
    "exists",
    "updated",
    "drift",
    "would_create",
    "would_update",
    "failed",
];

/// Counters for one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointCounters {
    /// Resources by outcome: created, exists, updated, drift, would_create, would_update,
    /// failed.
    pub resources: BTreeMap<&'static str, u64>,
    /// Requests answered from the cache without a JetStream call.
    pub warm: u64,
    /// Requests that needed at least one JetStream call.
    pub cold: u64,
    /// Error replies by ADR-32 code.
    pub errors: BTreeMap<u16, u64>,
    /// The last error, as `code:message`.
    pub last_error: String,
    /// Requests served in each tenant account (`accounts`), bounded: the
    /// [`TOP_ACCOUNTS`] busiest by name, the rest summed as `other`. Requests served in
    /// the provisioner's own account are the endpoint's other requests.
    #[serde(serialize_with = "top_accounts")]
    pub accounts: HashMap<String, u64>,
}

/// How many tenant accounts `data.accounts` names; the rest are `other`.
pub const TOP_ACCOUNTS: usize = 10;

/// Most accounts counted by name per endpoint; requests of further accounts go to
/// `other` at once (memory stays bounded whatever the number of accounts).
const MAX_COUNTED_ACCOUNTS: usize = 1000;

/// The `other` key of `data.accounts`.
pub const OTHER_ACCOUNTS: &str = "other";

fn top_accounts<S: serde::Serializer>(
    accounts: &HashMap<String, u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut all: Vec<(&String, &u64)> = accounts
        .iter()
        .filter(|(k, _)| k.as_str() != OTHER_ACCOUNTS)
        .collect();
    // Busiest first; equal counts by name, so the choice is stable.
    all.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut out: BTreeMap<&str, u64> = BTreeMap::new();
    let mut other = accounts.get(OTHER_ACCOUNTS).copied().unwrap_or(0);
    for (i, (k, v)) in all.into_iter().enumerate() {
        if i < TOP_ACCOUNTS {
            out.insert(k, *v);
        } else {
            other += v;
        }
    }
    out.insert(OTHER_ACCOUNTS, other);
    out.serialize(serializer)
}

impl Default for EndpointCounters {
    fn default() -> Self {
        EndpointCounters {
            resources: OUTCOMES.iter().map(|o| (*o, 0)).collect(),
            warm: 0,
            cold: 0,
            errors: BTreeMap::new(),
            last_error: String::new(),
            accounts: HashMap::new(),
        }
    }
}

/// Counters of every endpoint, keyed by endpoint name.
#[derive(Debug, Default)]
pub struct Metrics {
    endpoints: Mutex<HashMap<String, EndpointCounters>>,
}

impl Metrics {
    fn with<F: FnOnce(&mut EndpointCounters)>(&self, endpoint: &str, f: F) {
        let mut map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        // No allocation once the endpoint has counters (every request but its first).
        match map.get_mut(endpoint) {
            Some(counters) => f(counters),
            None => f(map.entry(endpoint.to_string()).or_default()),
        }
    }

    /// Records a successful reply's resource outcomes.
    pub fn record_reports(&self, endpoint: &str, reports: &[ResourceReport]) {
        self.with(endpoint, |c| {
            for r in reports {
                *c.resources.entry(r.action.as_str()).or_default() += 1;
            }
            if !reports.is_empty() && reports.iter().all(|r| r.warm) {
                c.warm += 1;
            } else {
                c.cold += 1;
            }
        });
    }

    /// Records an error reply.
    /// A warm answer of `resources` resources, each `exists` (what
    /// [`Metrics::record_reports`] counts for a warm reply).
    pub fn record_warm(&self, endpoint: &str, resources: usize) {
        self.with(endpoint, |c| {
            *c.resources.entry("exists").or_default() += resources as u64;
            c.warm += 1;
        });
    }

    /// A request routed to a tenant account (`accounts`).
    pub fn record_account(&self, endpoint: &str, account: &str) {
        self.with(endpoint, |c| {
            let counted = c.accounts.len() < MAX_COUNTED_ACCOUNTS;
            match c.accounts.get_mut(account) {
                Some(n) => *n += 1,
                None if counted => {
                    c.accounts.insert(account.to_string(), 1);
                }
                None => *c.accounts.entry(OTHER_ACCOUNTS.to_string()).or_default() += 1,
            }
        });
    }

    pub fn record_error(&self, endpoint: &str, code: u16, message: &str) {
        self.with(endpoint, |c| {
            *c.errors.entry(code).or_default() += 1;
            c.last_error = format!("{code}:{message}");
        });
    }

    /// Records an error reply: its code, and the outcome of every resource its outcome
    /// lists (drift, failed, and those done before the failure).
    pub fn record_failure(&self, endpoint: &str, error: &ProvisionError) {
        self.record_error(endpoint, error.code(), &error.header_text());
        let Some(outcome) = &error.outcome else {
            return;
        };
        self.with(endpoint, |c| {
            for r in &outcome.resources {
                // Only the keys of a stable shape: an action outside them is not counted.
                if let Some(counter) = c.resources.get_mut(r.action) {
                    *counter += 1;
                }
            }
        });
    }

    /// The `data` object of one endpoint in `$SRV.STATS`.
    pub fn data(&self, endpoint: &str) -> Value {
        let map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let counters = map.get(endpoint).cloned().unwrap_or_default();
        serde_json::to_value(counters).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Outcome};
    use serde_json::json;

    #[test]
    fn every_outcome_key_is_present_from_the_start() {
        let m = Metrics::default();
        let data = m.data("lattice");
        for o in OUTCOMES {
            assert_eq!(data["resources"][o], 0, "{o}");
        }
        assert_eq!(data["warm"], 0);
        assert_eq!(data["errors"], json!({}));
    }

    #[test]
    fn error_replies_count_their_resources() {
        let m = Metrics::default();
        let outcome = [("a", "drift"), ("b", "exists"), ("c", "failed"), ("d", "?")]
            .into_iter()
            .fold(Outcome::default(), |o, (name, action)| {
                o.resource(name, action, json!({ "action": action }))
            });
        let error = ProvisionError::new(ErrorKind::Conflict, "drift").with_outcome(outcome);
        m.record_failure("wadm", &error);
        let data = m.data("wadm");
        assert_eq!(data["resources"]["drift"], 1);
        assert_eq!(data["resources"]["exists"], 1);
        assert_eq!(data["resources"]["failed"], 1);
        assert_eq!(data["errors"]["409"], 1);
        assert_eq!(data["last_error"], "409:drift");
    }

    #[test]
    fn accounts_are_bounded_to_the_busiest_and_other() {
        let m = Metrics::default();
        assert_eq!(m.data("lattice")["accounts"], json!({"other": 0}));
        for i in 0..(TOP_ACCOUNTS + 5) {
            for _ in 0..=i {
                m.record_account("lattice", &format!("A{i:02}"));
            }
        }
        let accounts = m.data("lattice")["accounts"].clone();
        let names = accounts.as_object().unwrap();
        assert_eq!(names.len(), TOP_ACCOUNTS + 1, "{accounts}");
        // The five least busy (1..=5 requests) are summed.
        assert_eq!(accounts["other"], 15, "{accounts}");
        assert_eq!(accounts["A14"], 15, "{accounts}");
        assert!(accounts.get("A00").is_none(), "{accounts}");
        // Past the counted maximum, new accounts go straight to `other`.
        for i in 0..MAX_COUNTED_ACCOUNTS {
            m.record_account("wadm", &format!("B{i}"));
        }
        m.record_account("wadm", "late");
        let accounts = m.data("wadm")["accounts"].clone();
        assert_eq!(
            accounts["other"],
            (MAX_COUNTED_ACCOUNTS - TOP_ACCOUNTS + 1) as u64
        );
    }
}
