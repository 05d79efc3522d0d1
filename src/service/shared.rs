//! What the requests of one account share, and which account a request is served in
//! (issue 12: a request that crossed a service import is served in its requester's
//! account, see `accounts`).

use std::sync::Arc;

use crate::endpoints::warm::WarmReplies;
use crate::error::ProvisionError;
use crate::metrics::Metrics;
use crate::provisioner::Provisioner;

use super::reply_route::ReplyRoute;

/// What every request's task shares: one per account served (see `accounts`).
pub struct Shared {
    pub(super) provisioner: Arc<Provisioner>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) route: Arc<ReplyRoute>,
    /// Per account: a warm reply of one account never answers another's request.
    pub(super) warm_replies: WarmReplies,
    /// The own account's only: where requests from other accounts go.
    pub(super) tenants: Option<Arc<crate::accounts::Tenants<Shared>>>,
    /// A tenant account's only: its name, for STATS.
    pub(super) account: Option<String>,
}

impl crate::accounts::AccountShared for Shared {
    /// What a tenant account's requests share: its provisioner and warm replies; the
    /// service's metrics and reply route.
    fn for_account(&self, account: &str, provisioner: Arc<Provisioner>) -> Shared {
        Shared {
            provisioner,
            metrics: self.metrics.clone(),
            route: self.route.clone(),
            warm_replies: WarmReplies::default(),
            tenants: None,
            account: Some(account.to_string()),
        }
    }
}

/// The [`Shared`] of the account a request comes from, or why it is refused (issue 12).
pub(super) fn account_of(
    shared: Arc<Shared>,
    message: &async_nats::Message,
) -> Result<Arc<Shared>, Route> {
    let Some(tenants) = &shared.tenants else {
        return Ok(shared);
    };
    match tenants.route(message.headers.as_ref(), message.reply.as_deref(), || {
        shared.route.fallback.server_info().version
    }) {
        crate::accounts::Route::Own => Ok(shared),
        crate::accounts::Route::Served(tenant) => Ok(tenant),
        crate::accounts::Route::Open(tenants, account) => {
            Err(Route::Open(tenants, account, shared))
        }
        crate::accounts::Route::Refused(e) => Err(Route::Refused(e, shared)),
    }
}

/// A request that is not simply served in its account at once.
pub(super) enum Route {
    Open(Arc<crate::accounts::Tenants<Shared>>, String, Arc<Shared>),
    Refused(ProvisionError, Arc<Shared>),
}
