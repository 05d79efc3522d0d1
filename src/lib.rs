//! # wasmcloud-provisioner
//!
//! wasmCloud hosts (1.9.x) and wadm (0.21.x) create their JetStream KV buckets and streams
//! at first start, which means every host and every wadm needs the power to create and
//! overwrite JetStream resources. This crate holds that power in one place instead: a
//! service on `wasmcloud.provision.>` (NATS Services API, ADR-32) that creates exactly
//! those resources on request, so hosts and wadm can run with least-privilege accounts.
//!
//! ## Architecture
//!
//! ```text
//!   request bytes ──► request.rs (size, UTF-8, JSON schema, name rules): every request
//!                        │   type (HostRequest too)                                 ── 400
//!   endpoints/<name>.rs  ▼  prepare (parse, authorize) → warm answer or run → reply
//!                        │   host.rs checks the host with host_auth.rs (keys, signatures)
//!                        │   endpoints/warm.rs: the warm path's one door (can this request
//!                        │   be answered warm, with which bytes; WarmReplies keeps them)
//!                     provisioner.rs (targets → desired resources; policy.rs's lattice rules)
//!                        │      ▲
//!   catalog/ ────────────┘      │ one table (rows.rs): names, a Shape per row that also
//!                               │ says KV or stream, exact configs (builders.rs), the
//!                               │ drift table (fields.rs → checks.rs), who needs what
//!                               │ (access.rs), the backup set; README tables (readme.rs)
//!                     known.rs: verdicts (KnownStreams) → a warm answer, no JetStream call
//!                        │
//!                     reconcile.rs: the executor. plan: observe all → Plan. apply: per
//!                        │   resource observe (or create first on a single server) →
//!                        │   PlanItem → execute; single flight; re-plan after a 10058
//!                     plan.rs: Plan, PlanItem, Step, Finding; plan(desired, observed), pure
//!                        │   (with the outcomes every layer speaks: Action, ResourceReport)
//!                     jsapi.rs: STREAM.INFO / CREATE / UPDATE as raw JSON; no delete
//!   reply.rs: the typed reply bodies (ProvisionReply, HostReply) the endpoints write and
//!             clients read; error.rs: ProvisionError → ADR-32 code + JSON body, carrying
//!             the typed outcome of a failed request (what metrics count)
//!   client.rs: the other side (host bootstrap request, signed; reading a reply)
//!   runtime.rs: assembles what `serve` runs (two connections, audit, policy); main and
//!               the tests both start the service through it
//!   service/: micro registration, the receive loop and the drain of its own connection
//!             (mod.rs); one request answered warm in the loop or in a task of its own
//!             (answer.rs); which account serves it (shared.rs); where replies go, ADR-32
//!             errors (reply_route.rs). headers.rs: a request keeps only the headers it reads
//!   witness.rs: at shutdown, a copy of every request until the endpoints have stopped
//!   advisories.rs: stream deleted/updated advisories invalidate the cache
//!   accounts/: requests from tenant accounts (Nats-Request-Info) go to a provisioner
//!              connected in that account (connect.rs opens it; config/accounts.rs
//!              reads its table; renewal.rs: when a minted user is renewed); wiring.rs:
//!              the exports and imports between accounts, ours and wasmCloud's multitenant
//!   subjects.rs: every subject, prefix and header name on the wire (a leaf)
//!
//!   Layering of the CLI side (a module imports only those left of it):
//!   subjects, config_error, clock, context, server_url → permissions → creds →
//!   config → accounts → cli
//!   metrics.rs: $SRV.STATS data; audit.rs: every change → wasmcloud.provision.events.*
//!   origin.rs: who asked (the request or command behind a change), for the audit trail;
//!   clock.rs: Unix time for bookkeeping
//!   config/: flags > env > TOML file (file.rs, accounts.rs: `[accounts.X]`) > natscli
//!            context (context.rs), combined in combine.rs; auth.rs: one method per
//!            source; connect.rs: TLS, auth, and a failed connect explained
//!   server_url.rs: credentials in server URLs, and the one redaction of them
//!   config_error.rs: ConfigError, the typed error of the CLI side (settings, files,
//!                    credentials, connection); its message names the next step
//!   creds/: user JWTs (jwt.rs) and .creds files (file.rs) for operator mode
//!   cli/: the one-shot commands' bodies (`apply`/`plan`, `permissions`, `creds`,
//!         `config check`); main.rs only parses and dispatches; report.rs: the tables
//!   bootstrap.rs: `bootstrap host|wadm|operator`, client.rs with retries (init
//!                 containers, ExecStartPre); ping.rs: `ping`, a per-instance liveness check
//!   permissions/: host (direct or via a leaf) / wadm / provisioner / operator / backup
//!                 templates, derived from the catalog (builder.rs) and subjects.rs,
//!                 per role (roles.rs), rendered as conf, JSON or nsc lines (render.rs)
//!   policy.rs: --allow-lattice, --max-lattices (checked in provisioner.rs); host_auth.rs:
//!              host signing, trusted host keys
//!   names.rs: lattice names reserved because `<lattice>.>` would capture others' subjects,
//!             and the lattice globs
//!   backup/: `backup`/`restore` over JetStream's snapshot API (raw requests), natscli's
//!            folder layout + a checksummed manifest; the set comes from the catalog, and
//!            restore takes back only catalog streams with configs `plan` accepts (vet.rs)
//!   admission.rs: --max-lattices across instances (a KV compare-and-set reservation)
//!   settings.rs: the operator's choices (replicas, storage, size, placement) and the
//!                size floors; below the catalog, which applies them
//! ```
//!
//! Rules the code keeps:
//! - the catalog is the single source of truth; nothing else knows a resource's settings;
//! - never delete, purge or recreate; an update starts from the stream's current config
//!   and changes only `num_replicas`;
//! - a resource that would break an app is reported (drift), never "fixed" silently;
//! - bad input is refused before anything touches JetStream.

// Issue 11: no function over 80 lines (threshold in clippy.toml); `make lint` denies it.
#![warn(clippy::too_many_lines)]

pub mod accounts;
pub mod admission;
pub mod advisories;
pub mod audit;
pub mod backup;
pub mod bootstrap;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod config_error;
pub mod context;
pub mod creds;
pub mod endpoints;
pub mod error;
pub mod headers;
pub mod host_auth;
pub mod jsapi;
pub mod known;
pub mod metrics;
pub mod names;
pub mod origin;
pub mod permissions;
pub mod ping;
pub mod plan;
pub mod policy;
pub mod provisioner;
pub mod reconcile;
pub mod reply;
pub mod report;
pub mod request;
pub mod runtime;
pub mod server_url;
pub mod service;
pub mod settings;
pub mod subjects;
pub mod witness;
