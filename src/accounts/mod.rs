//! Tenants in their own NATS accounts (issue 12): one provisioner creates each lattice's
//! buckets in the account of the requester.
//!
//! The provisioner runs in its own account and exports `wasmcloud.provision.>`; tenant
//! accounts import it. A request that crossed the import carries `Nats-Request-Info`,
//! whose `acc` names the requesting account (see [`request_info`] for when that header can
//! be believed). [`route`] reads it before anything else happens to a request:
//! - no header (a request from within the provisioner's own account): served as always;
//! - a configured account (`[accounts.<name>]`, see [`config`]): served by that account's
//!   own [`Provisioner`]: its own connection in the account (opened on first use), its
//!   JetStream context, warm cache, single flight, warm replies and lattice policy;
//! - anything else: refused, nothing created.
//!
//! Nothing in a request's body can name an account.

pub mod config;
pub mod request_info;
pub mod stanzas;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tracing::{info, warn};

use crate::catalog::Operator;
use crate::error::{ErrorKind, ProvisionError};
use crate::jsapi::JetStreamApi;
use crate::policy::HostAuth;
use crate::provisioner::Provisioner;
use crate::reconcile::{KnownStreams, Reconciler};
use crate::service::Shared;
use crate::subjects::SERVICE_NAME;

pub use config::{AccountConfig, FileAccount};

pub use crate::subjects::USER_INFO_SUBJECT;

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

/// The accounts a provisioner serves besides its own.
pub struct Tenants {
    accounts: HashMap<String, Account>,
    build: Build,
}

struct Account {
    config: AccountConfig,
    /// Set while the account's connection is open and checked; a failed open is retried
    /// by the next request, an idle one closed by [`Tenants::close_idle`]. Held only for
    /// a clone or a swap, never across an await.
    open: std::sync::Mutex<Option<Opened>>,
    /// One open at a time per account: concurrent first requests share it. Holds the
    /// last failed open, so that requests right after it share its answer instead of
    /// each connecting again (a misconfigured or unreachable account would otherwise cost
    /// a connection attempt per request).
    opening: tokio::sync::Mutex<Option<(std::time::Instant, ProvisionError)>>,
}

/// How long a failed open answers for the account before the next attempt.
const RETRY_OPEN_AFTER: Duration = Duration::from_secs(2);

/// An open account: what its requests share, and what closes with it.
struct Opened {
    shared: Arc<Shared>,
    last_used: std::time::Instant,
    /// Operator mode: when to mint a new user and connect with it (before the current
    /// one expires).
    renew_at: Option<std::time::Instant>,
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

impl Account {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Opened>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open account's shared state, marked as used now.
    fn use_open(&self) -> Option<Arc<Shared>> {
        let mut open = self.lock();
        let opened = open.as_mut()?;
        opened.last_used = std::time::Instant::now();
        Some(opened.shared.clone())
    }
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("accounts", &self.names())
            .finish()
    }
}

/// Where a request goes.
pub enum Route {
    /// The provisioner's own account: as without tenants.
    Own,
    /// A tenant account whose provisioner is open.
    Served(Arc<Shared>),
    /// A tenant account whose provisioner is not open yet: [`Tenants::open`].
    Open(Arc<Tenants>, String),
    Refused(ProvisionError),
}

impl Tenants {
    pub fn new(configs: Vec<AccountConfig>, build: Build) -> Tenants {
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
    ) -> Route {
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
        if !reply.is_some_and(|r| r.starts_with(request_info::IMPORT_REPLY_PREFIX)) {
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

    /// The account's provisioner, opened now if no request opened it before.
    pub async fn open(&self, own: &Shared, account: &str) -> Result<Arc<Shared>, ProvisionError> {
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
        let known = Arc::new(KnownStreams::default());
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
            renew_at: connected.renew_at,
            known,
            _advisories: connected.advisories,
        });
        Ok(shared)
    }

    /// Operator mode: for every open account whose minted user is due, mints a new one,
    /// connects with it and swaps the connection. Requests in flight finish on the old
    /// connection (its user is still valid), later ones use the new, which starts with a
    /// cold cache (`config::connect` forgets it on every connect). A failed renewal is
    /// retried on the next round and logged.
    pub async fn renew_due(&self) {
        for (name, a) in &self.accounts {
            let due = a.lock().as_ref().and_then(|o| {
                o.renew_at
                    .filter(|at| *at <= std::time::Instant::now())
                    .map(|_| (o.shared.clone(), o.known.clone()))
            });
            let Some((old, known)) = due else {
                continue;
            };
            let _opening = a.opening.lock().await;
            match self.connect(&a.config, known).await {
                Ok(connected) => {
                    let shared = Arc::new(old.for_account(name, connected.provisioner));
                    let mut open = a.lock();
                    if let Some(o) = open.as_mut() {
                        o.shared = shared;
                        o.renew_at = connected.renew_at;
                        o._advisories = connected.advisories;
                        info!(account = %name, "renewed the minted user in tenant account");
                    }
                }
                Err(e) => warn!(account = %name, "cannot renew the minted user: {e}"),
            }
        }
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

    /// Runs [`Tenants::close_idle`] and [`Tenants::renew_due`] every quarter of `idle`
    /// (at least every second)
    /// until the last other reference to the tenants is gone.
    pub fn spawn_idle_closer(self: &Arc<Self>, idle: Duration) {
        if self.accounts.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(tenants) = weak.upgrade() else {
                    return;
                };
                tenants.close_idle(idle);
                tenants.renew_due().await;
            }
        });
    }

    /// Connects in the account, checks that the connection is in it, and builds its
    /// provisioner.
    async fn connect(
        &self,
        config: &AccountConfig,
        known: Arc<KnownStreams>,
    ) -> Result<Connected, ProvisionError> {
        let name = &config.name;
        let (resolved, renew_at) = match &config.signer {
            None => (std::borrow::Cow::Borrowed(&config.resolved), None),
            Some(signer) => {
                let (resolved, renew_at) = mint(config, signer)
                    .map_err(|e| ProvisionError::unavailable(format!("account {name}: {e}")))?;
                (std::borrow::Cow::Owned(resolved), Some(renew_at))
            }
        };
        let client = crate::config::connect(&resolved, SERVICE_NAME, Some(known.clone()))
            .await
            .map_err(|e| {
                ProvisionError::unavailable(format!("cannot connect in account {name}: {e}"))
            })?;
        // Credentials of a user in some other account would create the buckets there.
        let (account, account_name) = user_account(&client).await.map_err(|e| {
            ProvisionError::unavailable(format!(
                "cannot check that the connection for account {name} is in it: {e}"
            ))
        })?;
        if &account != name && account_name.as_ref() != Some(name) {
            return Err(ProvisionError::unavailable(format!(
                "the credentials of [accounts.{name}] are those of a user in account \
                 {account}: give the credentials of a user in {name}"
            )));
        }
        let build = &self.build;
        let policy = config
            .policy(&build.policy)
            .map_err(ProvisionError::internal)?;
        let js = JetStreamApi::new(
            client.clone(),
            config.resolved.js_domain.clone(),
            build.js_timeout,
        );
        let mut reconciler = Reconciler::new(js, known.clone(), build.cache_ttl);
        if let Some(audit) = &build.audit {
            reconciler = reconciler.with_listener(
                audit.listener_in(Some(name.clone()), config.resolved.js_domain.clone()),
            );
        }
        let advisories = watch_advisories(&client, known).await;
        info!(account = %name, "connected in tenant account");
        let provisioner = Provisioner::new(Arc::new(reconciler), config.resolved.settings.clone())
            .with_policy(policy)
            .with_host_auth(build.host_auth.clone())
            .with_operator(build.operator);
        Ok(Connected {
            provisioner: Arc::new(provisioner),
            advisories,
            renew_at,
        })
    }
}

/// A connection in an account, checked, with its provisioner.
struct Connected {
    provisioner: Arc<Provisioner>,
    advisories: AbortOnDrop,
    renew_at: Option<std::time::Instant>,
}

/// Operator mode: mints the provisioner a user in the account, with exactly the tenant
/// user's permissions (`stanzas::tenant_user`), valid for the signer's expiry; returns the
/// connection settings with it and when to renew it (after three quarters).
fn mint(
    config: &AccountConfig,
    signer: &config::Signer,
) -> Result<(crate::config::Resolved, std::time::Instant), String> {
    use crate::permissions::{template_union, PlatformOptions, Role, TemplateOptions};
    // Read at every mint: a rotated key file is picked up without a restart.
    let key = crate::creds::AccountSigner::from_seed_file(&signer.seed_file, Some(&config.name))?;
    let template = template_union(
        &[Role::Provisioner],
        &TemplateOptions {
            lattices: Vec::new(),
            js_domain: config.resolved.js_domain.clone(),
        },
        PlatformOptions::default(),
    )?
    .with_inbox_prefix(config.resolved.inbox_prefix.as_deref())?;
    let permissions = stanzas::tenant_user(&template);
    let expires_at = crate::creds::unix_now() + signer.expiry.as_secs() as i64;
    let user = key.mint_user(SERVICE_NAME, &permissions, Some(expires_at))?;
    let mut resolved = config.resolved.clone();
    resolved.auth = crate::config::Auth::JwtAndSeed {
        jwt: user.jwt,
        seed: user.seed,
    };
    Ok((
        resolved,
        std::time::Instant::now() + signer.expiry.mul_f64(0.75),
    ))
}

/// Keeps an account's warm cache honest as `advisories` does for the own account (in a
/// task of its own: the order against requests is not kept, so a request racing a
/// deletion may be answered from the cache until the advisory lands or the TTL ends).
async fn watch_advisories(client: &async_nats::Client, known: Arc<KnownStreams>) -> AbortOnDrop {
    match crate::advisories::subscribe(client).await {
        Ok(mut advisories) => AbortOnDrop(Some(tokio::spawn(async move {
            while let Some(advisory) = advisories.next().await {
                crate::advisories::forget(&*known, &advisory);
            }
        }))),
        Err(e) => {
            warn!("no stream advisories in a tenant account ({e}); the cache TTL applies");
            AbortOnDrop(None)
        }
    }
}

/// The account of a connection's user, as the server reports it: (account, its name).
async fn user_account(client: &async_nats::Client) -> Result<(String, Option<String>), String> {
    let reply = tokio::time::timeout(
        USER_INFO_TIMEOUT,
        client.request(USER_INFO_SUBJECT, bytes::Bytes::new()),
    )
    .await
    .map_err(|_| "no answer from $SYS.REQ.USER.INFO within 5 s".to_string())?
    .map_err(|e| {
        format!("$SYS.REQ.USER.INFO failed ({e}); the user needs publish permission on it")
    })?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("$SYS.REQ.USER.INFO answered no JSON: {e}"))?;
    let data = &info["data"];
    let account = data["account"]
        .as_str()
        .ok_or_else(|| format!("$SYS.REQ.USER.INFO answered without an account: {info}"))?;
    Ok((
        account.to_string(),
        data["account_name"].as_str().map(str::to_string),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Arc<Tenants> {
        let own = crate::config::combine(
            &Default::default(),
            &Default::default(),
            Default::default(),
            None,
        )
        .unwrap();
        let file = std::collections::BTreeMap::from([(
            "TENANT_A".to_string(),
            FileAccount {
                user: Some("u".into()),
                password: Some("p".into()),
                ..Default::default()
            },
        )]);
        let tenants = Tenants::new(
            AccountConfig::resolve_all(&own, &file).unwrap(),
            Build {
                cache_ttl: Duration::from_secs(30),
                js_timeout: Duration::from_secs(5),
                audit: None,
                host_auth: HostAuth::default(),
                operator: None,
                policy: Default::default(),
            },
        );
        Arc::new(tenants)
    }

    fn header(value: &str) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        h.insert(crate::subjects::REQUEST_INFO_HEADER, value);
        h
    }

    fn code(route: Route) -> u16 {
        match route {
            Route::Own => 1,
            Route::Served(_) => 2,
            Route::Open(_, account) => {
                assert_eq!(account, "TENANT_A");
                3
            }
            Route::Refused(e) => e.code(),
        }
    }

    #[test]
    fn only_a_header_the_server_guarantees_names_another_account() {
        let t = tenants();
        let new = || "2.12.8".to_string();
        let a = header(r#"{"acc":"TENANT_A"}"#);
        let import = Some("_R_.abc.def");
        assert_eq!(code(t.route(None, import, new)), 1);
        // The server never sets the header within one account: one naming the
        // provisioner's own account is refused like any other unconfigured one.
        let own = header(r#"{"acc":"PROV"}"#);
        assert_eq!(code(t.route(Some(&own), import, new)), 403);
        assert_eq!(code(t.route(Some(&a), import, new)), 3);
        // Old servers pass a client's header on: not believed (CVE-2026-33223).
        let old = || "2.12.5".to_string();
        assert_eq!(code(t.route(Some(&a), import, old)), 503);
        // Not through an import, or no reply at all.
        assert_eq!(code(t.route(Some(&a), Some("_INBOX.x"), new)), 403);
        assert_eq!(code(t.route(Some(&a), None, new)), 403);
        // Not configured, or not readable.
        let c = header(r#"{"acc":"TENANT_C"}"#);
        assert_eq!(code(t.route(Some(&c), import, new)), 403);
        assert_eq!(code(t.route(Some(&header("{")), import, new)), 403);
    }

    #[test]
    fn a_tenant_account_needs_credentials_of_its_own() {
        let own = crate::config::combine(
            &Default::default(),
            &Default::default(),
            Default::default(),
            None,
        )
        .unwrap();
        let file =
            std::collections::BTreeMap::from([("TENANT_A".to_string(), FileAccount::default())]);
        let e = AccountConfig::resolve_all(&own, &file).unwrap_err();
        assert!(
            e.contains("give the credentials of a user in account TENANT_A"),
            "{e}"
        );
        let file = std::collections::BTreeMap::from([(
            "A.B".to_string(),
            FileAccount {
                creds: Some("x.creds".into()),
                ..Default::default()
            },
        )]);
        assert!(AccountConfig::resolve_all(&own, &file).is_err());
    }
}
