//! The resource catalog: the single table of everything wasmCloud hosts (1.9.x) and wadm
//! (0.21.x) expect to find in JetStream.
//!
//! Every fact about a resource lives in one [`Row`] of [`CATALOG`] (`catalog/rows.rs`): its
//! name, its stream settings exactly as the apps would create them (a [`Shape`], which
//! also says whether it is a KV bucket), who uses it and whether `backup` takes it. What
//! must hold on a pre-existing copy for the apps to work is one table of stream config
//! fields (`catalog/fields.rs`), made concrete per row (`catalog/checks.rs`). Creation
//! (the reconciler), drift checks, permission templates, the backup set and the README
//! tables are all derived from these, so adding a resource means adding one row.
//!
//! The settings are those the apps themselves send, after the server fills its defaults
//! (see `shared/spec/resources.md`). The create payload (`catalog/builders.rs`) spells out
//! every field the apps' normalized config has, so that a create racing a host's or wadm's
//! create of the same resource is accepted by the server as identical instead of failing
//! with 10058.

use serde_json::Value;

use crate::settings::{ResourceSettings, Settings};

mod access;
mod backup_set;
mod builders;
mod checks;
mod classes;
#[cfg(test)]
mod drift_tests;
mod fields;
mod readme;
mod rows;

pub use access::{Access, Messaging, LOOKED_UP_ONLY, MESSAGING};
pub use backup_set::{backup_set, Selected};
pub use checks::{is_unset, same_setting, violated, wanted, Check, Note, Rule};
pub use classes::{Class, FieldRule, Trait, Treatment, Want};
pub use fields::{field_rule, FIELDS};
pub use readme::{readme_table, resources_table};
pub use rows::CATALOG;

/// Whether a resource is a KV bucket (a stream named `KV_<bucket>`) or a plain stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Kv,
    Stream,
}

/// Which request provisions a resource: once per lattice, once for wadm, or once for the
/// Kubernetes operator of one version (with wadm's, when asked for); or the provisioner's
/// own bookkeeping, created when the provisioner first needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Lattice,
    Wadm,
    Operator(Operator),
    Provisioner,
}

/// The wasmCloud Kubernetes operator's version line. Its stream and consumer names changed
/// when it was renamed from wasmcloud-operator (0.4.x, what the `wasmcloud-platform` chart
/// 0.1.x installs, and the last release under that name, 0.5.0) to wadm-operator (tag
/// v0.5.1 on); everything else about them is the same. The value names the stream, so a
/// wasmcloud-operator 0.5.0 is `0.4`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
pub enum Operator {
    /// wasmcloud-operator 0.4.x and 0.5.0: stream `wasmcloud_operator_events`.
    #[serde(rename = "0.4")]
    #[value(name = "0.4")]
    V0_4,
    /// wadm-operator (0.5.1 on): stream `wadm_operator_events`.
    #[serde(rename = "0.5")]
    #[value(name = "0.5")]
    V0_5,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::V0_4 => "0.4",
            Operator::V0_5 => "0.5",
        }
    }
}

/// The application that binds a resource and breaks when it is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    Host,
    Wadm,
    /// The wasmCloud Kubernetes operator (wasmcloud-operator 0.4.x–0.5.0 / wadm-operator).
    Operator,
    /// The provisioner itself (its bookkeeping; no host or wadm gets access to it).
    Provisioner,
}

impl App {
    pub fn as_str(self) -> &'static str {
        match self {
            App::Host => "host",
            App::Wadm => "wadm",
            App::Operator => "operator",
            App::Provisioner => "provisioner",
        }
    }
}

/// Stream retention policy, as JetStream spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Limits,
    WorkQueue,
    Interest,
}

impl Retention {
    fn as_str(self) -> &'static str {
        match self {
            Retention::Limits => "limits",
            Retention::WorkQueue => "workqueue",
            Retention::Interest => "interest",
        }
    }
}

/// One source of a sourcing stream, or a mirror's origin, with its subject transform.
#[derive(Debug, Clone, Copy)]
pub struct SourceRow {
    /// Catalog key of the stream sourced from (it must be created first).
    pub from: &'static str,
    pub transform_src: &'static str,
    pub transform_src_multitenant: &'static str,
    pub transform_dest: &'static str,
    pub transform_dest_multitenant: &'static str,
}

/// How a row's stream is shaped, and so whether it is a KV bucket: a row has no separate
/// kind that could say otherwise (see [`Shape::kind`]).
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A KV bucket with history 1, as `create_key_value` with a default config makes it.
    /// KV buckets all share one shape, so it is not repeated.
    Kv,
    /// A plain stream with subjects of its own (or sources).
    Stream(StreamShape),
    /// A mirror of another catalog stream, with one subject transform: no subjects of its
    /// own.
    Mirror(MirrorShape),
}

impl Shape {
    /// A KV bucket (a stream named `KV_<bucket>`) or a plain stream.
    pub const fn kind(&self) -> Kind {
        match self {
            Shape::Kv => Kind::Kv,
            Shape::Stream(_) | Shape::Mirror(_) => Kind::Stream,
        }
    }
}

/// A plain stream's settings, as wadm creates it.
#[derive(Debug, Clone, Copy)]
pub struct StreamShape {
    pub subjects: &'static [&'static str],
    pub subjects_multitenant: &'static [&'static str],
    pub retention: Retention,
    pub max_age_secs: u64,
    /// `None`: unlimited (-1).
    pub max_msgs_per_subject: Option<i64>,
    pub allow_direct: bool,
    pub description: &'static str,
    pub sources: &'static [SourceRow],
    /// wadm deletes and recreates these streams unless the subjects are exactly equal.
    pub subjects_checked_by_wadm: bool,
}

/// A mirror's settings. Duplicate window and the like are left to the server, as the app
/// leaves them.
#[derive(Debug, Clone, Copy)]
pub struct MirrorShape {
    pub retention: Retention,
    pub max_age_secs: u64,
    pub description: &'static str,
    pub mirror: SourceRow,
}

/// Which `backup` run takes a resource. wasmCloud's docs ask for the host's buckets and
/// wadm's manifests to be "file backed and backed up": they hold what nobody can rebuild
/// (component config, links, application definitions). wadm rebuilds its state within
/// about a minute and its streams carry short-lived events, so those are optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backup {
    /// Taken by every `backup` (the default set).
    Recommended,
    /// Taken only by `backup --all`.
    Optional,
    /// Never taken: data derived from other streams (a mirror copies its origin, and its
    /// deletions and corruption with it), restored by restoring the origin.
    Never,
}

impl Backup {
    /// Whether a `backup` run takes the resource; `all` is `backup --all`.
    pub fn taken(self, all: bool) -> bool {
        match self {
            Backup::Recommended => true,
            Backup::Optional => all,
            Backup::Never => false,
        }
    }
}

/// One resource that hosts or wadm need.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Stable identifier used in config files for per-resource settings.
    pub key: &'static str,
    pub scope: Scope,
    /// Bucket or stream name as users know it; `{lattice}` is replaced per lattice.
    pub name: &'static str,
    pub needed_by: App,
    pub shape: Shape,
    pub access: &'static [Access],
    /// Whether `backup` takes it by default or only with `--all`.
    pub backup: Backup,
}

/// Looks a row up by its key.
pub fn row(key: &str) -> Option<&'static Row> {
    CATALOG.iter().find(|r| r.key == key)
}

/// The rows of one scope, in catalog order.
pub fn rows(scope: Scope) -> impl Iterator<Item = &'static Row> {
    CATALOG.iter().filter(move |r| r.scope == scope)
}

/// The operator's stream row for its version.
pub fn operator_row(operator: Operator) -> &'static Row {
    rows(Scope::Operator(operator))
        .next()
        .unwrap_or_else(|| unreachable!("the catalog has a row for every operator version"))
}

/// A catalog row made concrete for one lattice and one wadm mode.
#[derive(Debug, Clone)]
pub struct Desired {
    pub row: &'static Row,
    /// Bucket or stream name as users know it.
    pub name: String,
    /// JetStream stream name (`KV_<bucket>` for buckets).
    pub stream: String,
    /// The full create payload (stream config), operator settings applied.
    pub config: Value,
    /// Stream names this one sources from; they must exist first.
    pub depends_on: Vec<String>,
    pub settings: ResourceSettings,
    /// wadm's multitenant mode (changes subjects); false for lattice rows.
    pub multitenant: bool,
    pub must_hold: Vec<Check>,
}

impl Desired {
    /// The key this resource was built from (see [`DesiredKey`]).
    pub fn key(&self) -> DesiredKey {
        DesiredKey {
            row: self.row,
            name: self.name.clone(),
            stream: self.stream.clone(),
            multitenant: self.multitenant,
            settings: self.settings.clone(),
        }
    }
}

/// Which resource a request wants and with which settings, before its config is built.
///
/// The config is a pure function of the row, the lattice, the wadm mode and the resource
/// settings, so two keys with the same stream, mode and settings want the identical config.
/// That is what the warm path compares (see `known.rs`): a request whose resources were all
/// checked with the same key is answered without building any config.
#[derive(Debug, Clone)]
pub struct DesiredKey {
    pub row: &'static Row,
    /// Bucket or stream name as users know it (the lattice is in it).
    pub name: String,
    /// JetStream stream name (`KV_<bucket>` for buckets).
    pub stream: String,
    pub multitenant: bool,
    pub settings: ResourceSettings,
}

impl Row {
    /// KV bucket or stream: what its shape says.
    pub const fn kind(&self) -> Kind {
        self.shape.kind()
    }

    /// The user-facing name for a lattice (ignored for wadm rows).
    pub fn name_for(&self, lattice: &str) -> String {
        self.name.replace("{lattice}", lattice)
    }

    /// The stream that backs the resource.
    pub fn stream_for(&self, lattice: &str) -> String {
        self.stream_named(&self.name_for(lattice))
    }

    /// The stream that backs the resource named `name` (`name_for(lattice)`): the one
    /// place a stream name is derived from a resource name.
    fn stream_named(&self, name: &str) -> String {
        match self.kind() {
            Kind::Kv => format!("KV_{name}"),
            Kind::Stream => name.to_string(),
        }
    }

    /// Subjects of the backing stream.
    pub fn subjects_for(&self, lattice: &str, multitenant: bool) -> Vec<String> {
        self.subjects_named(&self.name_for(lattice), multitenant)
    }

    /// [`Row::subjects_for`] from the resource's name (`name_for(lattice)`).
    fn subjects_named(&self, name: &str, multitenant: bool) -> Vec<String> {
        match &self.shape {
            Shape::Kv => vec![format!("$KV.{name}.>")],
            Shape::Stream(s) => {
                let list = if multitenant {
                    s.subjects_multitenant
                } else {
                    s.subjects
                };
                list.iter().map(|s| s.to_string()).collect()
            }
            Shape::Mirror(_) => Vec::new(),
        }
    }

    /// Makes the row concrete. `lattice` is ignored for wadm rows.
    pub fn desired(
        &'static self,
        lattice: &str,
        multitenant: bool,
        settings: &Settings,
    ) -> Desired {
        self.desired_key(lattice, multitenant, settings).desired()
    }

    /// What [`Row::desired`] is built from, without building the config.
    pub fn desired_key(
        &'static self,
        lattice: &str,
        multitenant: bool,
        settings: &Settings,
    ) -> DesiredKey {
        let lattice = match self.scope {
            Scope::Lattice => lattice,
            Scope::Wadm | Scope::Operator(_) | Scope::Provisioner => "",
        };
        let name = self.name_for(lattice);
        DesiredKey {
            row: self,
            stream: self.stream_named(&name),
            name,
            multitenant: multitenant && self.scope == Scope::Wadm,
            settings: settings.for_resource(self.key),
        }
    }

    /// The streams this one is made from (its sources, or its mirror's origin).
    fn origins(&self) -> Vec<SourceRow> {
        match &self.shape {
            Shape::Stream(s) => s.sources.to_vec(),
            Shape::Mirror(m) => vec![m.mirror],
            Shape::Kv => Vec::new(),
        }
    }
}

/// Everything a lattice needs, in creation order.
pub fn lattice_resources(lattice: &str, settings: &Settings) -> Vec<Desired> {
    lattice_keys(lattice, settings)
        .into_iter()
        .map(DesiredKey::desired)
        .collect()
}

/// Everything wadm needs, in creation order.
pub fn wadm_resources(multitenant: bool, settings: &Settings) -> Vec<Desired> {
    wadm_keys(multitenant, settings)
        .into_iter()
        .map(DesiredKey::desired)
        .collect()
}

/// The keys of [`lattice_resources`], configs not built.
pub fn lattice_keys(lattice: &str, settings: &Settings) -> Vec<DesiredKey> {
    rows(Scope::Lattice)
        .map(|r| r.desired_key(lattice, false, settings))
        .collect()
}

/// The keys of [`wadm_resources`], configs not built.
pub fn wadm_keys(multitenant: bool, settings: &Settings) -> Vec<DesiredKey> {
    rows(Scope::Wadm)
        .map(|r| r.desired_key("", multitenant, settings))
        .collect()
}

/// The operator's stream for its version, configs not built. It mirrors `wadm_events`, so
/// it goes with wadm's resources and is created after them.
pub fn operator_keys(operator: Operator, settings: &Settings) -> Vec<DesiredKey> {
    vec![operator_row(operator).desired_key("", false, settings)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_comes_from_an_earlier_row() {
        for (i, row) in CATALOG.iter().enumerate() {
            for s in row.origins() {
                let pos = CATALOG.iter().position(|r| r.key == s.from);
                assert!(pos.is_some_and(|p| p < i), "{} sources {}", row.key, s.from);
            }
        }
    }

    #[test]
    fn keys_and_names_are_unique() {
        let mut keys: Vec<_> = CATALOG.iter().map(|r| r.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CATALOG.len());
    }

    /// `settings` sits below the catalog and so cannot look keys up in it: it keeps the
    /// list of keys, and this keeps that list the catalog's.
    #[test]
    fn the_settings_know_every_catalog_key() {
        let mut catalog: Vec<_> = CATALOG.iter().map(|r| r.key).collect();
        let mut settings = crate::settings::RESOURCE_KEYS.to_vec();
        catalog.sort();
        settings.sort();
        assert_eq!(settings, catalog);
    }

    #[test]
    fn backup_takes_the_recommended_set_and_all_takes_the_optional_too() {
        let taken = |all| {
            CATALOG
                .iter()
                .filter(|r| r.backup.taken(all))
                .map(|r| r.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            taken(false),
            vec!["latticedata", "configdata", "wadm_manifests"]
        );
        assert!(!taken(true).contains(&"wadm_operator_events"));
        assert!(taken(true).contains(&"wadm_state"));
    }
}
