//! Opening a tenant account: connecting in it (with a minted user in operator mode),
//! checking that the connection is in that account, and building its provisioner.

use std::sync::Arc;

use futures::StreamExt;
use tracing::{info, warn};

use super::renewal::Lease;
use super::{stanzas, AbortOnDrop, AccountShared, Tenants, USER_INFO_TIMEOUT};
use crate::config::AccountConfig;
use crate::config_error::ConfigError;
use crate::error::ProvisionError;
use crate::jsapi::JetStreamApi;
use crate::known::KnownStreams;
use crate::provisioner::Provisioner;
use crate::reconcile::Reconciler;
use crate::subjects::{SERVICE_NAME, USER_INFO_SUBJECT};

impl<S: AccountShared> Tenants<S> {
    /// Connects in the account, checks that the connection is in it, and builds its
    /// provisioner.
    pub(super) async fn connect(
        &self,
        config: &AccountConfig,
        known: Arc<KnownStreams>,
    ) -> Result<Connected, ProvisionError> {
        let name = &config.name;
        let (resolved, lease) = match &config.signer {
            None => (std::borrow::Cow::Borrowed(&config.resolved), None),
            Some(signer) => {
                let (resolved, lease) = mint(config, signer)
                    .map_err(|e| ProvisionError::unavailable(format!("account {name}: {e}")))?;
                (std::borrow::Cow::Owned(resolved), Some(lease))
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
            lease,
        })
    }
}

/// A connection in an account, checked, with its provisioner.
pub(super) struct Connected {
    pub(super) provisioner: Arc<Provisioner>,
    pub(super) advisories: AbortOnDrop,
    /// Operator mode: the minted user's schedule.
    pub(super) lease: Option<Lease>,
}

/// Operator mode: mints the provisioner a user in the account, with exactly the tenant
/// user's permissions (`stanzas::tenant_user`), valid for the signer's expiry; returns the
/// connection settings with it and its lease (when to renew it, from its `exp`).
fn mint(
    config: &AccountConfig,
    signer: &crate::config::accounts::Signer,
) -> Result<(crate::config::Resolved, Lease), ConfigError> {
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
    let user = key.mint_user_valid_for(SERVICE_NAME, &permissions, Some(signer.expiry))?;
    // `exp` is whole seconds from a truncated clock reading: the user is valid up to 1 s
    // less than `signer.expiry`, so the lease is computed from `exp` itself.
    let exp = user
        .expires_at
        .ok_or_else(|| ConfigError::Credentials("the minted user has no expiry (`exp`)".into()))?;
    let lease = Lease::starting_now(exp);
    let mut resolved = config.resolved.clone();
    resolved.auth = crate::config::Auth::JwtAndSeed {
        jwt: user.jwt,
        seed: user.seed,
    };
    Ok((resolved, lease))
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
