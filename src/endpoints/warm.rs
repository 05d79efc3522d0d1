//! The warm path's one door: whether a request can be answered from what this instance
//! already knows, and with which bytes.
//!
//! A warm answer changes nothing and needs no JetStream call: every resource of the
//! request was seen in place, and the verdicts saying so ([`WarmStamp`], kept by the
//! reconciler's `KnownStreams`) still hold. The service asks [`answer`] in its receive
//! loop, before a request gets a task of its own (see `service.rs`); `NotWarm` hands back
//! what is needed for the cold path or the refusal.
//!
//! What it reads, and who owns it:
//! - the request: [`super::prepare`] (parse, validate, authorize; synchronous);
//! - the lattice policy and the verdicts: `Provisioner::warm` (allowed lattices, the
//!   `--max-lattices` cap, the reconciler's verdicts for the desired configs);
//! - the bytes: [`WarmReplies`], a warm reply kept per work while its verdicts hold.

use std::collections::HashMap;

use super::{EndpointSpec, Prepared, Reply, Work};
use crate::error::ProvisionError;
use crate::provisioner::Provisioner;
use crate::reconcile::WarmStamp;

/// The answer to a warm request.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmAnswer {
    pub body: bytes::Bytes,
    /// How many resources it reports (each `exists`), for STATS.
    pub resources: usize,
    /// Sent before to a request of the same work (not made again).
    pub kept: bool,
}

/// Why a request has no warm answer.
#[derive(Debug)]
pub enum NotWarm {
    /// It is refused (bad input, a lattice that is not allowed, …): answer with this
    /// error.
    Refused(ProvisionError),
    /// It needs JetStream: the request back, for [`Prepared::run`].
    Cold(Prepared),
}

/// The warm answer to a request as it arrived: prepared (see [`super::prepare`]), then
/// answered from [`WarmReplies`] or the verdicts. Synchronous: no JetStream call, no
/// await, so the service can answer it in its receive loop.
pub fn answer(
    provisioner: &Provisioner,
    replies: &WarmReplies,
    spec: &EndpointSpec,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
) -> Result<WarmAnswer, NotWarm> {
    let prepared =
        super::prepare(provisioner, spec, subject, headers, body).map_err(NotWarm::Refused)?;
    replies.answer(provisioner, prepared)
}

impl Prepared {
    /// The reply from what this instance already knows, when every resource was seen in
    /// place: no JetStream call and no await, so that the bulk of a fleet's start costs
    /// about one NATS round trip. Otherwise why not: refused, or the request back for
    /// [`Prepared::run`].
    pub fn try_warm(self, provisioner: &Provisioner) -> Result<Reply, NotWarm> {
        if self.dry_run {
            return Err(NotWarm::Cold(self));
        }
        match provisioner.warm(&self.work.targets, self.work.replicas) {
            Ok(Some(warm)) => {
                let stamp = warm.stamp;
                let mut reply = self
                    .reply(provisioner, warm.reports)
                    .map_err(NotWarm::Refused)?;
                reply.stamp = Some(stamp);
                Ok(reply)
            }
            Ok(None) => Err(NotWarm::Cold(self)),
            Err(e) => Err(NotWarm::Refused(e)),
        }
    }
}

/// The bodies of warm replies, by the work asked for.
///
/// A warm reply is a pure function of the work and of the verdicts it was made from (see
/// [`WarmStamp`]), so its bytes are kept and sent again for as long as every one of those
/// verdicts is still the one stored and unexpired: forgotten (advisory, reconnect),
/// replaced (checked again against other settings) or expired (cache TTL), and the reply
/// is made again. A fleet's start is mostly the same few lattices asked for again and
/// again; this turns each of those requests into a map lookup instead of building and
/// serializing the same reports.
///
/// A reply is kept only after [`Prepared::try_warm`] made it, so only for work that
/// passed the lattice policy, which is fixed for the life of the process.
///
/// Bounded: at `max` entries the map starts over.
pub struct WarmReplies {
    by_work: std::sync::Mutex<HashMap<Work, WarmReply>>,
    max: usize,
}

/// A warm reply as sent.
struct WarmReply {
    body: bytes::Bytes,
    resources: usize,
    stamp: WarmStamp,
}

impl Default for WarmReplies {
    fn default() -> Self {
        WarmReplies::new(4096)
    }
}

impl WarmReplies {
    pub fn new(max: usize) -> Self {
        WarmReplies {
            by_work: Default::default(),
            max: max.max(1),
        }
    }

    /// The warm answer to a request: the reply kept for the same work while it holds, else
    /// one made now from the verdicts (and kept, when the reply follows from the work).
    pub fn answer(
        &self,
        provisioner: &Provisioner,
        prepared: Prepared,
    ) -> Result<WarmAnswer, NotWarm> {
        let keep = prepared.same_reply_for_same_work && !prepared.dry_run;
        if keep {
            // Checked under the lock (the verdicts' lock is never held while taking this
            // one): a hit then costs a reference count, not a copy of the stamp.
            let map = self.lock();
            if let Some(kept) = map.get(&prepared.work) {
                if provisioner.reconciler.still_warm(&kept.stamp) {
                    return Ok(WarmAnswer {
                        body: kept.body.clone(),
                        resources: kept.resources,
                        kept: true,
                    });
                }
            }
        }
        // Cloned only when nothing holds: at most once per work and verdict.
        let work = keep.then(|| prepared.work.clone());
        let reply = prepared.try_warm(provisioner)?;
        let body: bytes::Bytes = reply.to_json().into();
        if let (Some(work), Some(stamp)) = (work, reply.stamp.clone()) {
            let mut map = self.lock();
            if map.len() >= self.max && !map.contains_key(&work) {
                map.clear();
            }
            map.insert(
                work,
                WarmReply {
                    body: body.clone(),
                    resources: reply.reports.len(),
                    stamp,
                },
            );
        }
        Ok(WarmAnswer {
            body,
            resources: reply.reports.len(),
            kept: false,
        })
    }

    /// How many replies are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Never held across an await, and any state is valid: a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Work, WarmReply>> {
        self.by_work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
