//! The bodies of successful replies, as typed structs: what the endpoints write and what a
//! client (`client.rs`, `bootstrap`) reads, one definition for both sides.
//!
//! - [`ProvisionReply`]: `lattice`, `lattice_scoped`, `wadm` and `status`
//!   (`schemas/provision_response.json`);
//! - [`HostReply`]: `host` and `host_scoped` (`schemas/host_response.json`).
//!
//! `tests/schemas.rs` holds each struct against its schema file field by field, both ways.
//!
//! Both are generic over their `resources`: the service writes its
//! [`crate::plan::ResourceReport`]s (borrowed, so a reply is serialized without copying
//! its reports), a client reads `serde_json::Value`s (the default), which also take
//! fields a newer service adds.
//!
//! Fields are declared in alphabetical order: serde writes them in declaration order, so a
//! body has the bytes it had when replies were `serde_json::Map`s (whose keys are sorted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{App, Kind, Operator, CATALOG};

/// The reply of `lattice`, `lattice_scoped`, `wadm` and `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionReply<Resources = Vec<Value>> {
    /// Planned only (a dry run, and every `status` report).
    pub dry_run: bool,
    /// The JetStream domain the resources live in; `null` for none.
    pub js_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lattice: Option<String>,
    /// With `wadm`: whether wadm's resources are the multitenant ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multitenant: Option<bool>,
    /// The operator version whose stream the reply covers, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// The request asked for fewer replicas than the operator's floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_note: Option<String>,
    pub resources: Resources,
    /// The reply covers wadm's resources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wadm: bool,
}

/// The reply a host binds from (`host`, `host_scoped`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReply<Resources = Vec<Value>> {
    /// Bucket names by catalog key (`latticedata`, `configdata`).
    pub buckets: BTreeMap<String, String>,
    pub dry_run: bool,
    pub host_id: String,
    pub js_domain: Option<String>,
    pub lattice: String,
    pub resources: Resources,
    /// Whether the request carried a signature that verified against `host_id`.
    pub signed: bool,
}

/// A reply as `prepare` knows it, before anything was done: every field but `resources`
/// (`()` there), `dry_run` and `js_domain` (set when the reply is made). Boxed, so that a
/// prepared request (passed by value between the warm and the cold path) stays small.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyHead {
    Provision(Box<ProvisionReply<()>>),
    Host(Box<HostReply<()>>),
}

impl ReplyHead {
    /// A provisioning reply's head with no field set.
    pub fn provision() -> ProvisionReply<()> {
        ProvisionReply {
            dry_run: false,
            js_domain: None,
            lattice: None,
            multitenant: None,
            operator: None,
            replicas_note: None,
            resources: (),
            wadm: false,
        }
    }

    /// The lattice the reply is about, if any.
    pub fn lattice(&self) -> Option<&str> {
        match self {
            ReplyHead::Provision(p) => p.lattice.as_deref(),
            ReplyHead::Host(h) => Some(&h.lattice),
        }
    }

    /// Sets what the reply says about the request as a whole, once it is carried out.
    pub fn complete(&mut self, dry_run: bool, js_domain: Option<&str>, note: Option<String>) {
        match self {
            ReplyHead::Provision(p) => {
                p.dry_run = dry_run;
                p.js_domain = js_domain.map(str::to_string);
                if note.is_some() {
                    p.replicas_note = note;
                }
            }
            ReplyHead::Host(h) => {
                h.dry_run = dry_run;
                h.js_domain = js_domain.map(str::to_string);
            }
        }
    }

    /// The whole body, with these resources.
    pub fn to_json<R: Serialize>(&self, resources: R) -> serde_json::Result<Vec<u8>> {
        match self {
            ReplyHead::Provision(p) => serde_json::to_vec(&p.with_resources(resources)),
            ReplyHead::Host(h) => serde_json::to_vec(&h.with_resources(resources)),
        }
    }

    /// The whole body as a JSON value (for an error reply that carries it).
    pub fn to_value<R: Serialize>(&self, resources: R) -> Value {
        match self {
            ReplyHead::Provision(p) => serde_json::to_value(p.with_resources(resources)),
            ReplyHead::Host(h) => serde_json::to_value(h.with_resources(resources)),
        }
        .unwrap_or(Value::Null)
    }
}

impl ProvisionReply<()> {
    /// The reply with these resources.
    pub fn with_resources<R>(&self, resources: R) -> ProvisionReply<R> {
        ProvisionReply {
            dry_run: self.dry_run,
            js_domain: self.js_domain.clone(),
            lattice: self.lattice.clone(),
            multitenant: self.multitenant,
            operator: self.operator,
            replicas_note: self.replicas_note.clone(),
            resources,
            wadm: self.wadm,
        }
    }
}

impl HostReply<()> {
    /// The reply with these resources.
    pub fn with_resources<R>(&self, resources: R) -> HostReply<R> {
        HostReply {
            buckets: self.buckets.clone(),
            dry_run: self.dry_run,
            host_id: self.host_id.clone(),
            js_domain: self.js_domain.clone(),
            lattice: self.lattice.clone(),
            resources,
            signed: self.signed,
        }
    }
}

/// KV buckets an app binds, by catalog key, for a lattice (what a bootstrap reply lists).
pub fn buckets_for(app: App, lattice: &str) -> BTreeMap<String, String> {
    CATALOG
        .iter()
        .filter(|r| r.needed_by == app && r.kind() == Kind::Kv)
        .map(|r| (r.key.to_string(), r.name_for(lattice)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ResourceReport};

    fn report() -> ResourceReport {
        ResourceReport {
            name: "LATTICEDATA_x".into(),
            kind: Kind::Kv,
            stream: "KV_LATTICEDATA_x".into(),
            action: Action::Exists,
            replicas: 1,
            desired_replicas: 1,
            previous_replicas: None,
            drift: Vec::new(),
            notes: Vec::new(),
            warm: true,
        }
    }

    /// Written in one pass, with the top-level keys in the order a `Value` writes them
    /// (sorted), for every combination of optional fields.
    #[test]
    fn reply_is_the_whole_value_written_in_one_pass() {
        let mut full = ReplyHead::provision();
        full.lattice = Some("x".into());
        full.multitenant = Some(false);
        full.operator = Some(Operator::V0_4);
        full.replicas_note = Some("floor".into());
        full.wadm = true;
        let host = HostReply {
            buckets: buckets_for(App::Host, "x"),
            dry_run: false,
            host_id: "N".into(),
            js_domain: Some("hub".into()),
            lattice: "x".into(),
            resources: (),
            signed: true,
        };
        let reports = vec![report(), report()];
        for head in [
            ReplyHead::Provision(Box::new(full)),
            ReplyHead::Provision(Box::new(ReplyHead::provision())),
            ReplyHead::Host(Box::new(host)),
        ] {
            let bytes = head.to_json(&reports).unwrap();
            let written: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(written, head.to_value(&reports));
            assert_eq!(written["resources"][0]["name"], "LATTICEDATA_x");
            // The top-level keys in the order a `Value` would write them (sorted); each
            // resource's fields in the order of `ResourceReport`, as before.
            let text = String::from_utf8(bytes).unwrap();
            let mut at: Vec<usize> = written
                .as_object()
                .unwrap()
                .keys()
                .map(|k| text.find(&format!("\"{k}\":")).unwrap())
                .collect();
            let sorted = at.clone();
            at.sort();
            assert_eq!(at, sorted, "{text}");
        }
    }

    #[test]
    fn a_host_binds_its_lattices_buckets() {
        let buckets = buckets_for(App::Host, "default");
        assert_eq!(buckets["latticedata"], "LATTICEDATA_default");
        assert_eq!(buckets["configdata"], "CONFIGDATA_default");
    }
}
