//! The baselines of the warm rows: ADR-32 micro services whose one endpoint echoes the
//! request, run as their own process (the bench re-executed with `--echo-server`).
//!
//! - [`Mode::Inline`]: the cheapest possible ADR-32 responder, an async-nats service
//!   endpoint that answers in its receive loop, with no task per request. The warm rows
//!   are measured against this one, and the cold rows' hop is a request to it.
//! - [`Mode::Task`]: the same with one `tokio::spawn` per request (the baseline of the
//!   earlier runs), kept as an extra row, for information.

use async_nats::service::ServiceExt;
use futures::StreamExt;

/// How an echo service answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// In its receive loop.
    Inline,
    /// In a task spawned per request.
    Task,
}

impl Mode {
    /// The service's name in `$SRV` discovery.
    pub fn service(self) -> &'static str {
        match self {
            Mode::Inline => "bench-echo",
            Mode::Task => "bench-echo-task",
        }
    }

    /// The endpoint's subject.
    pub fn subject(self) -> &'static str {
        match self {
            Mode::Inline => "bench.echo",
            Mode::Task => "bench.echo.task",
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Mode::Inline => "inline",
            Mode::Task => "task",
        }
    }

    pub fn from_arg(arg: &str) -> Option<Mode> {
        match arg {
            "inline" => Some(Mode::Inline),
            "task" => Some(Mode::Task),
            _ => None,
        }
    }
}

/// The environment variables that give the echo a user and password (`start_echo_as`).
pub const USER_ENV: &str = "BENCH_ECHO_USER";
pub const PASSWORD_ENV: &str = "BENCH_ECHO_PASSWORD";

/// Runs an echo service on `url` until its connection ends; on the same kind of runtime
/// as the provisioner. A user and password come from [`USER_ENV`] and [`PASSWORD_ENV`].
pub fn run(url: &str, mode: Mode) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), async_nats::Error> = runtime.block_on(async {
        let options = match (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
            (Ok(user), Ok(password)) => {
                async_nats::ConnectOptions::with_user_and_password(user, password)
            }
            _ => async_nats::ConnectOptions::new(),
        };
        let client = options.connect(url).await?;
        let service = client
            .service_builder()
            .description("bench baseline: echoes the request")
            .start(mode.service(), "0.0.1")
            .await?;
        let mut endpoint = service.endpoint(mode.subject()).await?;
        while let Some(request) = endpoint.next().await {
            match mode {
                Mode::Inline => {
                    let body = request.message.payload.clone();
                    let _ = request.respond(Ok(body)).await;
                }
                Mode::Task => {
                    tokio::spawn(async move {
                        let body = request.message.payload.clone();
                        let _ = request.respond(Ok(body)).await;
                    });
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
