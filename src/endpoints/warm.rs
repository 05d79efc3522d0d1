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
//! - the request: [`super::prepare`] (parse, validate, authorize; synchronous), skipped
//!   when the same bytes were answered warm before (see [`WarmReplies`]);
//! - the lattice policy and the verdicts: `Provisioner::warm` (allowed lattices, the
//!   `--max-lattices` cap, the reconciler's verdicts for the desired configs);
//! - the bytes: [`WarmReplies`], a warm reply kept per work while its verdicts hold.

use std::collections::HashMap;
use std::sync::Arc;

use super::{EndpointSpec, Prepared, Reply, Work};
use crate::error::ProvisionError;
use crate::known::WarmStamp;
use crate::provisioner::Provisioner;

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

/// The warm answer to a request as it arrived: the reply kept for the same request bytes
/// while it holds, else prepared (see [`super::prepare`]) and answered from
/// [`WarmReplies`] or the verdicts. Synchronous: no JetStream call, no await, so the
/// service can answer it in its receive loop.
pub fn answer(
    provisioner: &Provisioner,
    replies: &WarmReplies,
    spec: &'static EndpointSpec,
    message: &async_nats::Message,
) -> Result<WarmAnswer, NotWarm> {
    if let Some(kept) = replies.kept(provisioner, &RequestKey::of(spec, message, false)) {
        return Ok(kept);
    }
    let prepared = super::prepare(
        provisioner,
        spec,
        &message.subject,
        message.headers.as_ref(),
        &message.payload,
    )
    .map_err(NotWarm::Refused)?;
    // Only a reply that follows from the work follows from the request's bytes; and only
    // a body of the size real requests have is kept as a key (see `MAX_KEYED_BODY`).
    let key = (prepared.same_reply_for_same_work && message.payload.len() <= MAX_KEYED_BODY)
        .then(|| RequestKey::of(spec, message, true));
    replies.answer_keyed(provisioner, prepared, key)
}

/// The largest request body kept as a key of a warm reply. Real `lattice` and `wadm`
/// bodies are a few dozen bytes; a requester who varies a 16 KiB body (whitespace, key
/// order) would otherwise make each account keep up to `max` copies of it (64 MiB at the
/// default 4,096). A larger body is still answered warm, only parsed each time.
const MAX_KEYED_BODY: usize = 512;

/// A request as its bytes: the endpoint, the subject where it names the lattice (the
/// scoped endpoints), the body. Headers are not part of it: a reply kept for the work
/// reads none (see [`Prepared::same_reply_for_same_work`]).
#[derive(PartialEq, Eq, Hash)]
struct RequestKey {
    endpoint: &'static str,
    subject: Option<String>,
    body: bytes::Bytes,
}

impl RequestKey {
    /// `owned`: a copy of the body, to be kept (the message's body shares the connection's
    /// read buffer, which a kept key would pin); otherwise a reference to it, for a look-up.
    fn of(spec: &'static EndpointSpec, message: &async_nats::Message, owned: bool) -> Self {
        RequestKey {
            endpoint: spec.name,
            subject: spec
                .subject
                .contains('*')
                .then(|| message.subject.to_string()),
            body: if owned {
                bytes::Bytes::copy_from_slice(&message.payload)
            } else {
                message.payload.clone()
            },
        }
    }
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
/// Each reply is found by its work and by the bytes of the requests it answered, so that
/// a request sent again as before is answered without being parsed again (`prepare` is
/// deterministic in the subject and body of such a request).
///
/// Bounded: at `max` entries either map starts over.
pub struct WarmReplies {
    kept: std::sync::Mutex<Kept>,
    max: usize,
}

#[derive(Default)]
struct Kept {
    by_work: HashMap<Work, Arc<WarmReply>>,
    by_request: HashMap<RequestKey, Arc<WarmReply>>,
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

impl WarmReply {
    fn answer(&self) -> WarmAnswer {
        WarmAnswer {
            body: self.body.clone(),
            resources: self.resources,
            kept: true,
        }
    }
}

impl WarmReplies {
    pub fn new(max: usize) -> Self {
        WarmReplies {
            kept: Default::default(),
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
        self.answer_keyed(provisioner, prepared, None)
    }

    /// The reply kept for these request bytes, while it holds. Checked under the lock (the
    /// verdicts' lock is never held while taking this one): a hit costs a reference count,
    /// not a copy of the stamp.
    fn kept(&self, provisioner: &Provisioner, key: &RequestKey) -> Option<WarmAnswer> {
        let kept = self.lock();
        let reply = kept.by_request.get(key)?;
        provisioner
            .reconciler
            .still_warm(&reply.stamp)
            .then(|| reply.answer())
    }

    /// [`WarmReplies::answer`], keeping the reply for `key` too (the request's bytes).
    fn answer_keyed(
        &self,
        provisioner: &Provisioner,
        prepared: Prepared,
        key: Option<RequestKey>,
    ) -> Result<WarmAnswer, NotWarm> {
        let keep = prepared.same_reply_for_same_work && !prepared.dry_run;
        if keep {
            let mut kept = self.lock();
            if let Some(reply) = kept.by_work.get(&prepared.work) {
                if provisioner.reconciler.still_warm(&reply.stamp) {
                    let (reply, answer) = (reply.clone(), reply.answer());
                    if let Some(key) = key {
                        self.insert(&mut kept, None, key, reply);
                    }
                    return Ok(answer);
                }
            }
        }
        // Cloned only when nothing holds: at most once per work and verdict.
        let work = keep.then(|| prepared.work.clone());
        let reply = prepared.try_warm(provisioner)?;
        let body: bytes::Bytes = reply.to_json().into();
        let resources = reply.reports.len();
        if let (Some(work), Some(stamp)) = (work, reply.stamp) {
            let kept_reply = Arc::new(WarmReply {
                body: body.clone(),
                resources,
                stamp,
            });
            let mut kept = self.lock();
            match key {
                Some(key) => self.insert(&mut kept, Some(work), key, kept_reply),
                None => bounded_insert(&mut kept.by_work, self.max, work, kept_reply),
            }
        }
        Ok(WarmAnswer {
            body,
            resources,
            kept: false,
        })
    }

    /// Keeps `reply` for the request bytes `key` (and for `work`, when given); a map at
    /// `max` starts over.
    fn insert(&self, kept: &mut Kept, work: Option<Work>, key: RequestKey, reply: Arc<WarmReply>) {
        if let Some(work) = work {
            bounded_insert(&mut kept.by_work, self.max, work, reply.clone());
        }
        bounded_insert(&mut kept.by_request, self.max, key, reply);
    }

    /// How many replies are kept (by work).
    pub fn len(&self) -> usize {
        self.lock().by_work.len()
    }

    /// How many request bodies are kept as keys (each at most [`MAX_KEYED_BODY`] bytes).
    pub fn requests_kept(&self) -> usize {
        self.lock().by_request.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Never held across an await, and any state is valid: a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Inserts into a map of at most `max` entries: a new key into a full map starts it over
/// (cheaper than tracking age, and a warm reply is cheap to make again).
fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, max: usize, k: K, v: V) {
    if map.len() >= max && !map.contains_key(&k) {
        map.clear();
    }
    map.insert(k, v);
}
