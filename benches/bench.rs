//! `make bench`: the provisioner's hot paths, each measured side by side with a baseline
//! in the same run (see README, section "Benchmark").
//!
//! The program starts its own nats-server(s) (from `NATS_SERVER_BIN` or
//! `.tools/bin/nats-server`, through the test harness in `tests/common`), runs the
//! provisioner as its own process (the release binary, so that its resident memory can
//! be read from `/proc/<pid>/status`) and two trivial echo micro services as other
//! processes (this program, re-executed with `--echo-server`, see `parts/echo.rs`), and
//! measures:
//!
//! | figure | baseline | target |
//! |---|---|---|
//! | warm `lattice` request, sequential p50 | inline echo endpoint, same server | ≤ 1.15× |
//! | warm `lattice` requests/s, 64 in flight | inline echo endpoint | ≥ 0.85× |
//! | echo with a task per request, p50 and requests/s | inline echo endpoint | (information) |
//! | cold lattice (2 buckets), R1, p50 | floor + echo hop | ≤ 1.1× |
//! | cold wadm (8 resources), R1, p50 | floor + echo hop | ≤ 1.1× |
//! | burst: 1,000 concurrent requests, one new lattice | — | 1,000 ok, 2 `STREAM.CREATE` |
//! | 2,000 new lattices back to back, creates/s | bare KV creates, same count | ≥ 0.8× |
//! | service RSS idle / after the 2,000 lattices | — | ≤ 16 / 32 MiB |
//! | cold lattice R3 on a 3-node cluster, p50 | floor + echo hop | ≤ 1.1× |
//! | warm `lattice` through a service import: p50, requests/s | inline echo through the same import | ≤ 1.15×, ≥ 0.85× |
//! | one lattice in each of 200 accounts, total time; service RSS after | the same creates sent by the bench in those accounts | (information) |
//! | `backup` of a 100 MiB bucket, MiB/s | natscli-style client, same snapshot | ≥ 0.9× |
//! | `restore` of a 100 MiB bucket, MiB/s | natscli-style client, same restore | ≥ 0.9× |
//! | `backup` peak RSS, 100 MiB bucket | — | ≤ 32 MiB |
//!
//! Subject and baseline samples alternate (ABAB) so that drift in the machine's load
//! hits both alike. Each cold round measures the *floor* (the same creates sent
//! concurrently by the bench itself, with no service in between) and an *echo hop* (one
//! request to the inline echo: the trip to a service and back that any service adds):
//! floor + hop is what the server itself needs, the cold rows' baseline (a bare create
//! is printed beside it, for context). `STREAM.CREATE` calls are counted from the
//! server's own JetStream API audit advisories (`$JS.EVENT.ADVISORY.API`), which
//! nats-server publishes for every API call of the account when someone listens.
//!
//! The results are printed as a table and written to `target/bench/results.json`; the
//! exit code is 1 when a figure misses its target. This is a benchmark, not a test:
//! under `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

/// Issue 12's rows: tenants in their own accounts.
#[path = "parts/accounts.rs"]
mod accounts_bench;
#[path = "../tests/common/mod.rs"]
mod common;
/// The baselines of the warm rows: echo services answering inline or in a task.
#[path = "parts/echo.rs"]
mod echo;
/// The natscli-style snapshot/restore client of the tests: the floor of the backup rows.
#[path = "../tests/common/natscli_style.rs"]
mod natscli_style;
/// The warm rows.
#[path = "parts/warm.rs"]
mod warm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use common::{NatsCluster, NatsServer};
use wasmcloud_provisioner::catalog;
use wasmcloud_provisioner::settings::Settings;

const PROVISIONER: &str = env!("CARGO_BIN_EXE_wasmcloud-provisioner");
/// The inline echo: the warm rows' baseline and the cold rows' hop.
const ECHO_SUBJECT: &str = "bench.echo";
const LATTICE_SUBJECT: &str = "wasmcloud.provision.lattice";
const WADM_SUBJECT: &str = "wasmcloud.provision.wadm";
const MIB: f64 = 1024.0 * 1024.0;

/// Sample counts, chosen to keep the whole run within a few minutes on 2 cores.
const WARM_PAIRS: usize = 4000;
const RATE_ROUNDS: usize = 4;
const RATE_ROUND: Duration = Duration::from_millis(1500);
const IN_FLIGHT: usize = 64;
const COLD_PAIRS: usize = 150;
const WADM_PAIRS: usize = 40;
const BURST: usize = 1000;
const LATTICES: usize = 2000;
const LATTICE_CHUNK: usize = 200;
const R3_PAIRS: usize = 40;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--echo-server") {
        let (Some(url), Some(mode)) = (
            args.get(i + 1),
            args.get(i + 2).and_then(|m| echo::Mode::from_arg(m)),
        ) else {
            eprintln!("--echo-server needs a NATS URL and inline|task");
            return std::process::ExitCode::FAILURE;
        };
        return echo::run(url, mode);
    }
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "bench: this is a benchmark, not a test; run it with `make bench` \
             (cargo bench --bench bench)"
        );
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the tokio runtime");
    let figures = runtime.block_on(run());
    let failed = report(&figures);
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------------------
// Figures and the report
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Target {
    /// value / baseline at most this.
    RatioAtMost(f64),
    /// value / baseline at least this.
    RatioAtLeast(f64),
    /// value at most this (no baseline).
    AtMost(f64),
    /// value exactly this (no baseline).
    Exactly(f64),
    /// No target: shown for information.
    Info,
}

struct Figure {
    name: String,
    unit: &'static str,
    value: f64,
    baseline_name: &'static str,
    baseline: Option<f64>,
    target: Target,
    /// Extra facts (sample counts, verification), shown under the table.
    note: String,
    /// For a cold figure: the same JetStream creates sent concurrently by the bench itself,
    /// the best any service could do on this server (same unit as `value`).
    floor: Option<f64>,
    /// For a cold figure: a request to the echo service in the same rounds (p50), the trip
    /// to a service and back that any service adds to the floor.
    hop: Option<f64>,
}

impl Figure {
    fn ratio(&self) -> Option<f64> {
        self.baseline.filter(|b| *b > 0.0).map(|b| self.value / b)
    }

    fn pass(&self) -> bool {
        match self.target {
            Target::RatioAtMost(t) => self.ratio().is_some_and(|r| r <= t),
            Target::RatioAtLeast(t) => self.ratio().is_some_and(|r| r >= t),
            Target::AtMost(t) => self.value <= t,
            Target::Exactly(t) => self.value == t,
            Target::Info => true,
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::RatioAtMost(t) => format!("<= {t}x"),
            Target::RatioAtLeast(t) => format!(">= {t}x"),
            Target::AtMost(t) => format!("<= {t} {}", self.unit),
            Target::Exactly(t) => format!("= {t}"),
            Target::Info => "(info)".into(),
        }
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "us" => format!("{v:.0} us"),
        "ms" => format!("{v:.2} ms"),
        "req/s" | "creates/s" => format!("{v:.0} {unit}"),
        "MiB" => format!("{v:.1} MiB"),
        "MiB/s" => format!("{v:.0} MiB/s"),
        _ => format!("{v}"),
    }
}

/// Prints the table, writes `target/bench/results.json`; returns whether a figure failed.
fn report(figures: &[Figure]) -> bool {
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                fmt_value(f.value, f.unit),
                f.baseline
                    .map(|b| format!("{} ({})", fmt_value(b, f.unit), f.baseline_name))
                    .unwrap_or_else(|| "-".into()),
                f.ratio()
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                f.target_text(),
                match (f.target, f.pass()) {
                    (Target::Info, _) => "-",
                    (_, true) => "pass",
                    (_, false) => "FAIL",
                }
                .into(),
            ]
        })
        .collect();
    let header = ["figure", "value", "baseline", "ratio", "target", "result"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut l = String::from("|");
        for (cell, w) in cells.iter().zip(widths) {
            l.push_str(&format!(" {cell:<w$} |"));
        }
        l
    };
    println!();
    println!("{}", line(header));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!(
        "{}",
        line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4], &rule[5]])
    );
    for row in &rows {
        println!(
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
        );
    }
    println!();
    for f in figures.iter().filter(|f| !f.note.is_empty()) {
        println!("  {}: {}", f.name, f.note);
    }

    let json = json!({
        "generated_at_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "nats_server": common::nats_server_version(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "figures": figures.iter().map(|f| json!({
            "figure": f.name,
            "unit": f.unit,
            "value": f.value,
            "baseline": f.baseline,
            "baseline_name": f.baseline_name,
            "ratio": f.ratio(),
            "target": f.target_text(),
            "pass": f.pass(),
            "floor": f.floor,
            "echo_hop": f.hop,
            "note": f.note,
        })).collect::<Vec<_>>(),
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench");
    let path = dir.join("results.json");
    match std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap_or_default()))
    {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("\ncould not write {}: {e}", path.display()),
    }
    let failed = figures.iter().any(|f| !f.pass());
    if failed {
        println!("some figures missed their target");
    }
    failed
}

// ---------------------------------------------------------------------------
// Processes: the provisioner (release binary) and the echo service
// ---------------------------------------------------------------------------

/// A child process killed on drop.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// CPU time (user + system) used so far, from `/proc/<pid>/stat` (clock ticks of
    /// 10 ms, the Linux default `USER_HZ`).
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .unwrap_or_else(|e| panic!("read /proc/{}/stat: {e}", self.pid()));
        // Fields after the command name (which may hold spaces) start at field 3.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory from `/proc/<pid>/status` (VmRSS), in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| panic!("read /proc/{}/status: {e}", self.pid()));
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status", self.pid()));
        kib * 1024.0 / MIB
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Process {
    let file = std::fs::File::create(&log).expect("create process log");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("clone log handle")))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Process { name, child, log }
}

/// The provisioner's release binary, `serve`, with its default logging (info) to a file.
fn start_provisioner(servers: &str, extra: &[&str], log: PathBuf) -> Process {
    if !Path::new(PROVISIONER).is_file() {
        panic!("the provisioner binary {PROVISIONER} is missing");
    }
    let mut command = Command::new(PROVISIONER);
    command
        .arg("serve")
        .arg("--server")
        .arg(servers)
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("NATS_URL");
    // Its default log level (info) unless BENCH_RUST_LOG says otherwise.
    if let Ok(level) = std::env::var("BENCH_RUST_LOG") {
        command.env("RUST_LOG", level);
    }
    spawn("wasmcloud-provisioner", command, log)
}

fn start_echo(url: &str, mode: echo::Mode, log: PathBuf) -> Process {
    start_echo_as(url, mode, None, log)
}

/// An echo service connecting as `user` (name, password).
fn start_echo_as(url: &str, mode: echo::Mode, user: Option<(&str, &str)>, log: PathBuf) -> Process {
    let exe = std::env::current_exe().expect("locate the bench executable");
    let mut command = Command::new(exe);
    command.arg("--echo-server").arg(url).arg(mode.arg());
    if let Some((user, password)) = user {
        command
            .env(echo::USER_ENV, user)
            .env(echo::PASSWORD_ENV, password);
    }
    spawn("echo service", command, log)
}

/// Waits until a micro service answers `$SRV.PING.<name>`.
async fn wait_for_service(client: &async_nats::Client, name: &str, process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        process.check_running();
        let ping = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(format!("$SRV.PING.{name}"), Bytes::new()),
        )
        .await;
        if let Ok(Ok(_)) = ping {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{name} did not answer $SRV.PING within 30 s; log tail:\n{}",
                process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// The reply body of a successful provisioning request, or why it is not one.
fn provision_reply(message: &async_nats::Message) -> Result<Value, String> {
    let body = String::from_utf8_lossy(&message.payload);
    if let Some(headers) = &message.headers {
        if let Some(code) = headers.get(async_nats::service::NATS_SERVICE_ERROR_CODE) {
            return Err(format!("error {code}: {body}"));
        }
    }
    serde_json::from_str(&body).map_err(|e| format!("reply is not JSON ({e}): {body}"))
}

/// One provisioning request that must succeed with every resource in `want`.
async fn provision(client: &async_nats::Client, subject: &str, body: Bytes, want: &[&str]) {
    let message = client
        .request(subject.to_string(), body.clone())
        .await
        .unwrap_or_else(|e| panic!("request {subject} {body:?}: {e}"));
    let reply = provision_reply(&message).unwrap_or_else(|e| panic!("{subject} {body:?}: {e}"));
    let got = actions(&reply);
    if got.is_empty() || !got.iter().all(|a| want.contains(&a.as_str())) {
        panic!("{subject} {body:?}: expected actions in {want:?}, got {got:?}: {reply}");
    }
}

/// A JetStream API call from the bench's own client; panics on an API error.
async fn js_api(client: &async_nats::Client, subject: String, body: Bytes) {
    let message = client
        .request(subject.clone(), body)
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let reply: Value = serde_json::from_slice(&message.payload)
        .unwrap_or_else(|e| panic!("{subject}: reply is not JSON: {e}"));
    if reply.get("error").is_some() {
        panic!("{subject}: {}", reply["error"]);
    }
}

/// A stream's name and its create payload.
type StreamConfig = (String, Bytes);

/// A bare stream create: exactly one `STREAM.CREATE` with a ready config.
async fn bare_create(client: &async_nats::Client, config: &StreamConfig) {
    js_api(
        client,
        format!("$JS.API.STREAM.CREATE.{}", config.0),
        config.1.clone(),
    )
    .await;
}

/// The catalog's KV config for a bucket of lattice `lattice` (what the provisioner would
/// create), as (stream name, create payload).
fn kv_config(lattice: &str, replicas: usize) -> StreamConfig {
    lattice_configs(lattice, replicas).remove(0)
}

/// Both buckets of a lattice, exactly as the provisioner creates them.
fn lattice_configs(lattice: &str, replicas: usize) -> Vec<StreamConfig> {
    let settings = Settings::default().with_replicas(replicas);
    catalog::lattice_resources(lattice, &settings)
        .into_iter()
        .map(|d| {
            let body = serde_json::to_vec(&d.config).expect("serialize a stream config");
            (d.stream, body.into())
        })
        .collect()
}

/// wadm's 8 streams as the provisioner creates them, renamed with `prefix` (names,
/// subjects, sources and their transforms) so they can exist next to wadm's own; in the
/// provisioner's two waves: the 7 independent ones, then the one sourcing from two.
fn wadm_configs(prefix: &str) -> (Vec<StreamConfig>, Vec<StreamConfig>) {
    let renamed = |d: catalog::Desired| {
        let mut c = d.config;
        let name = format!("{prefix}_{}", d.stream);
        c["name"] = json!(name);
        if let Some(subjects) = c["subjects"].as_array_mut() {
            for s in subjects {
                *s = json!(format!("{prefix}.{}", s.as_str().unwrap_or_default()));
            }
        }
        if let Some(sources) = c["sources"].as_array_mut() {
            for source in sources {
                source["name"] = json!(format!(
                    "{prefix}_{}",
                    source["name"].as_str().unwrap_or_default()
                ));
                if let Some(transforms) = source["subject_transforms"].as_array_mut() {
                    for t in transforms {
                        for end in ["src", "dest"] {
                            t[end] =
                                json!(format!("{prefix}.{}", t[end].as_str().unwrap_or_default()));
                        }
                    }
                }
            }
        }
        let body = serde_json::to_vec(&c).expect("serialize a stream config");
        (name, Bytes::from(body))
    };
    let (first, then): (Vec<_>, Vec<_>) = catalog::wadm_resources(false, &Settings::default())
        .into_iter()
        .partition(|d| d.depends_on.is_empty());
    (
        first.into_iter().map(renamed).collect(),
        then.into_iter().map(renamed).collect(),
    )
}

/// The floor of a cold request: the same creates sent by the bench itself, each wave's
/// concurrently, with no service in between.
async fn concurrent_creates(client: &async_nats::Client, waves: &[&[StreamConfig]]) {
    for wave in waves {
        futures::future::join_all(wave.iter().map(|c| bare_create(client, c))).await;
    }
}

async fn delete_streams<'a>(client: &async_nats::Client, names: impl Iterator<Item = &'a String>) {
    for name in names {
        js_api(
            client,
            format!("$JS.API.STREAM.DELETE.{name}"),
            Bytes::new(),
        )
        .await;
    }
}

/// The samples of a cold figure's rounds: per round a bare create (the baseline), the
/// service, the floor (the same creates sent concurrently by the bench itself) and one
/// echo request (the trip to a service and back).
#[derive(Default)]
struct ColdRounds {
    baseline: Vec<Duration>,
    subject: Vec<Duration>,
    floor: Vec<Duration>,
    hop: Vec<Duration>,
}

impl ColdRounds {
    /// The figure (p50s) against what the server itself needs: floor + hop (the p50 of
    /// each); the bare create in the note, for context.
    fn figure(mut self, name: &str, bare_name: &str, rounds: &str) -> Figure {
        let bare = p50(&mut self.baseline);
        let floor = p50(&mut self.floor);
        let hop = p50(&mut self.hop);
        let needed = floor + hop;
        let subject = p50(&mut self.subject);
        Figure {
            name: name.into(),
            unit: "ms",
            value: ms(subject),
            baseline_name: "floor + echo hop",
            baseline: Some(ms(needed)),
            target: Target::RatioAtMost(1.1),
            note: format!(
                "{} rounds ABCD (bare, service, floor, echo){rounds}; floor, the same creates \
                 sent concurrently by the bench itself: p50 {:.2} ms; an inline echo request \
                 in the same rounds (the trip to a service and back): p50 {:.2} ms; {bare_name}: \
                 p50 {:.2} ms (service {:.2}x of it)",
                self.subject.len(),
                ms(floor),
                ms(hop),
                ms(bare),
                subject.as_secs_f64() / bare.as_secs_f64(),
            ),
            floor: Some(ms(floor)),
            hop: Some(ms(hop)),
        }
    }
}

/// Rounds of new lattices at `replicas`: a bare KV create, a lattice through the service,
/// the lattice's two creates sent by the bench, an echo request.
async fn cold_lattice_rounds(
    client: &async_nats::Client,
    rounds: usize,
    replicas: usize,
    tag: &str,
) -> ColdRounds {
    let mut samples = ColdRounds::default();
    for i in 0..rounds {
        let config = kv_config(&format!("bare-{tag}-{i}"), replicas);
        let t = Instant::now();
        bare_create(client, &config).await;
        samples.baseline.push(t.elapsed());
        let body = Bytes::from(format!("{tag}-{i}"));
        let t = Instant::now();
        provision(client, LATTICE_SUBJECT, body, &["created"]).await;
        samples.subject.push(t.elapsed());
        let both = lattice_configs(&format!("floor-{tag}-{i}"), replicas);
        let t = Instant::now();
        concurrent_creates(client, &[&both]).await;
        samples.floor.push(t.elapsed());
        samples.hop.push(echo_hop(client).await);
    }
    samples
}

/// One echo request (the baseline service of the warm figures), timed.
async fn echo_hop(client: &async_nats::Client) -> Duration {
    let t = Instant::now();
    client
        .request(ECHO_SUBJECT, Bytes::from_static(b"hop"))
        .await
        .unwrap_or_else(|e| panic!("echo request: {e}"));
    t.elapsed()
}

/// A plain stream shaped like wadm's event stream, with its own name and subjects.
fn plain_stream_config(i: usize) -> StreamConfig {
    let desired = catalog::row("wadm_events")
        .expect("the catalog has wadm_events")
        .desired("", false, &Settings::default());
    let mut config = desired.config;
    let name = format!("bare_stream_{i}");
    config["name"] = json!(name);
    config["subjects"] = json!([format!("bench.bare.{i}.>")]);
    let body = serde_json::to_vec(&config).expect("serialize a stream config");
    (name, body.into())
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------
// JetStream API calls as the server records them
// ---------------------------------------------------------------------------

use common::actions;
use common::api_audit::ApiAudit;

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// Whether a group of figures runs: all by default, or those named in `BENCH_ONLY`
/// (comma-separated: warm, cold, wadm, burst, many, accounts, backup, r3), for iterating on one of
/// them.
fn selected(group: &str) -> bool {
    match std::env::var("BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|g| g.trim() == group),
        _ => true,
    }
}

async fn run() -> Vec<Figure> {
    // Fail loudly (the harness panics) when nats-server is missing.
    println!("nats-server: {}", common::nats_server_version());
    println!("provisioner: {PROVISIONER}");
    let started = Instant::now();
    let logs = tempfile::Builder::new()
        .prefix("provisioner-bench-")
        .tempdir()
        .expect("create a temp dir");
    // BENCH_LOG_DIR keeps the processes' logs, e.g. to read the service's own per-request
    // durations (`BENCH_RUST_LOG=info` logs every cold request with `duration_us`).
    let log_dir = match std::env::var_os("BENCH_LOG_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("create BENCH_LOG_DIR");
            dir
        }
        None => logs.path().to_path_buf(),
    };
    let mut figures = Vec::new();

    // ---- single server: warm, cold, burst, many lattices, memory ----
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    let mut provisioner = start_provisioner(&url, &[], log_dir.join("provisioner.log"));
    let mut echo = start_echo(&url, echo::Mode::Inline, log_dir.join("echo.log"));
    let mut echo_task = start_echo(&url, echo::Mode::Task, log_dir.join("echo-task.log"));
    wait_for_service(&client, "wasmcloud-provisioner", &mut provisioner).await;
    wait_for_service(&client, echo::Mode::Inline.service(), &mut echo).await;
    wait_for_service(&client, echo::Mode::Task.service(), &mut echo_task).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = provisioner.rss_mib();
    println!(
        "provisioner pid {}, RSS idle {rss_idle:.1} MiB",
        provisioner.pid()
    );

    let elapsed = |what: &str| println!("[{:>5.1?}] {what} done", started.elapsed());
    if selected("warm") {
        figures.extend(warm::figures(&client, &provisioner, &echo, &echo_task).await);
        elapsed("warm figures");
    }
    if selected("cold") {
        figures.push(cold_lattice(&client).await);
        elapsed("cold lattice");
    }
    if selected("wadm") {
        figures.push(cold_wadm(&client).await);
        elapsed("cold wadm");
    }
    if selected("burst") {
        figures.push(burst(&client).await);
        elapsed("burst");
    }
    figures.push(Figure {
        name: "service RSS, idle".into(),
        unit: "MiB",
        value: rss_idle,
        baseline_name: "",
        baseline: None,
        target: Target::AtMost(16.0),
        note: "VmRSS of the release binary after start-up".into(),
        floor: None,
        hop: None,
    });
    if selected("many") {
        figures.push(many_lattices(&client).await);
        elapsed(&format!("{LATTICES} lattices"));
        provisioner.check_running();
        tokio::time::sleep(Duration::from_millis(500)).await;
        figures.push(Figure {
            name: format!("service RSS, after {LATTICES} lattices"),
            unit: "MiB",
            value: provisioner.rss_mib(),
            baseline_name: "",
            baseline: None,
            target: Target::AtMost(32.0),
            note: "VmRSS after every single-server figure above".into(),
            floor: None,
            hop: None,
        });
    }
    provisioner.check_running();
    drop(echo_task);
    drop(echo);
    drop(provisioner);
    drop(client);
    drop(server);
    if selected("accounts") {
        figures.extend(accounts_bench::figures(&log_dir).await);
        elapsed("accounts");
    }
    if selected("backup") {
        figures.extend(backup_figures().await);
        elapsed("backup and restore");
    }
    if !selected("r3") {
        println!("total {:.1?}", started.elapsed());
        return figures;
    }

    // ---- 3-node cluster: cold lattice at R3 ----
    let cluster = NatsCluster::start(3);
    let client = common::connect(&cluster.url(0)).await;
    let mut provisioner = start_provisioner(
        &cluster.client_url_all(),
        &["--replicas", "3"],
        log_dir.join("provisioner-r3.log"),
    );
    // The echo service too, for the trip to a service and back in the same rounds.
    let mut echo = start_echo(
        &cluster.url(0),
        echo::Mode::Inline,
        log_dir.join("echo-r3.log"),
    );
    wait_for_service(&client, "wasmcloud-provisioner", &mut provisioner).await;
    wait_for_service(&client, echo::Mode::Inline.service(), &mut echo).await;
    figures.push(cold_lattice_r3(&client).await);
    println!("[{:>5.1?}] cold R3 done", started.elapsed());
    drop(echo);
    drop(provisioner);
    drop(client);
    drop(cluster);
    println!("total {:.1?}", started.elapsed());
    figures
}

/// A new lattice (2 buckets) vs floor + hop, p50.
async fn cold_lattice(client: &async_nats::Client) -> Figure {
    cold_lattice_rounds(client, COLD_PAIRS, 1, "cold")
        .await
        .figure("cold lattice (2 buckets), R1, p50", "1 bare KV create", "")
}

/// wadm (8 resources) from nothing vs floor + hop, p50. Between samples the
/// bench deletes wadm's streams again (untimed); the provisioner learns of it from the
/// deletion advisories.
async fn cold_wadm(client: &async_nats::Client) -> Figure {
    let streams: Vec<String> = catalog::wadm_resources(false, &Settings::default())
        .into_iter()
        .map(|d| d.stream)
        .collect();
    let mut samples = ColdRounds::default();
    for i in 0..WADM_PAIRS {
        let config = plain_stream_config(i);
        let t = Instant::now();
        bare_create(client, &config).await;
        samples.baseline.push(t.elapsed());
        let t = Instant::now();
        provision(client, WADM_SUBJECT, Bytes::new(), &["created"]).await;
        samples.subject.push(t.elapsed());
        let (first, then) = wadm_configs(&format!("floor{i}"));
        let t = Instant::now();
        concurrent_creates(client, &[&first, &then]).await;
        samples.floor.push(t.elapsed());
        samples.hop.push(echo_hop(client).await);
        let floor_names = then.iter().chain(&first).map(|(name, _)| name);
        delete_streams(
            client,
            streams.iter().rev().chain([&config.0]).chain(floor_names),
        )
        .await;
    }
    samples.figure(
        "cold wadm (8 resources), R1, p50",
        "1 bare stream create",
        ", streams deleted between rounds",
    )
}

/// 1,000 concurrent requests for one new lattice: all succeed, 2 creates in total.
async fn burst(client: &async_nats::Client) -> Figure {
    let audit = ApiAudit::start(client).await;
    let body = Bytes::from_static(b"burst");
    let started = Instant::now();
    let results = futures::future::join_all(
        (0..BURST).map(|_| client.request(LATTICE_SUBJECT, body.clone())),
    )
    .await;
    let took = started.elapsed();
    let mut ok = 0;
    let mut failures = Vec::new();
    for result in results {
        match result
            .map_err(|e| e.to_string())
            .and_then(|m| provision_reply(&m))
        {
            Ok(reply)
                if actions(&reply).len() == 2
                    && actions(&reply)
                        .iter()
                        .all(|a| a == "created" || a == "exists") =>
            {
                ok += 1
            }
            Ok(reply) => failures.push(reply.to_string()),
            Err(e) => failures.push(e),
        }
    }
    let calls = audit.settled().await;
    let ours = |op: &str| {
        let names = ["KV_LATTICEDATA_burst", "KV_CONFIGDATA_burst"];
        calls
            .iter()
            .filter(|s| {
                names
                    .iter()
                    .any(|n| s.as_str() == format!("$JS.API.STREAM.{op}.{n}"))
            })
            .count()
    };
    let creates = ours("CREATE");
    let infos = ours("INFO");
    let mut note = format!(
        "{ok}/{BURST} succeeded in {took:.1?}; server audit: {creates} STREAM.CREATE, \
         {infos} STREAM.INFO, {} API calls in all",
        calls.len()
    );
    if let Some(first) = failures.first() {
        note.push_str(&format!("; first failure: {first}"));
    }
    Figure {
        name: format!("burst: {BURST} requests, 1 new lattice: STREAM.CREATE calls"),
        unit: "calls",
        // A failed request makes the figure fail: count it as an extra create.
        value: creates as f64 + (BURST - ok) as f64,
        baseline_name: "",
        baseline: None,
        target: Target::Exactly(2.0),
        note,
        floor: None,
        hop: None,
    }
}

/// 2,000 new lattices one after another vs the same number of bare KV stream creates,
/// in alternating chunks; compared as streams created per second.
async fn many_lattices(client: &async_nats::Client) -> Figure {
    let mut subject_time = Duration::ZERO;
    let mut baseline_time = Duration::ZERO;
    let mut subject_streams = 0;
    let mut baseline_streams = 0;
    for chunk in 0..LATTICES / LATTICE_CHUNK {
        let configs: Vec<_> = (0..2 * LATTICE_CHUNK)
            .map(|i| kv_config(&format!("bare-many-{chunk}-{i}"), 1))
            .collect();
        let t = Instant::now();
        for config in &configs {
            bare_create(client, config).await;
        }
        baseline_time += t.elapsed();
        baseline_streams += configs.len();
        let bodies: Vec<Bytes> = (0..LATTICE_CHUNK)
            .map(|i| Bytes::from(format!("many-{chunk}-{i}")))
            .collect();
        let t = Instant::now();
        for body in bodies {
            provision(client, LATTICE_SUBJECT, body, &["created"]).await;
        }
        subject_time += t.elapsed();
        subject_streams += 2 * LATTICE_CHUNK;
    }
    Figure {
        name: format!("{LATTICES} new lattices back to back"),
        unit: "creates/s",
        value: subject_streams as f64 / subject_time.as_secs_f64(),
        baseline_name: "bare KV creates",
        baseline: Some(baseline_streams as f64 / baseline_time.as_secs_f64()),
        target: Target::RatioAtLeast(0.8),
        note: format!(
            "{subject_streams} streams through the provisioner in {subject_time:.1?}, \
             {baseline_streams} bare in {baseline_time:.1?}, alternating chunks of \
             {LATTICE_CHUNK} lattices"
        ),
        floor: None,
        hop: None,
    }
}

/// A new lattice at R3 on a 3-node cluster vs floor + hop, p50.
async fn cold_lattice_r3(client: &async_nats::Client) -> Figure {
    // The first R3 creates of a fresh cluster are slower; warm both paths up.
    for i in 0..3 {
        bare_create(client, &kv_config(&format!("bare-r3-warmup-{i}"), 3)).await;
        provision(
            client,
            LATTICE_SUBJECT,
            Bytes::from(format!("r3-warmup-{i}")),
            &["created"],
        )
        .await;
    }
    let samples = cold_lattice_rounds(client, R3_PAIRS, 3, "r3").await;
    // What looking first costs: a STREAM.INFO of a stream that does not exist.
    let mut lookups = Vec::with_capacity(R3_PAIRS);
    for i in 0..R3_PAIRS {
        let t = Instant::now();
        let _ = client
            .request(format!("$JS.API.STREAM.INFO.missing-{i}"), Bytes::new())
            .await;
        lookups.push(t.elapsed());
    }
    let mut figure = samples.figure(
        "cold lattice (2 buckets), R3, 3-node cluster, p50",
        "1 bare R3 KV create",
        "",
    );
    figure.note.push_str(&format!(
        "; a STREAM.INFO of a missing stream (the service looks before it creates in a \
         cluster): p50 {:.2} ms",
        ms(p50(&mut lookups))
    ));
    figure
}

// ---------------------------------------------------------------------------
// Backup and restore
// ---------------------------------------------------------------------------

/// Size of the bucket the backup figures use.
const BACKUP_MIB: usize = 100;
/// Rounds of each (ours, floor), alternating; `BENCH_BACKUP_ROUNDS` sets another number.
fn backup_rounds() -> usize {
    std::env::var("BENCH_BACKUP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5)
}

/// Runs the release binary to completion, sampling its peak resident memory (`VmHWM`,
/// read until the process exits). Returns the wall time and the peak in MiB.
fn run_sampled(args: &[&str]) -> (Duration, f64) {
    let started = Instant::now();
    let mut child = Command::new(PROVISIONER)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NATS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the provisioner");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib: f64 = 0.0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("wait for the provisioner") {
            let elapsed = started.elapsed();
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("wasmcloud-provisioner {args:?} failed ({status}): {err}");
            }
            return (elapsed, peak_kib / 1024.0);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `backup` and `restore` of a bucket holding 100 MiB of incompressible values, each
/// against the natscli-style client doing the same snapshot or restore from inside the
/// bench (no process start, no connect, no look-ups, no fsync: the floor).
async fn backup_figures() -> Vec<Figure> {
    let server = NatsServer::start();
    let url = server.url();
    let client = common::connect(&url).await;
    // LATTICEDATA stays empty (a bucket smaller than one chunk), CONFIGDATA holds the data.
    common::fill_kv_bucket(&client, "CONFIGDATA_bench", BACKUP_MIB).await;
    common::fill_kv_bucket(&client, "LATTICEDATA_bench", 0).await;
    let js = async_nats::jetstream::new(client.clone());
    let streams = ["KV_LATTICEDATA_bench", "KV_CONFIGDATA_bench"];
    let mut bytes: u64 = 0;
    for s in streams {
        let mut stream = js.get_stream(s).await.expect("stream");
        bytes += stream.info().await.expect("info").state.bytes;
    }
    let mib = bytes as f64 / MIB;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ours_backup = Vec::new();
    let mut floor_backup = Vec::new();
    let mut ours_restore = Vec::new();
    let mut floor_restore = Vec::new();
    let mut peaks = Vec::new();
    let names: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    // Ours: the library code the commands run (process start and connect are left out, as
    // for the floor); the binary's own runs give the memory figure and, in the note, its
    // wall-clock rate.
    use wasmcloud_provisioner::backup;
    let api = backup::api::Api::new(client.clone(), None, Duration::from_secs(10));
    let selection = backup::selection(&["bench".to_string()], false, false).expect("selection");
    let options = backup::BackupOptions {
        idle: Duration::from_secs(30),
        json: true,
    };
    let restore_options = backup::RestoreOptions {
        dry_run: false,
        replicas: None,
        skip_existing: false,
        json: true,
    };
    let mut binary = Vec::new();
    let backup_rounds = backup_rounds();
    for round in 0..backup_rounds {
        let ours = dir.path().join(format!("ours-{round}"));
        let t = Instant::now();
        backup::backup(&api, &selection, &ours, &options)
            .await
            .expect("backup");
        ours_backup.push(mib / t.elapsed().as_secs_f64());
        let theirs = dir.path().join(format!("theirs-{round}"));
        let t = Instant::now();
        for s in streams {
            natscli_style::backup(&client, "$JS.API", s, &theirs.join(s)).await;
        }
        floor_backup.push(mib / t.elapsed().as_secs_f64());

        delete_streams(&client, names.iter()).await;
        let t = Instant::now();
        let folder = backup::manifest::read_folder(&ours).expect("read folder");
        backup::restore(&api, &folder, &restore_options, &mut |_, _| {})
            .await
            .expect("restore");
        ours_restore.push(mib / t.elapsed().as_secs_f64());
        delete_streams(&client, names.iter()).await;
        let t = Instant::now();
        for s in streams {
            natscli_style::restore(&client, "$JS.API", &theirs.join(s)).await;
        }
        floor_restore.push(mib / t.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&ours);
        let _ = std::fs::remove_dir_all(&theirs);

        // The release binary, for its resident memory.
        let out = dir.path().join(format!("binary-{round}"));
        let (took, peak) = run_sampled(&[
            "--server",
            &url,
            "backup",
            "--lattice",
            "bench",
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        binary.push(mib / took.as_secs_f64());
        peaks.push(peak);
        let _ = std::fs::remove_dir_all(&out);
    }
    let peak = peaks.iter().cloned().fold(0.0, f64::max);
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let note = |ours: &[f64], floor: &[f64]| {
        format!(
            "{mib:.0} MiB in 2 streams, median of {backup_rounds} alternating rounds; ours \
             (look-ups, checksums, fsync included) {} MiB/s, floor {} MiB/s",
            rounds(ours),
            rounds(floor)
        )
    };
    let figures = vec![
        Figure {
            name: format!("backup, {BACKUP_MIB} MiB bucket"),
            unit: "MiB/s",
            note: note(&ours_backup, &floor_backup),
            value: median(&mut ours_backup),
            baseline_name: "natscli-style client",
            baseline: Some(median(&mut floor_backup)),
            target: Target::RatioAtLeast(0.9),
            floor: None,
            hop: None,
        },
        Figure {
            name: format!("restore, {BACKUP_MIB} MiB bucket"),
            unit: "MiB/s",
            note: note(&ours_restore, &floor_restore),
            value: median(&mut ours_restore),
            baseline_name: "natscli-style client",
            baseline: Some(median(&mut floor_restore)),
            target: Target::RatioAtLeast(0.9),
            floor: None,
            hop: None,
        },
        Figure {
            name: format!("backup peak RSS, {BACKUP_MIB} MiB bucket"),
            unit: "MiB",
            value: peak,
            baseline_name: "",
            baseline: None,
            target: Target::AtMost(32.0),
            note: format!(
                "VmHWM of the release binary's backup, highest of {backup_rounds} runs: {} \
                 MiB; its wall-clock rate (process start and connect included) {} MiB/s",
                peaks
                    .iter()
                    .map(|p| format!("{p:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rounds(&binary)
            ),
            floor: None,
            hop: None,
        },
    ];
    drop(client);
    drop(server);
    figures
}
