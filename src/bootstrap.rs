//! `wasmcloud-provisioner bootstrap host|wadm|operator`: one command for an init container
//! or an `ExecStartPre=` line. It sends the same request a host, wadm or the operator would
//! send to the service, and **waits** for the provisioner: in a cluster that starts all at
//! once, the app's pod may come up before NATS accepts connections or before any
//! provisioner instance has subscribed, and an init container that fails at once only adds
//! a CrashLoopBackOff delay on top.
//!
//! What is retried (capped exponential backoff with jitter, until `--timeout`): a
//! connection that cannot be made yet, no responders (no provisioner subscribed), a request
//! that times out, and any 5xx reply (503: JetStream unavailable or without quorum). What is
//! not: a 4xx reply (400 bad request, 403 forbidden, 409 drift, 429 too many lattices), since
//! asking again gets the same answer; the command exits 1 at once with the service's
//! message. On success every resource the request names exists and the command exits 0.
//!
//! The host form sends exactly what [`client::signed_request`] builds (the scoped subject,
//! the body signed with the host's key); the operator form sends the lattice request and
//! the `wadm` request with `{"operator": "<version>"}`, which needs a provisioner that knows
//! the operator's stream.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use serde_json::{json, Value};

use crate::catalog::Operator;
use crate::client::{self, classify, summary, Outcome};
use crate::config::{self, Resolved};
use crate::endpoints::{lattice, wadm};
use crate::request;

/// Longest wait for one answer: a busy provisioner creating R3 streams answers well
/// within it, and a dead one is noticed without waiting out the whole `--timeout`.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause between attempts; doubled after each until [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest pause between attempts: a provisioner that comes up is found within seconds.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// `bootstrap`'s forms.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BootstrapCommand {
    /// A host's bootstrap: ensures the lattice's buckets, as the host's first start needs.
    ///
    /// Example: wasmcloud-provisioner bootstrap host --lattice default --host-seed host.nk
    Host {
        /// The lattice the host joins
        #[arg(long, short = 'l')]
        lattice: String,
        /// File with the host's server nkey seed (SN…): the request is signed with it and
        /// names its public key as host_id [default: a fresh key for this request]
        #[arg(long)]
        host_seed: Option<PathBuf>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// wadm's buckets and streams.
    ///
    /// Example: wasmcloud-provisioner bootstrap wadm --multitenant
    Wadm {
        /// wadm runs with --multitenant
        #[arg(long)]
        multitenant: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// The wasmcloud-operator's stream (with wadm's resources) and the lattice its hosts
    /// join. Needs a provisioner that accepts `{"operator": …}` on the wadm request.
    ///
    /// Example: wasmcloud-provisioner bootstrap operator --lattice default --operator 0.4
    Operator {
        /// The lattice of the operator's hosts
        #[arg(long, short = 'l')]
        lattice: String,
        /// The operator's version line: its stream's name depends on it (0.4:
        /// wasmcloud-operator 0.4.x and 0.5.0; 0.5: wadm-operator from 0.5.1)
        #[arg(long, value_enum)]
        operator: Operator,
        /// wadm runs with --multitenant
        #[arg(long)]
        multitenant: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// The longest `--timeout`: a deadline must stay a time the clock can represent (an
/// `Instant` plus `u64::MAX` seconds panicked), and an init container waiting longer
/// than a week is waiting for something that will not come. 0 would give up before the
/// first attempt.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// How long to wait and what to print.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Give up after this many seconds (connecting and every request included); 1 to
    /// 604800 (a week)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub timeout: u64,
    /// Print the service's reply as JSON
    #[arg(long)]
    pub json: bool,
}

/// One request to make until it succeeds.
#[derive(Debug)]
enum Step {
    Host {
        key: Box<nkeys::KeyPair>,
        lattice: String,
    },
    Lattice(String),
    Wadm {
        multitenant: bool,
        operator: Option<Operator>,
    },
}

impl Step {
    /// A short name for the JSON output of a form with several steps.
    fn label(&self) -> &'static str {
        match self {
            Step::Host { .. } => "host",
            Step::Lattice(_) => "lattice",
            Step::Wadm { .. } => "wadm",
        }
    }

    /// Where the request goes.
    fn subject(&self) -> String {
        match self {
            Step::Host { lattice, .. } => client::host_subject(lattice),
            Step::Lattice(l) => format!("{}.{l}", lattice::SPEC.subject),
            Step::Wadm { .. } => wadm::SPEC.subject.to_string(),
        }
    }

    /// Subject, headers and body. Built anew for every attempt, so that a signed host
    /// request carries a fresh `issued_at` however long the wait was.
    fn message(&self) -> Result<(String, HeaderMap, Vec<u8>), String> {
        match self {
            Step::Host { key, lattice } => client::signed_request(key, lattice, None),
            Step::Lattice(_) => Ok((self.subject(), HeaderMap::new(), Vec::new())),
            Step::Wadm {
                multitenant,
                operator,
            } => {
                let mut body = json!({ "multitenant": multitenant });
                if let Some(v) = operator {
                    body["operator"] = json!(v.as_str());
                }
                Ok((
                    self.subject(),
                    HeaderMap::new(),
                    body.to_string().into_bytes(),
                ))
            }
        }
    }
}

/// Capped exponential backoff with jitter: each pause is between half and all of the
/// current step, so that many init containers started together do not retry in lockstep.
#[derive(Debug)]
struct Backoff {
    step: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { step: FIRST_DELAY }
    }

    fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(MAX_DELAY);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Runs a `bootstrap` form: exit code 0 once everything exists, an error message otherwise.
pub async fn run(resolved: &Resolved, command: BootstrapCommand) -> Result<u8, String> {
    let (steps, wait) = steps(command)?;
    let missing = resolved.missing_files();
    if !missing.is_empty() {
        return Err(missing.join("; "));
    }
    let deadline = Instant::now() + Duration::from_secs(wait.timeout);
    let mut backoff = Backoff::new();
    let client = connect(resolved, deadline, wait.timeout, &mut backoff).await?;
    let mut replies = Vec::new();
    for step in &steps {
        let started = Instant::now();
        let (reply, attempts) = until_done(
            &client,
            resolved,
            step,
            deadline,
            wait.timeout,
            &mut backoff,
        )
        .await?;
        if !wait.json {
            println!(
                "{}: {} after {attempts} attempt{} in {:.1} s",
                step.subject(),
                summary(&reply),
                if attempts == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
        }
        replies.push((step.label(), reply));
    }
    let _ = client.flush().await;
    if wait.json {
        let out = if replies.len() == 1 {
            replies.remove(0).1
        } else {
            Value::Object(
                replies
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        };
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(0)
}

/// The requests of a form, checked before anything is sent.
fn steps(command: BootstrapCommand) -> Result<(Vec<Step>, WaitArgs), String> {
    Ok(match command {
        BootstrapCommand::Host {
            lattice,
            host_seed,
            wait,
        } => {
            request::validate_lattice(&lattice).map_err(|e| e.message)?;
            let key = match host_seed {
                Some(path) => read_host_seed(&path)?,
                None => nkeys::KeyPair::new_server(),
            };
            let key = Box::new(key);
            (vec![Step::Host { key, lattice }], wait)
        }
        BootstrapCommand::Wadm { multitenant, wait } => (
            vec![Step::Wadm {
                multitenant,
                operator: None,
            }],
            wait,
        ),
        BootstrapCommand::Operator {
            lattice,
            operator,
            multitenant,
            wait,
        } => {
            request::validate_lattice(&lattice).map_err(|e| e.message)?;
            (
                vec![
                    Step::Lattice(lattice),
                    Step::Wadm {
                        multitenant,
                        operator: Some(operator),
                    },
                ],
                wait,
            )
        }
    })
}

/// Reads a host's server seed (`SN…`) from a file.
fn read_host_seed(path: &std::path::Path) -> Result<nkeys::KeyPair, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read host seed file {}: {e}", path.display()))?;
    let key = nkeys::KeyPair::from_seed(text.trim()).map_err(|e| {
        format!(
            "host seed file {} does not hold an nkey seed ({e}): it must hold the host's \
             server seed, one line starting with SN",
            path.display()
        )
    })?;
    if key.key_pair_type() != nkeys::KeyPairType::Server {
        return Err(format!(
            "host seed file {} holds a {:?} seed; a host's key is a server key (SN…)",
            path.display(),
            key.key_pair_type()
        ));
    }
    Ok(key)
}

/// Connects, retrying until `deadline`: NATS may not accept connections yet.
async fn connect(
    resolved: &Resolved,
    deadline: Instant,
    timeout: u64,
    backoff: &mut Backoff,
) -> Result<async_nats::Client, String> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(
            left,
            config::connect(resolved, "wasmcloud-provisioner-bootstrap", None),
        )
        .await;
        let why = match result {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("could not connect to {} in time", resolved.servers),
        };
        if !pause(backoff, deadline, &why, attempts).await {
            return Err(format!(
                "gave up after {timeout} s and {attempts} attempts: {why} (raise --timeout if \
                 NATS takes longer to start)"
            ));
        }
    }
}

/// Sends one step's request until it succeeds, fails for good, or `deadline` passes.
async fn until_done(
    client: &async_nats::Client,
    resolved: &Resolved,
    step: &Step,
    deadline: Instant,
    timeout: u64,
    backoff: &mut Backoff,
) -> Result<(Value, u32), String> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (subject, headers, body) = step.message()?;
        let left = deadline.saturating_duration_since(Instant::now());
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(body.into())
            .timeout(Some(
                left.min(ATTEMPT_TIMEOUT).max(Duration::from_millis(100)),
            ));
        let outcome = classify(
            &subject,
            client.send_request(subject.clone(), request).await,
        );
        let why = match outcome {
            Outcome::Done(reply) => return Ok((reply, attempts)),
            Outcome::Fatal(message) => return Err(message),
            Outcome::Retry(why) => why,
        };
        if !pause(backoff, deadline, &why, attempts).await {
            return Err(format!(
                "gave up after {timeout} s and {attempts} attempts on {subject} at {}: {why}. \
                 Check that the provisioner runs (`wasmcloud-provisioner serve`) against these \
                 servers and that this user may publish to {subject}, or raise --timeout",
                resolved.servers
            ));
        }
    }
}

/// Sleeps before the next attempt, or returns false once `deadline` has passed.
///
/// A pause never reaches past the deadline: the last attempt is made at the deadline, so
/// `--timeout N` really waits N seconds (giving up early because the next backoff step
/// would not fit made "gave up after N s" untrue by up to one step).
async fn pause(backoff: &mut Backoff, deadline: Instant, why: &str, attempts: u32) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let delay = backoff.next_delay().min(left);
    eprintln!(
        "waiting for the provisioner (attempt {attempts}): {why}; next attempt in {:.1} s",
        delay.as_secs_f64()
    );
    tokio::time::sleep(delay).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_auth;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_below_each_step() {
        let mut b = Backoff::new();
        let mut step = FIRST_DELAY;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(MAX_DELAY);
        }
        assert_eq!(b.step, MAX_DELAY);
    }

    #[test]
    fn operator_form_asks_for_the_lattice_then_wadm_with_the_operator() {
        let (steps, wait) = steps(BootstrapCommand::Operator {
            lattice: "default".into(),
            operator: Operator::V0_4,
            multitenant: false,
            wait: WaitArgs {
                timeout: 60,
                json: false,
            },
        })
        .unwrap();
        assert_eq!(wait.timeout, 60);
        let messages: Vec<_> = steps.iter().map(|s| s.message().unwrap()).collect();
        assert_eq!(messages[0].0, "wasmcloud.provision.lattice.default");
        assert_eq!(messages[1].0, "wasmcloud.provision.wadm");
        for (step, message) in steps.iter().zip(&messages) {
            assert_eq!(step.subject(), message.0);
        }
        let body: Value = serde_json::from_slice(&messages[1].2).unwrap();
        assert_eq!(body, json!({"multitenant": false, "operator": "0.4"}));
    }

    #[test]
    fn bad_lattices_and_seeds_are_refused_before_sending() {
        let wait = WaitArgs {
            timeout: 1,
            json: false,
        };
        let err = steps(BootstrapCommand::Host {
            lattice: "a.b".into(),
            host_seed: None,
            wait: wait.clone(),
        })
        .unwrap_err();
        assert!(err.contains("lattice name"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.nk");
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        std::fs::write(&user, format!("{seed}\n")).unwrap();
        let err = read_host_seed(&user).unwrap_err();
        assert!(err.contains("server key"), "{err}");
        let server = dir.path().join("host.nk");
        let key = nkeys::KeyPair::new_server();
        std::fs::write(&server, format!("{}\n", key.seed().unwrap())).unwrap();
        assert_eq!(
            read_host_seed(&server).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn signed_host_requests_are_signed_anew_and_verify() {
        let key = nkeys::KeyPair::new_server();
        let step = Step::Host {
            key: Box::new(key),
            lattice: "default".into(),
        };
        let (subject, headers, body) = step.message().unwrap();
        assert_eq!(subject, "wasmcloud.provision.host.default");
        let request: request::HostRequest = serde_json::from_slice(&body).unwrap();
        let signature = headers
            .get(crate::subjects::SIGNATURE_HEADER)
            .unwrap()
            .as_str();
        let auth = host_auth::HostAuth {
            require_signed: true,
            ..Default::default()
        };
        assert!(host_auth::authenticate(
            &auth,
            &request,
            &body,
            Some(signature),
            std::time::SystemTime::now()
        )
        .unwrap());
    }
}
