//! The `vigil` command: the server's subcommands (the `vigil` library) and
//! `vigil client …` (the `vigil-client` crate) in one binary.

mod forward;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use vigil::cli::{
    backup, detect, embed, erase, eval_detector, eval_recognizer, migrate, reindex, restore, serve, user,
    watch,
};
use vigil::config::{DatabaseArgs, ServeArgs};
use vigil::logging::{self, LogFormat};

/// vigil: finds human faces in camera feeds, videos and uploads, stores every
/// detection in MongoDB and pushes alarms live.
#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (API, WebSocket hub, dashboard, capture tasks).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document (JSON) of the HTTP API.
    Openapi,
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Detect faces in image files.
    Detect(detect::DetectArgs),
    /// Administer accounts (e.g. `vigil user promote NAME`).
    User(user::UserArgs),
    /// Measure detector recall and false positives on a dlib-style dataset.
    EvalDetector(eval_detector::EvalDetectorArgs),
    /// Print the faces of image files with their 128-d descriptors (face recognition).
    Embed(embed::EmbedArgs),
    /// Measure how well faces are told apart on a folder of one sub-folder per person.
    EvalRecognizer(eval_recognizer::EvalRecognizerArgs),
    /// Erase a person (subject): faces, crops, images and every reference to them.
    Erase(erase::EraseArgs),
    /// Recompute enrolled faces' embeddings after a model or alignment change.
    Reindex(reindex::ReindexArgs),
    /// Back up the database and the image folder into a new folder (mongodump's layout, checksummed).
    Backup(backup::BackupArgs),
    /// Restore a backup made by `vigil backup` into the configured database and media store.
    Restore(restore::RestoreArgs),
    /// Watch sources (v4l2:N, ffmpeg:FILE_OR_URL, dir:PATH) and print alarms; no database needed.
    /// With --forward URL, an edge agent: alarms also go to a central server, queued on disk while it is away.
    Watch(watch::WatchArgs),
    /// List local V4L2 cameras.
    Cameras,
    /// Talk to a vigil server: upload images and videos, watch alarms, counter, Fibonacci.
    Client(vigil_client::ClientArgs),
}

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying out loud.
    if let Err(err) = dotenvy::dotenv() {
        if !err.not_found() {
            eprintln!("warning: ignoring .env: {err}");
        }
    }
    let cli = Cli::try_parse()
        .unwrap_or_else(|err| vigil::config::args::with_env_hint(err, &Cli::command()).exit());
    let result = match cli.command {
        Command::Serve(args) => {
            logging::init(args.log_format);
            serve::run(*args)
        }
        Command::Migrate(args) => {
            logging::init(LogFormat::Pretty);
            migrate::run(args)
        }
        Command::Openapi => {
            print!("{}", vigil::api::openapi::document_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::User(args) => {
            logging::init(LogFormat::Pretty);
            user::run(args)
        }
        Command::Erase(args) => {
            logging::init(LogFormat::Pretty);
            erase::run(args)
        }
        Command::Reindex(args) => {
            logging::init(LogFormat::Pretty);
            reindex::run(args)
        }
        Command::Backup(args) => {
            logging::init(LogFormat::Pretty);
            backup::run(args)
        }
        Command::Restore(args) => {
            logging::init(LogFormat::Pretty);
            restore::run(args)
        }
        Command::Detect(args) => detect::run(args),
        Command::EvalDetector(args) => eval_detector::run(args),
        Command::Embed(args) => embed::run(args),
        Command::EvalRecognizer(args) => eval_recognizer::run(args),
        Command::Watch(args) => {
            logging::init(LogFormat::Pretty);
            if args.forward.is_some() {
                block_on(forward::watch(args))
            } else {
                watch::run(args)
            }
        }
        Command::Cameras => watch::list_devices(),
        Command::Client(args) => vigil_client::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
