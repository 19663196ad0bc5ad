//! The command line of `vigil serve` (and of the commands that share its
//! database flags): every option a flag, a `VIGIL_*` environment variable
//! (or a line of `.env`), a default and a line of `--help`.
//!
//! Values are parsed into the types the code uses (durations, thresholds,
//! quotas, camera specs) as clap reads them, so a bad one stops startup with
//! clap's message; [`with_env_hint`] adds the variable's name to it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue};

use super::Environment;
use crate::auth::tokens::JwtAlgorithm;
use crate::capture::{CameraSpec, LeaseMode};
use crate::logging::LogFormat;
use crate::media::MediaBackend;
use crate::mqtt::{ClientId, MqttUrl, MqttUrlError, TopicError, TopicPrefix};
use crate::users::Quota;
use crate::vision::kernels::Precision;

/// The choices of an enum owned by another module, for `value_enum` flags.
macro_rules! value_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($ty::$variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($ty::$variant => PossibleValue::new($name)),+
                })
            }
        }
    };
}

value_enum!(Environment { Development => "development", Production => "production" });
value_enum!(LogFormat { Pretty => "pretty", Json => "json" });
value_enum!(JwtAlgorithm { Hs256 => "hs256", Hs384 => "hs384", Hs512 => "hs512" });
value_enum!(MediaBackend { Fs => "fs", Gridfs => "gridfs" });
value_enum!(LeaseMode { Auto => "auto", On => "on", Off => "off" });
value_enum!(Precision { Int8 => "int8", F32 => "f32" });

/// Whole seconds within `range`, as a [`Duration`].
fn secs(range: impl std::ops::RangeBounds<u64>) -> impl TypedValueParser<Value = Duration> {
    clap::value_parser!(u64).range(range).map(Duration::from_secs)
}

/// A count of threads or of things running at once, 0 meaning one per
/// core: bounded, since a count past what a machine can run only asks for
/// threads it cannot have, and past `usize::MAX / 8` a semaphore panics.
fn cores_or_count() -> impl TypedValueParser<Value = usize> {
    clap::value_parser!(u64)
        .range(0..=1024)
        .map(|n| usize::try_from(n).expect("at most 1024"))
}

/// A count of at least one.
fn at_least_one() -> impl TypedValueParser<Value = NonZeroU32> {
    clap::value_parser!(u32)
        .range(1..)
        .map(|n| NonZeroU32::new(n).expect("the range starts at 1"))
}

/// The detector's input side in pixels, for `serve --detect-max-side` and
/// `detect --max-side` alike: under 32 there is no network input left, and
/// past 4096 one inference's buffers run into gigabytes.
pub fn max_side() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(32..=4096)
}

/// A score from 0 to 1.
fn unit_interval(raw: &str) -> Result<f32, String> {
    match raw.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("must be a number from 0 to 1, got `{raw}`")),
    }
}

/// How to reach MongoDB; shared by every subcommand that touches the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// MongoDB connection string.
    #[arg(
        long = "mongodb-uri",
        env = "MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017"
    )]
    pub uri: String,

    /// Database name inside the MongoDB deployment.
    #[arg(long = "database", env = "VIGIL_DATABASE", default_value = "vigil")]
    pub name: String,

    /// Largest number of pooled connections to MongoDB.
    #[arg(long = "db-pool-size", env = "VIGIL_DB_POOL_SIZE", default_value_t = 32)]
    pub pool_size: u32,

    /// Seconds to wait for a usable MongoDB server before an operation fails.
    #[arg(
        long = "db-timeout-secs",
        env = "VIGIL_DB_TIMEOUT_SECS",
        default_value = "5",
        value_parser = secs(1..=300)
    )]
    pub server_selection_timeout: Duration,
}

/// Options of `vigil serve`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "vigil serve")]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address (host:port) the HTTP server listens on.
    #[arg(long, env = "VIGIL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Folder for saved images and other local state.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Folder holding the model files listed in models/manifest.toml.
    #[arg(long, env = "VIGIL_MODELS_DIR", default_value = "./models")]
    pub models_dir: PathBuf,

    /// Serve the dashboard from this folder instead of the copy built into the binary (for editing static/).
    #[arg(long, env = "VIGIL_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Secret for signing access tokens and media URLs (≥ 32 bytes in production).
    #[arg(long, env = "VIGIL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// development or production; production refuses a missing or short secret.
    #[arg(long = "env", env = "VIGIL_ENV", value_enum, default_value = "development")]
    pub environment: Environment,

    /// Log format: pretty (for people) or json (for log collectors).
    #[arg(long, env = "VIGIL_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// HTTP worker threads (0 = one per core; at most 1024).
    #[arg(long, env = "VIGIL_WORKERS", default_value_t = 0, value_parser = cores_or_count())]
    pub workers: usize,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(
        long = "shutdown-timeout-secs",
        env = "VIGIL_SHUTDOWN_TIMEOUT_SECS",
        default_value = "30",
        value_parser = secs(..)
    )]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub uploads: UploadArgs,

    #[command(flatten)]
    pub detector: DetectorArgs,

    #[command(flatten)]
    pub recognizer: RecognizerArgs,

    #[command(flatten)]
    pub hub: HubArgs,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub jobs: JobArgs,

    #[command(flatten)]
    pub agents: AgentArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    pub mqtt: MqttArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Seconds a telemetry `timestamp` may be ahead of the server's clock before the reading is refused.
    #[arg(
        long = "telemetry-max-skew-secs",
        env = "VIGIL_TELEMETRY_MAX_SKEW_SECS",
        default_value = "300",
        value_parser = secs(0..=86_400)
    )]
    pub telemetry_max_skew: Duration,

    /// Seconds between database health checks (readiness and reconnection).
    #[arg(
        long = "health-interval-secs",
        env = "VIGIL_HEALTH_INTERVAL_SECS",
        default_value = "2",
        value_parser = secs(1..=60)
    )]
    pub health_interval: Duration,
}

/// Accounts, tokens, quotas and request limits.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// API requests a new user may make (quota), until an admin changes it.
    #[arg(
        long,
        env = "VIGIL_DEFAULT_QUOTA",
        default_value = "100",
        value_parser = clap::value_parser!(u32).map(Quota)
    )]
    pub default_quota: Quota,

    /// Sustained requests per second allowed per user, API key or client IP.
    #[arg(
        long,
        env = "VIGIL_RATE_LIMIT_PER_SECOND",
        default_value = "10",
        value_parser = at_least_one()
    )]
    pub rate_limit_per_second: NonZeroU32,

    /// Requests allowed in one burst before the rate applies (default: the per-second rate).
    #[arg(long, env = "VIGIL_RATE_LIMIT_BURST", value_parser = at_least_one())]
    pub rate_limit_burst: Option<NonZeroU32>,

    /// Lifetime of an access token (JWT), in seconds.
    #[arg(
        long = "access-token-ttl-secs",
        env = "VIGIL_ACCESS_TOKEN_TTL_SECS",
        default_value = "900",
        value_parser = secs(1..)
    )]
    pub access_token_ttl: Duration,

    /// Lifetime of a refresh token, in seconds (at most ten years).
    #[arg(
        long = "refresh-token-ttl-secs",
        env = "VIGIL_REFRESH_TOKEN_TTL_SECS",
        default_value = "2592000",
        value_parser = secs(1..=10 * 365 * 86_400)
    )]
    pub refresh_token_ttl: Duration,

    /// Signing algorithm of access tokens; no other is accepted.
    #[arg(long, env = "VIGIL_JWT_ALGORITHM", value_enum, default_value = "hs256")]
    pub jwt_algorithm: JwtAlgorithm,

    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "VIGIL_ARGON2_MEMORY_KIB", default_value_t = 19456)]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (OWASP: 2).
    #[arg(long, env = "VIGIL_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes (OWASP: 1).
    #[arg(long, env = "VIGIL_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Failed logins per account within the window before further attempts wait.
    #[arg(long, env = "VIGIL_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Failed logins per client IP within the window before further attempts wait.
    #[arg(long, env = "VIGIL_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 20)]
    pub login_max_failures_per_ip: u32,

    /// Seconds a run of failed logins is remembered; throttling ends with it.
    #[arg(
        long = "login-failure-window-secs",
        env = "VIGIL_LOGIN_FAILURE_WINDOW_SECS",
        default_value = "300",
        value_parser = secs(1..)
    )]
    pub login_failure_window: Duration,
}

/// Uploaded images and where images are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// Largest accepted upload body, in bytes (larger: 413 payload_too_large).
    #[arg(long, env = "VIGIL_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Largest accepted image width or height, in pixels (larger: 413 image_too_large).
    #[arg(long, env = "VIGIL_MAX_IMAGE_SIDE", default_value_t = 8192)]
    pub max_image_side: u32,

    /// Largest accepted image area, in pixels (larger: 413 image_too_large).
    #[arg(long, env = "VIGIL_MAX_IMAGE_PIXELS", default_value_t = 40_000_000)]
    pub max_image_pixels: u64,

    /// Megapixels of images decoded and held at once, over every request (beyond: wait up to --decode-wait-secs, then 503 busy); 0 = no limit.
    #[arg(long, env = "VIGIL_DECODE_BUDGET_MPX", default_value_t = 64)]
    pub decode_budget_mpx: u32,

    /// Seconds an image waits for room in --decode-budget-mpx before the request gets 503 busy (0: refused at once).
    #[arg(
        long = "decode-wait-secs",
        env = "VIGIL_DECODE_WAIT_SECS",
        default_value = "10",
        value_parser = secs(0..=600)
    )]
    pub decode_wait: Duration,

    /// Where saved images live: fs ($VIGIL_DATA_DIR/images) or gridfs (shared by instances).
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,

    /// Lifetime of the signed image URLs the API returns, in seconds.
    #[arg(
        long = "media-url-ttl-secs",
        env = "VIGIL_MEDIA_URL_TTL_SECS",
        default_value = "3600",
        value_parser = secs(1..)
    )]
    pub media_url_ttl: Duration,
}

/// The face detector.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectorArgs {
    /// Longest side, in pixels, larger images are scaled down to before detection (smaller ones are not scaled up past their side rounded up to 128).
    #[arg(
        long,
        env = "VIGIL_DETECT_MAX_SIDE",
        default_value_t = 640,
        value_parser = max_side()
    )]
    pub detect_max_side: u32,

    /// Minimum score (0-1) of a reported face.
    #[arg(long, env = "VIGIL_DETECT_THRESHOLD", default_value = "0.6", value_parser = unit_interval)]
    pub detect_threshold: f32,

    /// Detections running at once (0 = one per core; at most 1024).
    #[arg(long, env = "VIGIL_DETECTOR_CONCURRENCY", default_value_t = 0, value_parser = cores_or_count())]
    pub detector_concurrency: usize,

    /// Threads one detection may use (0 = one per core; at most 1024).
    #[arg(long, env = "VIGIL_DETECTOR_THREADS", default_value_t = 0, value_parser = cores_or_count())]
    pub detector_threads: usize,

    /// Arithmetic of the detector's 1×1 convolutions: int8 (8-bit integers, on CPUs with AVX-512 VNNI; f32 elsewhere) or f32.
    #[arg(long, env = "VIGIL_DETECTOR_PRECISION", value_enum, default_value = "int8")]
    pub detector_precision: Precision,
}

/// Face recognition (an embedding per detected face).
#[derive(Debug, Clone, clap::Args)]
pub struct RecognizerArgs {
    /// Embedding calls running at once (0 = one per core; at most 1024).
    #[arg(long, env = "VIGIL_RECOGNIZER_CONCURRENCY", default_value_t = 0, value_parser = cores_or_count())]
    pub recognizer_concurrency: usize,

    /// Threads one embedding call may use (0 = one per core; at most 1024).
    #[arg(long, env = "VIGIL_RECOGNIZER_THREADS", default_value_t = 1, value_parser = cores_or_count())]
    pub recognizer_threads: usize,

    /// Smallest face side, in pixels, that gets an embedding; smaller faces get no identity rather than a wrong one.
    #[arg(
        long = "recognition-min-face-px",
        value_name = "PX",
        env = "VIGIL_RECOGNITION_MIN_FACE_PX",
        default_value = "32",
        value_parser = clap::value_parser!(u32).range(16..=1024).map(|px| px as f32)
    )]
    pub recognition_min_face: f32,

    /// Largest mean distance (dlib's metric, 0-1) at which a face is taken for an enrolled subject; lower is stricter.
    #[arg(long, env = "VIGIL_RECOGNITION_THRESHOLD", default_value = "0.55", value_parser = unit_interval)]
    pub recognition_threshold: f32,

    /// How much nearer (0-1) than the next subject a face must be to get a name; otherwise it is unknown.
    #[arg(long, env = "VIGIL_RECOGNITION_MARGIN", default_value = "0.05", value_parser = unit_interval)]
    pub recognition_margin: f32,

    /// Largest distance (0-1) from an unknown face to a recurring stranger's nearest face at which it is taken for that visitor; otherwise it starts a new one. 0 turns visitors off.
    #[arg(long, env = "VIGIL_VISITOR_DISTANCE", default_value = "0.5", value_parser = unit_interval)]
    pub visitor_distance: f32,
}

/// The WebSocket hub (`/ws`): sessions, presence and the message log.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// Let WebSocket clients without credentials use the clock, Fibonacci and the counter (never alarms).
    #[arg(
        long,
        env = "VIGIL_WS_ALLOW_ANONYMOUS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub ws_allow_anonymous: bool,

    /// Messages waiting for one WebSocket client before it counts as too slow and is closed (1013).
    #[arg(
        long,
        env = "VIGIL_WS_QUEUE",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=65536)
    )]
    pub ws_queue: u32,

    /// Seconds between WebSocket pings to each client.
    #[arg(
        long = "ws-heartbeat-secs",
        env = "VIGIL_WS_HEARTBEAT_SECS",
        default_value = "10",
        value_parser = secs(1..=3600)
    )]
    pub ws_heartbeat: Duration,

    /// Seconds without any frame from a client before its connection counts as gone.
    #[arg(
        long = "ws-client-timeout-secs",
        env = "VIGIL_WS_CLIENT_TIMEOUT_SECS",
        default_value = "30",
        value_parser = secs(1..=86400)
    )]
    pub ws_client_timeout: Duration,

    /// Messages per second one WebSocket session may send on average; more are answered with `rate_limited`, a flood is closed (1008).
    #[arg(
        long,
        env = "VIGIL_WS_MESSAGES_PER_SECOND",
        default_value = "20",
        value_parser = at_least_one()
    )]
    pub ws_messages_per_second: NonZeroU32,

    /// Messages one WebSocket session may send at once before the per-second rate applies.
    #[arg(
        long,
        env = "VIGIL_WS_MESSAGE_BURST",
        default_value = "40",
        value_parser = at_least_one()
    )]
    pub ws_message_burst: NonZeroU32,

    /// Largest n the Fibonacci command accepts.
    #[arg(
        long,
        env = "VIGIL_FIB_MAX_N",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(0..=10_000_000)
    )]
    pub fib_max_n: u64,

    /// Also write the once-a-second clock messages to the message log.
    #[arg(long, env = "VIGIL_WS_LOG_CLOCK", default_value_t = false, action = clap::ArgAction::Set)]
    pub ws_log_clock: bool,

    /// Days a WebSocket message stays in the message log (ws_messages).
    #[arg(
        long,
        env = "VIGIL_WS_LOG_TTL_DAYS",
        default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub ws_log_ttl_days: u32,

    /// Message log entries held in memory while the database catches up; beyond it they wait in DATA_DIR/message-log and are written later, in order.
    #[arg(
        long,
        env = "VIGIL_WS_LOG_BUFFER",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub ws_log_buffer: u32,

    /// Seconds between this instance's heartbeats (and camera lease renewals); others remove its clients and take over its cameras after three missed ones.
    #[arg(
        long = "instance-heartbeat-secs",
        env = "VIGIL_INSTANCE_HEARTBEAT_SECS",
        default_value = "5",
        value_parser = secs(1..=3600)
    )]
    pub instance_heartbeat: Duration,
}

/// Cameras and video feeds watched for faces.
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    /// A camera: id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true][,retention=DAYS] with SRC v4l2:INDEX, ffmpeg:URL_OR_FILE or dir:PATH (repeatable; `;`-separated in the env var).
    #[arg(
        long = "camera",
        env = "VIGIL_CAMERAS",
        value_name = "SPEC",
        value_delimiter = ';',
        value_parser = camera
    )]
    pub cameras: Vec<Option<CameraSpec>>,

    /// The ffmpeg program that reads video files and streams for ffmpeg: cameras, and samples video jobs' frames.
    #[arg(long, env = "VIGIL_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe program that checks uploaded videos and counts their frames.
    #[arg(long, env = "VIGIL_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,

    /// Run each camera on one instance at a time, under a lease in the database that another instance with the camera takes over within 3 heartbeats of its holder's death: auto (= on: a lone instance wins every lease), on, or off (every instance runs every camera).
    #[arg(long, env = "VIGIL_CAMERA_LEASES", value_enum, default_value = "auto")]
    pub camera_leases: LeaseMode,
}

/// Alarms received from edge agents (`POST /api/v1/alarms`).
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Seconds an agent's alarm `date` may be ahead of the server's clock before it is refused.
    #[arg(
        long = "alarm-max-skew-secs",
        env = "VIGIL_ALARM_MAX_SKEW_SECS",
        default_value = "300",
        value_parser = secs(0..=86_400)
    )]
    pub alarm_max_skew: Duration,

    /// Detect faces on the server in an agent's alarm that came without any (false: store it with none).
    #[arg(
        long,
        env = "VIGIL_AGENT_REDETECT",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub agent_redetect: bool,
}

/// The job queue: asynchronous uploads and videos analysed on the server.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// Jobs this instance runs at once (0 = one per core; at most 1024); the detector's slots stay shared with uploads.
    #[arg(long, env = "VIGIL_JOB_WORKERS", default_value_t = 0, value_parser = cores_or_count())]
    pub job_workers: usize,

    /// Times a job is taken up (its worker died, or an attempt failed) before it fails for good.
    #[arg(
        long,
        env = "VIGIL_JOB_MAX_ATTEMPTS",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub job_max_attempts: u32,

    /// Queued jobs (across every instance) beyond which new ones are refused with 503 queue_full.
    #[arg(
        long,
        env = "VIGIL_JOB_QUEUE_LIMIT",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=10_000_000)
    )]
    pub job_queue_limit: u64,

    /// Seconds a worker's claim on a job lasts without renewal: a job whose worker died is taken up again after this.
    #[arg(
        long = "job-lease-secs",
        env = "VIGIL_JOB_LEASE_SECS",
        default_value = "30",
        value_parser = secs(2..=3600)
    )]
    pub job_lease: Duration,

    /// Largest accepted video for POST /api/v1/videos, in bytes (larger: 413 payload_too_large).
    #[arg(
        long,
        env = "VIGIL_MAX_VIDEO_BYTES",
        default_value_t = 512 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_video_bytes: u64,
}

/// Webhooks: alarms POSTed to the accounts' own endpoints.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Let webhooks reach loopback, private (RFC 1918, ULA), link-local and CGNAT addresses (off: such URLs are refused with 422 webhook_url_refused, at creation and at every delivery).
    #[arg(
        long,
        env = "VIGIL_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub webhook_allow_private: bool,
}

/// How long detections are kept, and the disk space kept free.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Days detections and alarms (with their images) are kept, counted from when they were stored; 0 keeps them forever. A camera's `retention=DAYS` overrides it.
    #[arg(
        long,
        env = "VIGIL_RETENTION_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(0..=36_500)
    )]
    pub retention_days: u32,

    /// Days the embedding of an unknown face (one recognised as nobody) is kept for search by face; its detection stays for --retention-days. 0 keeps it as long as its detection.
    #[arg(
        long,
        env = "VIGIL_UNKNOWN_FACE_RETENTION_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(0..=36_500)
    )]
    pub unknown_face_retention_days: u32,

    /// Seconds between two retention sweeps (the first runs once the database is ready).
    #[arg(
        long = "retention-interval-secs",
        env = "VIGIL_RETENTION_INTERVAL_SECS",
        default_value = "3600",
        value_parser = secs(1..=86_400)
    )]
    pub retention_interval: Duration,

    /// Free space (MiB) kept in the data folder: below it uploads get 507 insufficient_storage and camera frames are recorded without images, until space returns; 0 turns the guard off.
    #[arg(
        long,
        env = "VIGIL_MIN_FREE_DISK_MB",
        default_value_t = 512,
        value_parser = clap::value_parser!(u64).range(0..=1 << 30)
    )]
    pub min_free_disk_mb: u64,
}

/// One camera spec; an empty piece (a trailing `;`) is no camera.
fn camera(raw: &str) -> Result<Option<CameraSpec>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|e| format!("{e}"))
}

/// HTTPS (and wss://) instead of plain HTTP.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain (leaf first) to serve HTTPS and wss:// with; needs --tls-key.
    #[arg(long, env = "VIGIL_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "VIGIL_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
}

/// Alarms, camera status and Home Assistant discovery on an MQTT broker.
#[derive(Debug, Clone, clap::Args)]
pub struct MqttArgs {
    /// MQTT broker to publish alarms to: mqtt://[user[:password]@]host[:port] (default port 1883; mqtts:// is refused: no TLS to brokers in this build). Unset or empty: no MQTT.
    #[arg(long, env = "VIGIL_MQTT_URL", value_name = "URL", hide_env_values = true, value_parser = mqtt_url)]
    pub mqtt_url: Option<MqttUrlArg>,

    /// Topic levels every vigil topic starts with (alarms on PREFIX/alarms).
    #[arg(long, env = "VIGIL_MQTT_PREFIX", value_name = "PREFIX", default_value = "vigil", value_parser = topic_prefix)]
    pub mqtt_prefix: TopicPrefix,

    /// MQTT client id, also this instance's availability topic PREFIX/instances/ID/status (default: vigil-HOSTNAME-HTTPPORT).
    #[arg(long, env = "VIGIL_MQTT_CLIENT_ID", value_name = "ID", value_parser = client_id)]
    pub mqtt_client_id: Option<ClientId>,

    /// Alarm messages kept in memory while the broker is away; beyond it the oldest are dropped (and counted).
    #[arg(
        long,
        env = "VIGIL_MQTT_QUEUE_LIMIT",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|n| usize::try_from(n).expect("at most a million"))
    )]
    pub mqtt_queue_limit: usize,

    /// Home Assistant MQTT discovery prefix; empty turns discovery off.
    #[arg(long, env = "VIGIL_MQTT_DISCOVERY_PREFIX", value_name = "PREFIX", default_value = "homeassistant", value_parser = discovery_prefix)]
    pub mqtt_discovery_prefix: DiscoveryPrefix,
}

/// `--mqtt-url` as given: parsed, but refused only by `into_config`, since
/// clap's own message would repeat the value, password and all. Empty (as
/// `VIGIL_MQTT_URL=` in a compose file) is no MQTT.
#[derive(Clone)]
pub struct MqttUrlArg(pub Option<Result<MqttUrl, MqttUrlError>>);

impl std::fmt::Debug for MqttUrlArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("none"),
            Some(Ok(url)) => write!(f, "{url:?}"),
            Some(Err(err)) => write!(f, "invalid MQTT URL ({err})"),
        }
    }
}

fn mqtt_url(raw: &str) -> Result<MqttUrlArg, String> {
    let raw = raw.trim();
    Ok(MqttUrlArg((!raw.is_empty()).then(|| raw.parse())))
}

fn topic_prefix(raw: &str) -> Result<TopicPrefix, String> {
    raw.parse().map_err(|e: TopicError| format!("a topic prefix {e}"))
}

fn client_id(raw: &str) -> Result<ClientId, String> {
    raw.parse().map_err(|e: TopicError| format!("a client id {e}"))
}

/// `None`: discovery off (the flag given empty).
#[derive(Debug, Clone)]
pub struct DiscoveryPrefix(pub Option<TopicPrefix>);

fn discovery_prefix(raw: &str) -> Result<DiscoveryPrefix, String> {
    if raw.is_empty() {
        return Ok(DiscoveryPrefix(None));
    }
    topic_prefix(raw).map(|p| DiscoveryPrefix(Some(p)))
}

/// Adds to a refused value the environment variable it may have come from:
/// clap names only the flag, and a value read from `VIGIL_*` or `.env` is
/// otherwise hard to trace.
pub fn with_env_hint(mut err: clap::Error, command: &clap::Command) -> clap::Error {
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split_whitespace().next().unwrap_or("").to_owned(),
        _ => return err,
    };
    let Some(long) = flag.strip_prefix("--") else {
        return err;
    };
    if let Some(env) = find_env(command, long) {
        let hint = format!("{flag} is also read from the environment variable {env} (or .env)");
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![hint.into()]),
        );
    }
    err
}

fn find_env(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| find_env(sub, long)))
}
