//! Per-endpoint counters reported in `$SRV.STATS` through the service's stats handler.
//!
//! async-nats counts an error only when it sends the error itself, and then with an empty
//! body. Error replies here carry a JSON body, so the service counts them here instead:
//! `data.errors` (by code) and `data.last_error` are the authoritative error figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::reconcile::{Action, ResourceReport};

/// Counters for one endpoint.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EndpointCounters {
    /// Resources by outcome: created, exists, updated, drift, would_create, would_update.
    pub resources: BTreeMap<&'static str, u64>,
    /// Requests answered from the cache without a JetStream call.
    pub warm: u64,
    /// Requests that needed at least one JetStream call.
    pub cold: u64,
    /// Error replies by ADR-32 code.
    pub errors: BTreeMap<u16, u64>,
    /// The last error, as `code:message`.
    pub last_error: String,
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
        f(map.entry(endpoint.to_string()).or_default());
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
    pub fn record_error(&self, endpoint: &str, code: u16, message: &str) {
        self.with(endpoint, |c| {
            *c.errors.entry(code).or_default() += 1;
            c.last_error = format!("{code}:{message}");
        });
    }

    /// Counts an action outside a report (used by tests and by drift replies).
    pub fn record_action(&self, endpoint: &str, action: Action) {
        self.with(endpoint, |c| {
            *c.resources.entry(action.as_str()).or_default() += 1
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
