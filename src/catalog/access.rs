//! Who needs what: the permissions a role needs on a resource ([`Access`], one list per
//! row), and the subjects each app uses beside its resources ([`MESSAGING`]). The
//! permission templates (`permissions.rs`) are made from these and nothing else.

use super::App;

/// A permission a role needs on a resource once it exists; permission templates are
/// derived from these (see `permissions.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `$JS.API.STREAM.INFO.<stream>`: both apps look a resource up before binding it.
    Info,
    /// KV reads by direct get and writes/purges on `$KV.<bucket>.>`, watches through
    /// unnamed ordered consumers (the host).
    KvReadWriteWatch,
    /// KV reads by direct get and writes on `$KV.<bucket>.>`, no watches (wadm).
    KvReadWrite,
    /// Named durable pull consumers plus LIST/INFO/NEXT/ACK (wadm's work queues).
    DurablePull,
    /// Unnamed ephemeral pull consumers plus NEXT/ACK (wadm's notify stream).
    EphemeralPull,
    /// Direct get and STREAM.MSG.GET reads (wadm status).
    DirectRead,
    /// Core publishes on the stream's own subjects (wadm's commands, events, status and
    /// notifications are published into its streams).
    Publish,
    /// Core subscriptions on the stream's own subjects (wadm also listens to host events
    /// live, besides consuming them from `wadm_event_consumer`).
    Subscribe,
    /// One named durable pull consumer per lattice (`{lattice}` in `consumer`), bound or
    /// created with async-nats `get_or_create_consumer`: CONSUMER.INFO, then on a 404
    /// `CONSUMER.CREATE.<stream>.<name>.<filter>`; then MSG.NEXT and acks. No LIST, no
    /// ephemeral consumers (the operator).
    NamedPull { consumer: &'static str },
}

/// Subjects an app uses for its own messaging, outside the resources above: control and
/// RPC traffic, host events. Together with each row's [`Access`] they make the apps'
/// permission templates; `{lattice}` is replaced per lattice. These are the lists proven
/// with host 1.9.2 and wadm 0.21.1 (`shared/spec/permissions.md`).
#[derive(Debug, Clone, Copy)]
pub struct Messaging {
    pub app: App,
    /// Core publishes.
    pub publish: &'static [&'static str],
    /// Core subscriptions.
    pub subscribe: &'static [&'static str],
}

pub static MESSAGING: &[Messaging] = &[
    Messaging {
        app: App::Host,
        // Events and heartbeats; link notifications to providers; wRPC calls.
        publish: &[
            "wasmbus.evt.{lattice}.>",
            "wasmbus.rpc.{lattice}.>",
            "{lattice}.>",
        ],
        // The control interface; wRPC serving.
        subscribe: &["wasmbus.ctl.v1.{lattice}.>", "{lattice}.>"],
    },
    Messaging {
        app: App::Wadm,
        // wadm drives hosts of every lattice through their control interface.
        publish: &["wasmbus.ctl.v1.*.>"],
        // wadm's own API.
        subscribe: &["wadm.api.>"],
    },
    Messaging {
        app: App::Operator,
        // The six wadm API calls the operator makes (wadm-client 0.2: list, get, status,
        // put + deploy, delete), named exactly rather than `wadm.api.{lattice}.>`: the
        // operator never undeploys or lists versions, and in the platform chart its user is
        // also the hosts' leaf link, which anything reaching a host pod may use.
        publish: &[
            "wadm.api.{lattice}.model.list",
            "wadm.api.{lattice}.model.get.*",
            "wadm.api.{lattice}.model.status.*",
            "wadm.api.{lattice}.model.put",
            "wadm.api.{lattice}.model.deploy.*",
            "wadm.api.{lattice}.model.del.*",
        ],
        // Only replies, on `_INBOX.>`.
        subscribe: &[],
    },
];

/// Streams an app looks up (`STREAM.INFO`) but that are never created: wadm 0.21 checks for
/// its legacy mirrors at start to migrate from them, and without the permission logs a
/// violation and waits 5 s.
pub static LOOKED_UP_ONLY: &[(App, &str)] = &[
    (App::Wadm, "wadm_mirror"),
    (App::Wadm, "wadm_multitenant_mirror"),
];
