//! The settings an operator chooses: replicas, storage, size limit and placement.
//!
//! These are the only stream settings where the provisioner may differ from what the apps
//! would create, because both apps bind an existing resource without comparing them (see
//! `shared/spec/resources.md` §2). Everything else comes from the catalog.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ErrorKind, ProvisionError};

/// One mebibyte: nats-server's default `max_payload`, the largest message a client may send
/// unless the operator raised it.
pub const MIB: i64 = 1024 * 1024;

/// The smallest `max_bytes` a resource may have (besides -1, unlimited): the drift check's
/// floor too (see `catalog/fields.rs`), so it lives below both.
pub const MIN_MAX_BYTES: i64 = MIB;

/// The smallest `max_msg_size` a resource may have (besides -1, unlimited).
pub const MIN_MAX_MSG_SIZE: i64 = MIB;

/// The catalog keys settings may name. The catalog sits above this module and so cannot
/// be looked up from here; its test `the_settings_know_every_catalog_key` keeps this list
/// equal to the catalog's keys.
pub const RESOURCE_KEYS: &[&str] = &[
    "latticedata",
    "configdata",
    "wadm_manifests",
    "wadm_state",
    "wadm_events",
    "wadm_commands",
    "wadm_status",
    "wasmbus_events",
    "wadm_notify",
    "wadm_event_consumer",
    "wasmcloud_operator_events",
    "wadm_operator_events",
    "provisioner_admissions",
];

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    File,
    Memory,
}

impl Storage {
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::File => "file",
            Storage::Memory => "memory",
        }
    }
}

/// JetStream placement: the cluster and server tags a new stream's replicas go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.cluster.is_none() && self.tags.is_empty()
    }
}

/// Settings for one resource, or for all of them. `None` means "not chosen here".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Size limit in bytes; -1 (the apps' choice) for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

impl ResourceSettings {
    /// Fills the unset fields of `self` from `fallback`.
    fn or(&self, fallback: &ResourceSettings) -> ResourceSettings {
        ResourceSettings {
            replicas: self.replicas.or(fallback.replicas),
            storage: self.storage.or(fallback.storage),
            max_bytes: self.max_bytes.or(fallback.max_bytes),
            placement: self
                .placement
                .clone()
                .or_else(|| fallback.placement.clone()),
        }
    }

    /// Replicas wanted: the apps' choice of 1 unless the operator chose otherwise.
    pub fn replicas(&self) -> usize {
        self.replicas.unwrap_or(1)
    }

    /// Writes the chosen values into a stream config (create payload).
    pub fn apply_to(&self, config: &mut Value) {
        config["num_replicas"] = json!(self.replicas());
        if let Some(storage) = self.storage {
            config["storage"] = json!(storage.as_str());
        }
        if let Some(max_bytes) = self.max_bytes {
            config["max_bytes"] = json!(max_bytes);
        }
        if let Some(placement) = self.placement.as_ref().filter(|p| !p.is_empty()) {
            config["placement"] = json!(placement);
        }
    }

    /// Checks values that JetStream would refuse with a less helpful message.
    pub fn validate(&self, scope: &str) -> Result<(), String> {
        if let Some(r) = self.replicas {
            if !(1..=5).contains(&r) {
                return Err(format!(
                    "{scope}: replicas must be between 1 and 5 (JetStream's limit), got {r}"
                ));
            }
            // As the request schemas: an even count tolerates no more failed servers than
            // the odd count below it (a majority of 4 is 3), it only costs a copy.
            if r % 2 == 0 {
                return Err(format!(
                    "{scope}: replicas must be 1, 3 or 5, got {r}: {r} replicas survive no more \
                     failed servers than {}; use {} or {}",
                    r - 1,
                    r - 1,
                    r + 1
                ));
            }
        }
        if let Some(b) = self.max_bytes {
            // The drift check's floor ([`MIN_MAX_BYTES`]): a smaller stream could not
            // hold one message of the size NATS carries by default, and the provisioner
            // would report its own resources as drift.
            if b != -1 && b < MIN_MAX_BYTES {
                return Err(format!(
                    "{scope}: max_bytes must be -1 (unlimited) or at least {} (1 MiB, room for \
                     one message of nats-server's default max_payload), got {b}",
                    MIN_MAX_BYTES
                ));
            }
        }
        Ok(())
    }
}

/// All operator choices: defaults for every resource, and overrides per catalog key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub all: ResourceSettings,
    /// Keyed by catalog key (`latticedata`, `configdata`, `wadm_state`, …).
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceSettings>,
    /// Most replicas a request's `"replicas"` may raise a resource to. `None`: a request
    /// may not raise any resource above the operator's replicas. The operator's replicas
    /// are always a floor (see [`Settings::for_request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_replicas: Option<usize>,
}

impl Settings {
    /// The effective settings of one catalog row.
    pub fn for_resource(&self, key: &str) -> ResourceSettings {
        match self.resources.get(key) {
            Some(own) => own.or(&self.all),
            None => self.all.clone(),
        }
    }

    /// The settings a request that asks for `replicas` gets: the operator's replicas are a
    /// floor, so a resource gets the larger of the two. Whether the request may raise
    /// anything is [`Settings::check_request_replicas`]'s call.
    pub fn for_request(&self, replicas: usize) -> Settings {
        let mut s = self.clone();
        s.all.replicas = Some(self.all.replicas().max(replicas));
        for r in s.resources.values_mut() {
            if let Some(own) = r.replicas {
                r.replicas = Some(own.max(replicas));
            }
        }
        s
    }

    /// Whether a request may ask for `replicas` for these resources (catalog keys): asking
    /// for no more than the operator's replicas always may (the floor wins); raising a
    /// resource above them only up to `max_request_replicas` (403 otherwise, and 400 for a
    /// count JetStream could not hold).
    pub fn check_request_replicas<'a>(
        &self,
        replicas: usize,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ProvisionError> {
        if let Err(e) = (ResourceSettings {
            replicas: Some(replicas),
            ..Default::default()
        })
        .validate("the request")
        {
            return Err(ProvisionError::bad_request(e));
        }
        let raises = keys
            .into_iter()
            .any(|k| self.for_resource(k).replicas() < replicas);
        if !raises {
            return Ok(());
        }
        match self.max_request_replicas {
            Some(max) if replicas <= max => Ok(()),
            Some(max) => Err(ProvisionError::new(
                ErrorKind::Forbidden,
                format!(
                    "the request asks for {replicas} replicas; this provisioner lets requests \
                     ask for at most {max}: ask for fewer, or leave `replicas` out to get the \
                     operator's setting"
                ),
            )),
            None => Err(ProvisionError::new(
                ErrorKind::Forbidden,
                format!(
                    "the request asks for {replicas} replicas, more than the operator's setting, \
                     and this provisioner does not let requests raise replicas: leave \
                     `replicas` out, or ask its operator to allow it (--max-request-replicas)"
                ),
            )),
        }
    }

    /// What to tell a request that asked for fewer replicas than the operator's floor of
    /// one of these resources (it is served at the floor, not refused, so that a client
    /// written for R1 keeps working when the operator moves to R3).
    pub fn below_floor_note<'a>(
        &self,
        replicas: usize,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let floor = keys
            .into_iter()
            .map(|k| self.for_resource(k).replicas())
            .filter(|f| *f > replicas)
            .max()?;
        Some(format!(
            "the request asked for {replicas} replicas; the operator's setting ({floor}) is a \
             floor, so `desired_replicas` says what each resource gets"
        ))
    }

    /// A copy where `replicas` wins over every configured value (the `--replicas` flag
    /// over the config file; requests go through [`Settings::for_request`]).
    pub fn with_replicas(&self, replicas: usize) -> Settings {
        let mut s = self.clone();
        s.all.replicas = Some(replicas);
        for r in s.resources.values_mut() {
            r.replicas = None;
        }
        s
    }

    /// Rejects unknown resource keys and out-of-range values, naming what to fix.
    pub fn validate(&self) -> Result<(), String> {
        self.all.validate("all resources")?;
        if let Some(max) = self.max_request_replicas {
            ResourceSettings {
                replicas: Some(max),
                ..Default::default()
            }
            .validate("max_request_replicas (--max-request-replicas)")?;
            if max < self.all.replicas() {
                return Err(format!(
                    "max_request_replicas (--max-request-replicas) is {max}, below the \
                     replicas of every resource ({}), which are a floor: no request could \
                     raise anything; raise it or leave it out",
                    self.all.replicas()
                ));
            }
        }
        for (key, r) in &self.resources {
            if !RESOURCE_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "unknown resource `{key}` in settings; known resources: {}",
                    RESOURCE_KEYS.join(", ")
                ));
            }
            r.validate(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_resource_settings_override_the_defaults() {
        let mut s = Settings::default();
        s.all.replicas = Some(3);
        s.all.max_bytes = Some(1 << 30);
        s.resources.insert(
            "wadm_state".into(),
            ResourceSettings {
                replicas: Some(5),
                ..Default::default()
            },
        );
        let own = s.for_resource("wadm_state");
        assert_eq!(own.replicas(), 5);
        assert_eq!(own.max_bytes, Some(1 << 30));
        assert_eq!(s.for_resource("latticedata").replicas(), 3);
        assert_eq!(s.with_replicas(1).for_resource("wadm_state").replicas(), 1);
    }

    /// A request never goes below the operator's replicas, and raises them only up to
    /// `max_request_replicas` (none by default).
    #[test]
    fn the_operators_replicas_are_a_floor_for_requests() {
        let mut s = Settings::default();
        s.all.replicas = Some(3);
        s.resources.insert(
            "wadm_state".into(),
            ResourceSettings {
                replicas: Some(5),
                ..Default::default()
            },
        );
        let r1 = s.for_request(1);
        assert_eq!(r1.for_resource("latticedata").replicas(), 3);
        assert_eq!(r1.for_resource("wadm_state").replicas(), 5);
        let lattice = ["latticedata", "configdata"];
        assert!(s.check_request_replicas(1, lattice).is_ok());
        assert!(s.check_request_replicas(3, lattice).is_ok());
        assert!(s.below_floor_note(1, lattice).unwrap().contains("floor"));
        assert!(s.below_floor_note(3, lattice).is_none());
        // Raising: refused unless the operator allows it, and then only up to the max.
        let e = s.check_request_replicas(5, lattice).unwrap_err();
        assert_eq!(e.code(), 403);
        assert!(
            e.message.contains("--max-request-replicas"),
            "{}",
            e.message
        );
        // wadm_state is at 5 already; the other wadm resources would be raised.
        assert!(s.check_request_replicas(5, ["wadm_state"]).is_ok());
        assert!(s
            .check_request_replicas(5, ["wadm_state", "wadm_events"])
            .is_err());
        s.max_request_replicas = Some(3);
        assert_eq!(
            s.check_request_replicas(5, lattice).unwrap_err().code(),
            403
        );
        s.all.replicas = Some(1);
        assert!(s.check_request_replicas(3, lattice).is_ok());
        assert_eq!(s.for_request(3).for_resource("latticedata").replicas(), 3);
        assert_eq!(
            s.check_request_replicas(4, lattice).unwrap_err().code(),
            400
        );
        s.max_request_replicas = Some(2);
        assert!(s.validate().unwrap_err().contains("max_request_replicas"));
        s.max_request_replicas = Some(3);
        assert!(s.validate().is_ok());
        s.all.replicas = Some(5);
        assert!(s.validate().unwrap_err().contains("floor"));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut s = Settings::default();
        s.resources
            .insert("nope".into(), ResourceSettings::default());
        assert!(s
            .validate()
            .unwrap_err()
            .contains("unknown resource `nope`"));
        let mut s = Settings::default();
        s.all.replicas = Some(7);
        assert!(s.validate().unwrap_err().contains("between 1 and 5"));
        s.all.replicas = Some(4);
        assert!(s.validate().unwrap_err().contains("1, 3 or 5"));
    }

    #[test]
    fn max_bytes_below_the_drift_floor_is_refused() {
        for bad in [0, -2, 1, MIN_MAX_BYTES - 1] {
            let mut s = Settings::default();
            s.all.max_bytes = Some(bad);
            let e = s.validate().unwrap_err();
            assert!(e.contains("at least 1048576"), "{bad}: {e}");
        }
        for good in [-1, MIN_MAX_BYTES, 1 << 30] {
            let mut s = Settings::default();
            s.all.max_bytes = Some(good);
            assert!(s.validate().is_ok(), "{good}");
        }
    }
}
