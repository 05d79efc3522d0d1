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
        let now = crate::clock::unix_now();
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
    let reports = reconciler.apply(vec![desired]).await?;
    refuse_drift(&bucket, &reports)?;
    reconciler
        .js()
        .context()
        .get_key_value(&bucket)
        .await
        .map_err(|e| unavailable(format!("open bucket {bucket}: {e}")))
}

/// Fails closed on a bookkeeping bucket that is not as the catalog makes it (someone
/// created it first, or changed it): a `subject_transform` stores the key where reads
/// never find it, so instances admit without seeing each other's reservations; a
/// `max_age` drops reservations early. Admitting on such a bucket would
/// break the cap silently, so new lattices are refused (503) until an operator fixes it;
/// the details go to the log, not to the tenant.
fn refuse_drift(
    bucket: &str,
    reports: &[crate::reconcile::ResourceReport],
) -> Result<(), ProvisionError> {
    let drift: Vec<String> = reports
        .iter()
        .flat_map(|r| &r.drift)
        .map(|f| format!("{} is {}, wants {}", f.field, f.have, f.want))
        .collect();
    if drift.is_empty() {
        return Ok(());
    }
    tracing::error!(
        bucket,
        drift = %drift.join("; "),
        "the --max-lattices bookkeeping bucket has drift, so new lattices are refused: as an \
         admin, remove it (it holds only reservations that expire within minutes) and the \
         provisioner creates it again as the catalog makes it"
    );
    Err(ProvisionError::new(
        ErrorKind::Unavailable,
        format!(
            "new lattices cannot be admitted now: the provisioner's bookkeeping for \
             --max-lattices (bucket {bucket}) is not as it must be, so it cannot count \
             lattices safely; its operator is told in the provisioner's log. Retry once they \
             have fixed it"
        ),
    ))
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
