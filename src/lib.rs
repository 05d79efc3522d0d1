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
//!   request bytes ──► request.rs (size, UTF-8, JSON schema, name rules)    ── 400
//!                        │
//!   endpoints/<name>.rs  ▼  prepare (parse, authorize) → warm answer or run → reply
//!                        │   WarmReplies: a warm reply's bytes, kept while its verdicts hold
//!                     provisioner.rs (targets → desired resources)
//!                        │      ▲
//!   catalog.rs ──────────┘      │ one table: names, exact configs, must-hold checks,
//!                               │ who needs what (permissions derive from it)
//!                     reconcile.rs: observe (STREAM.INFO) → PlanItem → apply
//!                        │   warm cache (KnownStreams) + single-flight creates
//!                     jsapi.rs: STREAM.INFO / CREATE / UPDATE as raw JSON; no delete
//!   runtime.rs: assembles what `serve` runs (two connections, audit, policy); main and
//!               the tests both start the service through it
//!   service.rs: micro registration, a task per request, drain of its own connection,
//!               ADR-32 errors; headers.rs: a request keeps only the headers it reads
//!   witness.rs: at shutdown, a copy of every request until the endpoints have stopped
//!   advisories.rs: stream deleted/updated advisories invalidate the cache
//!   accounts/: requests from tenant accounts (Nats-Request-Info) go to a provisioner
//!              connected in that account (connect.rs opens it; config/accounts.rs
//!              reads its table)
//!
//!   Layering of the CLI side (a module imports only those left of it):
//!   subjects, config_error, clock, context, server_url → permissions → creds →
//!   config → accounts → cli
//!   metrics.rs: $SRV.STATS data; audit.rs: every change → wasmcloud.provision.events.*
//!   config/: flags > env > TOML file (file.rs, accounts.rs: `[accounts.X]`) > natscli
//!            context (context.rs), combined in combine.rs; auth.rs: one method per
//!            source; connect.rs: TLS, auth, and a failed connect explained
//!   server_url.rs: credentials in server URLs, and the one redaction of them
//!   config_error.rs: ConfigError, the typed error of the CLI side (settings, files,
//!                    credentials, connection); its message names the next step
//!   creds/: user JWTs (jwt.rs) and .creds files (file.rs) for operator mode
//!   cli/: the one-shot commands' bodies (`apply`/`plan`, `permissions`, `creds`,
//!         `config check`); main.rs only parses and dispatches; report.rs: the tables
//!   bootstrap.rs: `bootstrap host|wadm|operator`, the client side with retries (init
//!                 containers, ExecStartPre); ping.rs: `ping`, a per-instance liveness check
//!   permissions/: host (direct or via a leaf) / wadm / provisioner / operator / backup
//!                 templates, derived from the catalog (builder.rs) and subjects.rs,
//!                 per role (roles.rs), rendered as conf, JSON or nsc lines (render.rs)
//!   policy.rs: --allow-lattice, --max-lattices (checked in provisioner.rs), host signing
//!   names.rs: lattice names reserved because `<lattice>.>` would capture others' subjects
//!   backup/: `backup`/`restore` over JetStream's snapshot API (raw requests), natscli's
//!            folder layout + a checksummed manifest; the set comes from the catalog, and
//!            restore takes back only catalog streams with configs `plan` accepts (vet.rs)
//!   admission.rs: --max-lattices across instances (a KV compare-and-set reservation)
//! ```
//!
//! Rules the code keeps:
//! - the catalog is the single source of truth; nothing else knows a resource's settings;
//! - never delete, purge or recreate; an update starts from the stream's current config
//!   and changes only `num_replicas`;
//! - a resource that would break an app is reported (drift), never "fixed" silently;
//! - bad input is refused before anything touches JetStream.

pub mod accounts;
pub mod admission;
pub mod advisories;
pub mod audit;
pub mod backup;
pub mod bootstrap;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_error;
pub mod context;
pub mod creds;
pub mod endpoints;
pub mod error;
pub mod headers;
pub mod jsapi;
pub mod metrics;
pub mod names;
pub mod permissions;
pub mod ping;
pub mod policy;
pub mod provisioner;
pub mod reconcile;
pub mod report;
pub mod request;
pub mod runtime;
pub mod server_url;
pub mod service;
pub mod settings;
pub mod subjects;
pub mod witness;
