//! Every name on the wire the service answers on, publishes to or reads: subjects,
//! prefixes and header names, with the limits on what a header may carry.
//!
//! A leaf module (it imports nothing of the crate), so that the endpoints, the
//! permission templates, the audit trail, the account routing and the clients all take
//! a subject from one place without importing each other: a template that grants a
//! subject and the code that uses it cannot drift apart.

/// Service name in `$SRV` discovery (`nats micro info wasmcloud-provisioner`).
pub const SERVICE_NAME: &str = "wasmcloud-provisioner";

/// Prefix of every endpoint subject: `wasmcloud.provision.<endpoint>[.<lattice>]`.
pub const SUBJECT_PREFIX: &str = "wasmcloud.provision";

/// Subjects of audit events: `<prefix>.created`, `<prefix>.updated`, ….
pub const EVENTS_PREFIX: &str = "wasmcloud.provision.events";

/// The subject a shutdown's witness publishes its markers to: `<this>.<id>` (see
/// `witness`). Under the service's prefix, so the provisioner's own permissions cover it.
pub const DRAIN_MARKER_PREFIX: &str = "wasmcloud.provision._drain";

/// JetStream's advisories that invalidate what the service knows about a stream.
pub const STREAM_ADVISORIES: [&str; 2] = [
    "$JS.EVENT.ADVISORY.STREAM.DELETED.*",
    "$JS.EVENT.ADVISORY.STREAM.UPDATED.*",
];

/// Answers which account a connection is in (any user may ask, if its permissions allow).
pub const USER_INFO_SUBJECT: &str = "$SYS.REQ.USER.INFO";

/// Prefix of the reply subjects the server makes for a service import's responses.
pub const IMPORT_REPLY_PREFIX: &str = "_R_.";

/// The header nats-server sets on a request that crossed a service import.
pub const REQUEST_INFO_HEADER: &str = "Nats-Request-Info";

/// The longest `Nats-Request-Info` value that is parsed. nats-server's own (a client's
/// account, user, connection name, server, tags and its user JWT, which is dropped) stays
/// well under it; a larger one was sent by a client, is not parsed (which would cost memory
/// in proportion) and is recorded as `{"truncated": true}`.
pub const MAX_REQUEST_INFO_BYTES: usize = 16 * 1024;

/// Header carrying the host's signature of the request body (base64url, no padding).
pub const SIGNATURE_HEADER: &str = "Wasmcloud-Host-Signature";

/// An Ed25519 signature is 64 bytes, 86 characters of base64url; a longer value cannot
/// verify, and is kept only this far (it then fails as any wrong signature does).
pub const MAX_SIGNATURE_BYTES: usize = 128;

/// The host bootstrap endpoint; `<this>.<lattice>` is its scoped form, the one a host's
/// permissions name.
pub const HOST_SUBJECT: &str = "wasmcloud.provision.host";

/// The lattice endpoint; `<this>.<lattice>` is its scoped form.
pub const LATTICE_SUBJECT: &str = "wasmcloud.provision.lattice";

/// The wadm endpoint.
pub const WADM_SUBJECT: &str = "wasmcloud.provision.wadm";
