//! How flags, file and context combine; what descriptions leave out.

use super::*;
use crate::config_error::ConfigError;
use crate::context::{self, LoadedContext};

/// The flags (and a context) alone: no config file, default settings.
fn from_flags(
    flags: &ConnectArgs,
    context: Option<LoadedContext>,
) -> Result<Resolved, ConfigError> {
    combine(
        flags,
        &SettingsArgs::default(),
        FileConfig::default(),
        context,
    )
}

#[test]
fn one_source_gives_one_auth_method() {
    let args = ConnectArgs {
        creds: Some("a.creds".into()),
        token: Some("t".into()),
        ..Default::default()
    };
    let err = from_flags(&args, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than one way to authenticate"),
        "{err}"
    );
}

#[test]
fn flags_win_over_the_file_and_auth_is_taken_whole() {
    let file: FileConfig = toml::from_str(
        r#"
        js_domain = "file"
        [connection]
        server = "nats://file:4222"
        user = "u"
        password = "p"
        tls_ca = "/file/ca.pem"
        "#,
    )
    .unwrap();
    let args = ConnectArgs {
        token: Some("t".into()),
        js_domain: Some("flag".into()),
        ..Default::default()
    };
    let r = combine(&args, &SettingsArgs::default(), file, None).unwrap();
    assert_eq!(r.auth, Auth::Token("t".into()));
    assert_eq!(r.servers, "nats://file:4222");
    assert_eq!(r.js_domain.as_deref(), Some("flag"));
    assert_eq!(r.tls.ca, Some(PathBuf::from("/file/ca.pem")));
}

#[test]
fn context_fills_what_flags_and_file_leave_open() {
    let settings = context::parse(
        r#"{"url":"nats://ctx:4222","creds":"/ctx/u.creds","ca":"/ctx/ca.pem",
            "jetstream_domain":"hub","inbox_prefix":"_X","tls_first":true}"#,
    )
    .unwrap();
    let loaded = LoadedContext {
        name: "prod".into(),
        path: "/cfg/nats/context/prod.json".into(),
        settings,
    };
    let flags = ConnectArgs {
        server: Some("nats://flag:4222".into()),
        ..Default::default()
    };
    let r = from_flags(&flags, Some(loaded.clone())).unwrap();
    assert_eq!(r.servers, "nats://flag:4222");
    assert_eq!(r.auth, Auth::Creds("/ctx/u.creds".into()));
    assert_eq!(r.tls.ca, Some(PathBuf::from("/ctx/ca.pem")));
    assert!(r.tls.first);
    assert_eq!(r.js_domain.as_deref(), Some("hub"));
    assert_eq!(r.inbox_prefix.as_deref(), Some("_X"));
    assert_eq!(r.context.as_ref().map(|c| c.0.as_str()), Some("prod"));
    // Credentials from the flags replace the context's as a whole.
    let flags = ConnectArgs {
        user: Some("a".into()),
        password: Some("b".into()),
        ..Default::default()
    };
    let r = from_flags(&flags, Some(loaded)).unwrap();
    assert_eq!(
        r.auth,
        Auth::UserPassword {
            user: "a".into(),
            password: "b".into()
        }
    );
    assert_eq!(r.servers, "nats://ctx:4222");
}

#[test]
fn client_cert_needs_its_key() {
    let args = ConnectArgs {
        tls_cert: Some("c.pem".into()),
        ..Default::default()
    };
    let err = from_flags(&args, None).unwrap_err();
    assert!(err.to_string().contains("--tls-key"), "{err}");
}

#[test]
fn credentials_in_the_url_belong_to_the_source_that_gave_it() {
    let flags = ConnectArgs {
        server: Some("nats://prov:s3cret@h:4222".into()),
        ..Default::default()
    };
    let r = from_flags(&flags, None).unwrap();
    assert_eq!(
        r.auth,
        Auth::UserPassword {
            user: "prov".into(),
            password: "s3cret".into()
        }
    );
    assert_eq!(r.servers, "nats://prov:***@h:4222");
    assert!(!r.describe_connection().to_string().contains("s3cret"));
    // With other credentials from the same source: refused, without the secret.
    let clash = ConnectArgs {
        token: Some("t".into()),
        ..flags.clone()
    };
    let err = from_flags(&clash, None).unwrap_err();
    assert!(err.to_string().contains("more than one way"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // A URL from the file with a token; the flags' --creds wins as a whole.
    let file: FileConfig = toml::from_str("[connection]\nserver = \"nats://t0k@h:4222\"").unwrap();
    let r = combine(
        &ConnectArgs::default(),
        &SettingsArgs::default(),
        file.clone(),
        None,
    )
    .unwrap();
    assert_eq!(r.auth, Auth::Token("t0k".into()));
    assert_eq!(r.servers, "nats://***@h:4222");
    let creds = ConnectArgs {
        creds: Some("u.creds".into()),
        ..Default::default()
    };
    let r = combine(&creds, &SettingsArgs::default(), file, None).unwrap();
    assert_eq!(r.auth, Auth::Creds("u.creds".into()));
}

#[test]
fn secrets_stay_out_of_descriptions() {
    let auth = Auth::UserPassword {
        user: "prov".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{auth:?}").contains("hunter2"));
    assert!(!Auth::Token("s3cret".into()).describe().contains("s3cret"));
}
