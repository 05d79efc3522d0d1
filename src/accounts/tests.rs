//! Routing by `Nats-Request-Info`: which header is believed, and where a request goes.

use super::*;
use crate::config::FileAccount;

/// Routing never builds what an account's requests share; a stand-in for the service's.
struct Unused;

impl AccountShared for Unused {
    fn for_account(&self, _: &str, _: Arc<Provisioner>) -> Self {
        Unused
    }
}

fn tenants() -> Arc<Tenants<Unused>> {
    let own = crate::config::Resolved::for_tests();
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

fn code(route: Route<Unused>) -> u16 {
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
