//! `--max-lattices` across instances: JetStream serializes the admission of new lattices.
//!
//! Counting streams and then creating is a race between instances (two instances at the
//! cap minus one both see room and both create). So a new lattice is first *reserved* in
//! one key of the provisioner's own KV bucket (catalog row `provisioner_admissions`):
//! the key holds the lattices reserved in the last [`RESERVATION_TTL`], and it is
//! written with a compare-and-set on its revision (`Nats-Expected-Last-Subject-Sequence`).
//! Of two instances that read the same revision only one write succeeds; the other reads
//! again, sees the first one's reservation, and counts it. A lattice counts when its
//! streams exist (a fresh `STREAM.NAMES`, never this instance's memory, so a lattice whose
//! buckets were deleted is new again) or while its reservation is live.
//!
//! Nothing is ever deleted: a reservation simply stops counting after the TTL, by which
//! time its lattice exists (and counts by its streams) or its creation failed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::error::{ErrorKind, ProvisionError};
use crate::jsapi::Call;
use crate::policy::lattices_of;
use crate::reconcile::Reconciler;
use crate::settings::Settings;

/// Catalog key of the bookkeeping bucket.
pub const ROW_KEY: &str = "provisioner_admissions";

/// The key that holds the reservations.
const KEY: &str = "reserved";

/// How long a reservation counts: far longer than creating a lattice's buckets takes
/// (a few JetStream calls, each bounded by --js-timeout).
pub const RESERVATION_TTL: Duration = Duration::from_secs(300);

/// Compare-and-set attempts before giving up (each loser re-reads; contention is bounded
/// by the number of instances admitting at the same moment).
const ATTEMPTS: usize = 50;

/// The value of [`KEY`]: lattice → when it was reserved (Unix seconds).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Reserved {
    lattices: BTreeMap<String, i64>,
}

/// The outcome of [`reserve`].
#[derive(Debug)]
pub enum Outcome {
    /// The lattices are reserved (or were already): create them.
    Admitted,
    /// Admitting them would exceed the cap; `counted` are the lattices that count now.
    Full { counted: BTreeSet<String> },
}

/// Reserves `new` (lattices whose streams did not exist) if the lattices that exist, plus
/// the live reservations, plus `new` stay within `max`.
///
/// Each attempt reads the reservations *before* it lists the streams: a reservation is
/// removed only after its lattice was created ([`settle`]), so a lattice is either still
/// in what was read, or its streams are in the listing that follows. (Listing first would
/// miss a lattice created and settled in between.)
pub async fn reserve(
    reconciler: &Arc<Reconciler>,
    settings: &Settings,
    new: &BTreeSet<&str>,
    max: usize,
) -> Result<Outcome, ProvisionError> {
    let store = ledger(reconciler, settings).await?;
    let js = reconciler.js();
    for _ in 0..ATTEMPTS {
        let now = crate::creds::unix_now();
        let (revision, mut reserved) = read(&store).await?;
        let names = js
            .stream_names()
            .await
            .map_err(|e| e.explain(Call::CountLattices, js.domain()))?;
        let existing = &lattices_of(&names);
        // Reservations that no longer count: expired, or their lattice exists now.
        reserved.lattices.retain(|l, at| {
            now.saturating_sub(*at) < RESERVATION_TTL.as_secs() as i64 && !existing.contains(l)
        });
        let mut counted: BTreeSet<String> = existing.clone();
        counted.extend(reserved.lattices.keys().cloned());
        let missing: Vec<&str> = new
            .iter()
            .copied()
            .filter(|l| !counted.contains(*l))
            .collect();
        if missing.is_empty() {
            // Reserved by another request already; it is being created.
            return Ok(Outcome::Admitted);
        }
        if counted.len() + missing.len() > max {
            return Ok(Outcome::Full { counted });
        }
        for l in missing {
            reserved.lattices.insert(l.to_string(), now);
        }
        let value = serde_json::to_vec(&reserved)
            .map_err(|e| ProvisionError::internal(format!("cannot encode reservations: {e}")))?;
        let written = match revision {
            None => store.create(KEY, value.into()).await.map_err(|e| {
                (
                    e.kind() == kv::CreateErrorKind::AlreadyExists,
                    e.to_string(),
                )
            }),
            Some(r) => store.update(KEY, value.into(), r).await.map_err(|e| {
                (
                    e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                    e.to_string(),
                )
            }),
        };
        match written {
            Ok(_) => return Ok(Outcome::Admitted),
            // Another instance wrote first: read its reservations and count again.
            Err((true, _)) => {
                tokio::time::sleep(Duration::from_millis(1 + (now as u64 % 5))).await;
                continue;
            }
            Err((false, e)) => return Err(unavailable(format!("write the reservation: {e}"))),
        }
    }
    Err(ProvisionError::new(
        ErrorKind::Unavailable,
        format!(
            "could not reserve the new lattices for --max-lattices: {ATTEMPTS} attempts lost \
             to other provisioner instances admitting at the same time; retry"
        ),
    ))
}

/// Removes the reservations of lattices whose creation succeeded: their streams count
/// them now, and a lattice deleted later must free its place at once. Best effort: a
/// reservation that stays (a crash, JetStream away) stops counting after the TTL.
pub async fn settle(reconciler: &Arc<Reconciler>, settings: &Settings, lattices: &[String]) {
    if lattices.is_empty() {
        return;
    }
    let store = match ledger(reconciler, settings).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("could not settle lattice reservations: {}", e.message);
            return;
        }
    };
    for _ in 0..ATTEMPTS {
        let Ok((Some(revision), mut reserved)) = read(&store).await else {
            return;
        };
        let before = reserved.lattices.len();
        reserved.lattices.retain(|l, _| !lattices.contains(l));
        if reserved.lattices.len() == before {
            return;
        }
        let Ok(value) = serde_json::to_vec(&reserved) else {
            return;
        };
        match store.update(KEY, value.into(), revision).await {
            Ok(_) => return,
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
            Err(e) => {
                tracing::warn!("could not settle lattice reservations: {e}");
                return;
            }
        }
    }
}

/// The bookkeeping bucket, created (through the catalog and the reconciler, like every
/// resource) when first needed.
async fn ledger(
    reconciler: &Arc<Reconciler>,
    settings: &Settings,
) -> Result<kv::Store, ProvisionError> {
    let row = catalog::row(ROW_KEY)
        .ok_or_else(|| ProvisionError::internal(format!("the catalog has no row {ROW_KEY}")))?;
    let desired = row.desired_key("", false, settings).desired();
    let bucket = desired.name.clone();
    reconciler.apply(vec![desired]).await?;
    reconciler
        .js()
        .context()
        .get_key_value(&bucket)
        .await
        .map_err(|e| unavailable(format!("open bucket {bucket}: {e}")))
}

/// The key's revision (`None`: never written) and value. A value that cannot be read
/// counts as no reservations: the streams still count, and the next write replaces it.
async fn read(store: &kv::Store) -> Result<(Option<u64>, Reserved), ProvisionError> {
    let entry = store
        .entry(KEY)
        .await
        .map_err(|e| unavailable(format!("read the reservations: {e}")))?;
    Ok(match entry {
        None => (None, Reserved::default()),
        // A delete or purge marker: the key is empty, and its revision is the one to CAS.
        Some(e) if e.operation != kv::Operation::Put => (Some(e.revision), Reserved::default()),
        Some(e) => (
            Some(e.revision),
            serde_json::from_slice(&e.value).unwrap_or_default(),
        ),
    })
}

fn unavailable(what: String) -> ProvisionError {
    ProvisionError::new(
        ErrorKind::Unavailable,
        format!(
            "could not {what} (bookkeeping for --max-lattices); check that JetStream is up and \
             that the provisioner's user has the `permissions --role provisioner` template"
        ),
    )
}
