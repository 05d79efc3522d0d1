//! Desired vs. observed: the plan, a value.
//!
//! A [`PlanItem`] says what to do with one resource, from its desired config (the
//! catalog's) and what JetStream said of it; [`plan`] makes a [`Plan`] of many. Both are
//! pure, so the same value is printed by `plan` and `status` and carried out by the
//! executor (`reconcile.rs`). The steps are:
//! - `Create`: the stream does not exist; create it with the catalog's config.
//! - `Exists`: it exists and everything the apps need holds.
//! - `Update`: it exists but has fewer replicas than wanted; raise them by an update that
//!   starts from the stream's *current* full config (never from defaults).
//! - `Drift`: it exists but would break an app; report want vs. have, change nothing.
//!
//! Also here, because the executor, the audit trail and the replies all speak them: the
//! outcome of a step ([`Action`], [`ResourceReport`]) and a change made ([`Change`]).

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{self, App, Desired, DesiredKey, Kind};
use crate::jsapi::{StreamInfo, NOT_CLUSTERED_HINT};
use crate::origin::Origin;

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
                why: NOT_CLUSTERED_HINT.into(),
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

/// The plan of a set of resources: one [`PlanItem`] per desired resource, in the order
/// asked for. A value: `plan` and `status` print it, the executor (`reconcile.rs`) carries
/// out its steps.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// The items, in the order the resources were asked for.
    pub fn iter(&self) -> std::slice::Iter<'_, PlanItem> {
        self.items.iter()
    }

    /// The dry-run report of every item: what would be done, changing nothing.
    pub fn reports(&self) -> Vec<ResourceReport> {
        self.items.iter().map(ResourceReport::planned).collect()
    }
}

/// Plans every desired resource from what was observed of it (`None`: it does not exist),
/// pairwise: `observed[i]` is what a look-up of `desired[i]` found. Pure: no JetStream,
/// no clock.
pub fn plan(desired: Vec<Desired>, observed: Vec<Option<Arc<StreamInfo>>>) -> Plan {
    Plan {
        items: desired
            .into_iter()
            .zip(observed)
            .map(|(d, o)| plan_item(d, o))
            .collect(),
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
    pub(crate) fn from_plan(item: &PlanItem, action: Action, replicas: u64) -> Self {
        let previous_replicas = match item.step {
            Step::Update { from, .. } => Some(from),
            _ => None,
        };
        ResourceReport {
            name: item.desired.name.clone(),
            kind: item.desired.row.kind(),
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
    pub(crate) fn warm(key: DesiredKey, replicas: u64, notes: Vec<Finding>) -> Self {
        ResourceReport {
            desired_replicas: key.settings.replicas() as u64,
            name: key.name,
            kind: key.row.kind(),
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
    pub origin: Option<Arc<Origin>>,
}

/// Receives every change as it is made.
pub type ChangeListener = Arc<dyn Fn(&Change) + Send + Sync>;

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
    fn a_plan_pairs_each_resource_with_what_was_observed() {
        let s = Settings::default();
        let desired = catalog::lattice_resources("x", &s);
        let observed = vec![None, info(desired[1].config.clone())];
        let p = plan(desired, observed);
        let steps: Vec<_> = p.iter().map(|i| i.step.clone()).collect();
        assert_eq!(steps, vec![Step::Create, Step::Exists]);
        let actions: Vec<_> = p.reports().iter().map(|r| r.action).collect();
        assert_eq!(actions, vec![Action::WouldCreate, Action::Exists]);
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
