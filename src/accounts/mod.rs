//! Tenants in their own NATS accounts (issue 12): one provisioner creates each lattice's
//! buckets in the account of the requester.
//!
//! The provisioner runs in its own account and exports `wasmcloud.provision.>`; tenant
//! accounts import it. A request that crossed the import carries `Nats-Request-Info`,
//! whose `acc` names the requesting account (see [`request_info`] for when that header can
//! be believed). [`Tenants::route`] reads it before anything else happens to a request:
//! - no header (a request from within the provisioner's own account): served as always;
//! - a configured account (`[accounts.<name>]`, see [`crate::config::accounts`]): served by that account's
//!   own [`Provisioner`]: its own connection in the account (opened on first use), its
//!   JetStream context, warm cache, single flight, warm replies and lattice policy;
//! - anything else: refused, nothing created.
//!
//! Nothing in a request's body can name an account.

mod connect;
mod renewal;
pub mod request_info;
pub mod stanzas;
pub mod wiring;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::catalog::Operator;
use crate::config::AccountConfig;
use crate::error::{ErrorKind, ProvisionError};
use crate::host_auth::HostAuth;
use crate::known::KnownStreams;
use crate::provisioner::Provisioner;

/// How long the account check of a new connection may take.
const USER_INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// What every account's provisioner is built with besides its own configuration.
#[derive(Clone)]
pub struct Build {
    pub cache_ttl: Duration,
    pub js_timeout: Duration,
    /// Where each account's changes are reported (events name the account).
    pub audit: Option<crate::audit::AuditPublisher>,
    pub host_auth: HostAuth,
    pub operator: Option<Operator>,
    /// The provisioner's own lattice policy: its reserved names apply in every account,
    /// its globs and cap in each account whose table sets none.
    pub policy: Arc<crate::policy::LatticePolicy>,
}

/// What the requests of one account share, made from that account's provisioner by the
/// service, which knows its own metrics and reply route. A trait, so that this module
/// need not know the service (which routes requests here): the service sits above it.
pub trait AccountShared: Send + Sync + Sized + 'static {
    /// What `account`'s requests share, served by `provisioner`; the rest from `self`.
    fn for_account(&self, account: &str, provisioner: Arc<Provisioner>) -> Self;
}

/// The accounts a provisioner serves besides its own; `S` is what each account's
/// requests share (the service's `Shared`).
pub struct Tenants<S> {
    accounts: HashMap<String, Account<S>>,
    build: Build,
}

struct Account<S> {
    config: AccountConfig,
    /// Set while the account's connection is open and checked; a failed open is retried
    /// by the next request, an idle one closed by [`Tenants::close_idle`]. Held only for
    /// a clone or a swap, never across an await.
    open: std::sync::Mutex<Option<Opened<S>>>,
    /// One open at a time per account: concurrent first requests share it. Holds the
    /// last failed open, so that requests right after it share its answer instead of
    /// each connecting again (a misconfigured or unreachable account would otherwise cost
    /// a connection attempt per request).
    opening: tokio::sync::Mutex<Option<(std::time::Instant, ProvisionError)>>,
}

/// How long a failed open answers for the account before the next attempt.
const RETRY_OPEN_AFTER: Duration = Duration::from_secs(2);

/// An open account: what its requests share, and what closes with it.
struct Opened<S> {
    shared: Arc<S>,
    last_used: std::time::Instant,
    /// Operator mode: when to mint a new user and connect with it, and until when
    /// requests may start on this connection (both before its user expires).
    lease: Option<renewal::Lease>,
    /// The account's verdicts, handed to the renewed connection (which forgets them on
    /// connect, as every connection does).
    known: Arc<KnownStreams>,
    /// The advisory task holds subscriptions, which would keep the connection open.
    _advisories: AbortOnDrop,
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl<S> Account<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Opened<S>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open account's shared state, marked as used now; `None` if the account is
    /// not open, or if its minted user is so close to expiring that a request started on
    /// it might not finish before the server closes the connection (that request waits
    /// for the renewal under way, or renews itself: [`Tenants::open`]).
    fn use_open(&self) -> Option<Arc<S>> {
        let mut open = self.lock();
        let opened = open.as_mut()?;
        let now = std::time::Instant::now();
        if opened.lease.is_some_and(|l| now >= l.serve_until) {
            return None;
        }
        opened.last_used = now;
        Some(opened.shared.clone())
    }

    /// The open account's shared state and verdicts if its minted user is due for
    /// renewal.
    fn due(&self) -> Option<(Arc<S>, Arc<KnownStreams>)> {
        let open = self.lock();
        let o = open.as_ref()?;
        o.lease
            .filter(|l| l.renew_at <= std::time::Instant::now())
            .map(|_| (o.shared.clone(), o.known.clone()))
    }
}

impl<S: AccountShared> std::fmt::Debug for Tenants<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("accounts", &self.names())
            .finish()
    }
}

/// Where a request goes.
pub enum Route<S> {
    /// The provisioner's own account: as without tenants.
    Own,
    /// A tenant account whose provisioner is open.
    Served(Arc<S>),
    /// A tenant account whose provisioner is not open yet, or whose minted user is about
    /// to expire: [`Tenants::open`].
    Open(Arc<Tenants<S>>, String),
    Refused(ProvisionError),
}

impl<S: AccountShared> Tenants<S> {
    pub fn new(configs: Vec<AccountConfig>, build: Build) -> Tenants<S> {
        Tenants {
            accounts: configs
                .into_iter()
                .map(|config| {
                    (
                        config.name.clone(),
                        Account {
                            config,
                            open: Default::default(),
                            opening: Default::default(),
                        },
                    )
                })
                .collect(),
            build,
        }
    }

    /// The configured account names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Decides where a request goes, from `Nats-Request-Info` and its reply subject.
    /// No await, no allocation for a request without the header.
    pub fn route(
        self: &Arc<Self>,
        headers: Option<&async_nats::HeaderMap>,
        reply: Option<&str>,
        server_version: impl FnOnce() -> String,
    ) -> Route<S> {
        let Some(value) = headers.and_then(|h| h.get(crate::subjects::REQUEST_INFO_HEADER)) else {
            return Route::Own;
        };
        let account = match request_info::account(value.as_str()) {
            Ok(a) => a,
            Err(why) => {
                return Route::Refused(ProvisionError::new(
                    ErrorKind::Forbidden,
                    format!("{why}; it is set by the server on requests from other accounts"),
                ))
            }
        };
        let version = server_version();
        if !request_info::server_guarantees(&version) {
            return Route::Refused(ProvisionError::unavailable(format!(
                "this request names account {account} in {}, but nats-server {version} may \
                 pass on a value the client made up (CVE-2026-33223), so the provisioner \
                 serves no other account through it: upgrade every server to {} or later",
                crate::subjects::REQUEST_INFO_HEADER,
                request_info::REQUIRED
            )));
        }
        if !reply.is_some_and(|r| r.starts_with(crate::subjects::IMPORT_REPLY_PREFIX)) {
            return Route::Refused(ProvisionError::new(
                ErrorKind::Forbidden,
                format!(
                    "this request carries {} naming account {account} but did not come \
                     through a service import (its reply subject is not one the server \
                     makes for an import): a client may not choose its account; request \
                     from within account {account}",
                    crate::subjects::REQUEST_INFO_HEADER
                ),
            ));
        }
        match self.accounts.get(&account) {
            None => Route::Refused(ProvisionError::new(
                ErrorKind::Forbidden,
                format!(
                    "account {account} is not served here: the provisioner's operator adds \
                     it as [accounts.{account}] in the provisioner's config file"
                ),
            )),
            Some(a) => match a.use_open() {
                Some(shared) => Route::Served(shared),
                None => Route::Open(self.clone(), account),
            },
        }
    }

    /// The account's provisioner, opened now if no request opened it before; in
    /// operator mode also renewed now if its user is about to expire and no renewal
    /// got there first (requests in flight finish on the old connection).
    pub async fn open(&self, own: &S, account: &str) -> Result<Arc<S>, ProvisionError> {
        let Some(a) = self.accounts.get(account) else {
            return Err(ProvisionError::internal(format!(
                "account {account} was routed but is not configured"
            )));
        };
        let mut opening = a.opening.lock().await;
        if let Some(shared) = a.use_open() {
            return Ok(shared);
        }
        if let Some((at, e)) = opening.as_ref() {
            if at.elapsed() < RETRY_OPEN_AFTER {
                return Err(e.clone());
            }
        }
        // A renewal keeps the verdicts (the new connection forgets them on connect).
        let known = a
            .lock()
            .as_ref()
            .map(|o| o.known.clone())
            .unwrap_or_default();
        let connected = match self.connect(&a.config, known.clone()).await {
            Ok(c) => c,
            Err(e) => {
                warn!(account = %account, "{}", e.message);
                *opening = Some((std::time::Instant::now(), e.clone()));
                return Err(e);
            }
        };
        *opening = None;
        let shared = Arc::new(own.for_account(account, connected.provisioner));
        *a.lock() = Some(Opened {
            shared: shared.clone(),
            last_used: std::time::Instant::now(),
            lease: connected.lease,
            known,
            _advisories: connected.advisories,
        });
        Ok(shared)
    }

    /// Operator mode: for every open account whose minted user is due, mints a new one,
    /// connects with it and swaps the connection; the accounts concurrently, so that a
    /// slow one delays no other. Requests in flight finish on the old connection (its
    /// user is still valid), later ones use the new, which starts with a cold cache
    /// (`config::connect` forgets it on every connect). A failed renewal is logged and
    /// tried again after `renewal::RETRY_RENEW_AFTER`; once the old user has expired
    /// its connection is closed, and the next request opens the account again.
    pub async fn renew_due(&self) {
        let due = self.accounts.iter().filter(|(_, a)| a.due().is_some());
        futures::future::join_all(due.map(|(name, a)| self.renew(name, a))).await;
    }

    async fn renew(&self, name: &str, a: &Account<S>) {
        let _opening = a.opening.lock().await;
        // Checked again under the lock: a request may have renewed it meanwhile.
        let Some((old, known)) = a.due() else {
            return;
        };
        match self.connect(&a.config, known).await {
            Ok(connected) => {
                let shared = Arc::new(old.for_account(name, connected.provisioner));
                let mut open = a.lock();
                if let Some(o) = open.as_mut() {
                    o.shared = shared;
                    o.lease = connected.lease;
                    o._advisories = connected.advisories;
                    info!(account = %name, "renewed the minted user in tenant account");
                }
            }
            Err(e) => {
                warn!(account = %name, "cannot renew the minted user: {}", e.message);
                let mut open = a.lock();
                let now = std::time::Instant::now();
                let expired = match open.as_mut().and_then(|o| o.lease.as_mut()) {
                    Some(l) if now >= l.expires_at => true,
                    Some(l) => {
                        l.renew_at = now + renewal::RETRY_RENEW_AFTER;
                        false
                    }
                    None => false,
                };
                if expired {
                    *open = None;
                    warn!(account = %name, "closed the connection of the expired minted user");
                }
            }
        }
    }

    /// The earliest instant at which a minted user is due for renewal.
    fn next_renewal(&self) -> Option<std::time::Instant> {
        self.accounts
            .values()
            .filter_map(|a| a.lock().as_ref().and_then(|o| o.lease).map(|l| l.renew_at))
            .min()
    }

    /// Closes the connections of accounts that served no request for `idle` and have
    /// none in flight; the next request opens them again (with a cold cache). Returns
    /// the accounts closed.
    pub fn close_idle(&self, idle: Duration) -> Vec<String> {
        let mut closed = Vec::new();
        for (name, a) in &self.accounts {
            let mut open = a.lock();
            let idle_now = open.as_ref().is_some_and(|o| {
                o.last_used.elapsed() >= idle && Arc::strong_count(&o.shared) == 1
            });
            if idle_now {
                // Dropped outside the lock's scope of other accounts, but still under
                // this one's: no request can pick it up meanwhile.
                *open = None;
                info!(account = %name, "closed the idle connection in tenant account");
                closed.push(name.clone());
            }
        }
        closed
    }

    /// Runs [`Tenants::close_idle`] every quarter of `idle` (at least every second), and
    /// [`Tenants::renew_due`] as well as at the earliest renewal instant (a fixed tick
    /// would run a renewal up to a tick late: past the expiry of a short-lived user),
    /// until the last other reference to the tenants is gone.
    pub fn spawn_idle_closer(self: &Arc<Self>, idle: Duration) {
        if self.accounts.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                let wake = {
                    let Some(tenants) = weak.upgrade() else {
                        return;
                    };
                    let tick = std::time::Instant::now() + every;
                    tenants.next_renewal().map_or(tick, |at| at.min(tick))
                };
                tokio::time::sleep_until(wake.into()).await;
                let Some(tenants) = weak.upgrade() else {
                    return;
                };
                tenants.close_idle(idle);
                tenants.renew_due().await;
            }
        });
    }
}

#[cfg(test)]
mod tests;
