//! `vigil client …`: the connection flags shared by every subcommand, and
//! the wiring to the subcommands' modules.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::alarms::AlarmsArgs;
use crate::api::{ApiClient, ConnectOptions};
use crate::counter::CounterArgs;
use crate::fib::FibArgs;
use crate::login::LoginArgs;
use crate::telemetry::TelemetryArgs;
use crate::tokens::TokenStore;
use crate::upload::{Outcome, UploadArgs};
use crate::{alarms, counter, fib, login, telemetry, upload, Ending};

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The vigil server (http:// or https://, with a path prefix if it has one).
    #[arg(
        long,
        env = "VIGIL_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,

    /// An API key to authenticate with, instead of the tokens of `vigil client login`.
    #[arg(long, env = "VIGIL_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,

    /// PEM file of the CA that signed the server's certificate; trusted instead of the public roots.
    #[arg(long, env = "VIGIL_CA_CERT", value_name = "PEM", global = true)]
    pub ca_cert: Option<PathBuf>,

    /// Seconds one HTTP request may take (a detection runs while the upload waits); a --server-side video
    /// upload may take longer as long as its bytes keep going.
    #[arg(
        long,
        env = "VIGIL_CLIENT_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub timeout_secs: u64,

    #[command(subcommand)]
    pub command: ClientCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Log in and keep the tokens (0600, in the user's config folder) for the other subcommands.
    Login(LoginArgs),
    /// Revoke the kept login on the server and forget it.
    Logout,
    /// Detect faces in images and in video frames sampled with ffmpeg, here or (--server-side) on the server.
    Upload(UploadArgs),
    /// Print alarms as they happen; reconnects and catches up by itself.
    Watch(AlarmsArgs),
    /// Run the even/odd counter protocol over the WebSocket hub.
    Counter(CounterArgs),
    /// Ask the hub for the n-th Fibonacci number.
    Fib(FibArgs),
    /// Simulate a device: gyroscope, GPS and photos every few seconds, retried without duplicates.
    Telemetry(TelemetryArgs),
}

/// Exit status of `upload` when the account's quota ran out.
pub const EXIT_QUOTA_EXHAUSTED: u8 = 3;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs a client subcommand on a runtime of its own: the binary calls this
/// function rather than awaiting the client's futures, which rustc would
/// compile again in the binary's crate (coroutines are not shared between
/// crates in optimised builds).
pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(execute(args))
}

async fn execute(args: ClientArgs) -> anyhow::Result<ExitCode> {
    // The token file is looked for only when it is needed: by login and
    // logout, and without an API key. A service with no home folder can
    // then run the other subcommands with VIGIL_API_KEY.
    let api = ApiClient::connect(ConnectOptions {
        server: args.server,
        api_key: args.api_key,
        ca_cert: args.ca_cert,
        timeout: Duration::from_secs(args.timeout_secs),
        token_store: None,
    })?;
    match args.command {
        ClientCommand::Login(args) => login::login(&api, &TokenStore::default_location()?, args).await?,
        ClientCommand::Logout => login::logout(&api, &TokenStore::default_location()?).await?,
        ClientCommand::Upload(args) => {
            return Ok(match upload::run(&api, args).await? {
                Outcome::Done => ExitCode::SUCCESS,
                Outcome::SomeFailed => ExitCode::FAILURE,
                Outcome::QuotaExhausted => ExitCode::from(EXIT_QUOTA_EXHAUSTED),
                Outcome::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
            })
        }
        ClientCommand::Watch(args) => return Ok(exit_status(alarms::run(&api, args).await?)),
        ClientCommand::Counter(args) => return Ok(exit_status(counter::run(&api, args).await?)),
        ClientCommand::Fib(args) => fib::run(&api, args).await?,
        ClientCommand::Telemetry(args) => return Ok(exit_status(telemetry::run(&api, args).await?)),
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_status(ending: Ending) -> ExitCode {
    match ending {
        Ending::Done => ExitCode::SUCCESS,
        Ending::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
    }
}
