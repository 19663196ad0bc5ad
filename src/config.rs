//! One typed configuration, read from flags, `VIGIL_*` environment variables
//! and `.env` (loaded by `main` before clap parses).
//!
//! clap gives every option its flag, env var, default and `--help` line; the
//! raw arguments are then parsed into [`Config`], whose types can only hold
//! valid values (a production [`JwtSecret`] is always at least 32 bytes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rand::RngCore;

/// Deployment mode. Production refuses unsafe defaults instead of warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
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
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=300)
    )]
    pub server_selection_timeout_secs: u64,
}

impl DatabaseArgs {
    pub fn server_selection_timeout(&self) -> Duration {
        Duration::from_secs(self.server_selection_timeout_secs)
    }
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

    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "VIGIL_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "VIGIL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub uploads: UploadArgs,

    #[command(flatten)]
    pub detector: DetectorArgs,

    #[command(flatten)]
    pub hub: HubArgs,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Seconds between database health checks (readiness and reconnection).
    #[arg(
        long,
        env = "VIGIL_HEALTH_INTERVAL_SECS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    pub health_interval_secs: u64,
}

/// Accounts, tokens, quotas and request limits.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// API requests a new user may make (quota), until an admin changes it.
    #[arg(long, env = "VIGIL_DEFAULT_QUOTA", default_value_t = 100)]
    pub default_quota: u32,

    /// Sustained requests per second allowed per user, API key or client IP.
    #[arg(
        long,
        env = "VIGIL_RATE_LIMIT_PER_SECOND",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub rate_limit_per_second: u32,

    /// Requests allowed in one burst before the rate applies (default: the per-second rate).
    #[arg(long, env = "VIGIL_RATE_LIMIT_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,

    /// Lifetime of an access token (JWT), in seconds.
    #[arg(
        long,
        env = "VIGIL_ACCESS_TOKEN_TTL_SECS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token, in seconds.
    #[arg(
        long,
        env = "VIGIL_REFRESH_TOKEN_TTL_SECS",
        default_value_t = 30 * 24 * 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub refresh_token_ttl_secs: u64,

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
        long,
        env = "VIGIL_LOGIN_FAILURE_WINDOW_SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub login_failure_window_secs: u64,
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

    /// Where saved images live: fs ($VIGIL_DATA_DIR/images) or gridfs (shared by instances).
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: crate::media::MediaBackend,

    /// Lifetime of the signed image URLs the API returns, in seconds.
    #[arg(
        long,
        env = "VIGIL_MEDIA_URL_TTL_SECS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub media_url_ttl_secs: u64,
}

impl UploadArgs {
    pub fn image_limits(&self) -> crate::vision::ImageLimits {
        crate::vision::ImageLimits {
            max_bytes: self.max_upload_bytes,
            max_width: self.max_image_side,
            max_height: self.max_image_side,
            max_pixels: self.max_image_pixels,
        }
    }
}

/// The face detector.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectorArgs {
    /// Longest side, in pixels, images are scaled to before detection.
    #[arg(
        long,
        env = "VIGIL_DETECT_MAX_SIDE",
        default_value_t = 640,
        value_parser = clap::value_parser!(u32).range(32..=4096)
    )]
    pub detect_max_side: u32,

    /// Minimum score (0-1) of a reported face.
    #[arg(long, env = "VIGIL_DETECT_THRESHOLD", default_value_t = 0.6)]
    pub detect_threshold: f32,

    /// Detections running at once (0 = one per core).
    #[arg(long, env = "VIGIL_DETECTOR_CONCURRENCY", default_value_t = 0)]
    pub detector_concurrency: usize,

    /// Threads one detection may use (0 = one per core).
    #[arg(long, env = "VIGIL_DETECTOR_THREADS", default_value_t = 0)]
    pub detector_threads: usize,
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
        long,
        env = "VIGIL_WS_HEARTBEAT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub ws_heartbeat_secs: u64,

    /// Seconds without any frame from a client before its connection counts as gone.
    #[arg(
        long,
        env = "VIGIL_WS_CLIENT_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=86400)
    )]
    pub ws_client_timeout_secs: u64,

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

    /// Log entries held in memory while the database catches up; beyond it entries are dropped, never waited for.
    #[arg(
        long,
        env = "VIGIL_WS_LOG_BUFFER",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub ws_log_buffer: u32,

    /// Seconds between this instance's heartbeats; others remove its clients after three missed ones.
    #[arg(
        long,
        env = "VIGIL_INSTANCE_HEARTBEAT_SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub instance_heartbeat_secs: u64,
}

/// Cameras and video feeds watched for faces.
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    /// A camera: id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true] with SRC v4l2:INDEX, ffmpeg:URL_OR_FILE or dir:PATH (repeatable; `;`-separated in the env var).
    #[arg(
        long = "camera",
        env = "VIGIL_CAMERAS",
        value_name = "SPEC",
        value_delimiter = ';'
    )]
    pub cameras: Vec<String>,

    /// The ffmpeg program that reads video files and streams for ffmpeg: cameras.
    #[arg(long, env = "VIGIL_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
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

impl TlsArgs {
    fn into_config(self) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::TlsHalf {
                given: "--tls-cert (VIGIL_TLS_CERT)",
                missing: "--tls-key (VIGIL_TLS_KEY)",
            }),
            (None, Some(_)) => Err(ConfigError::TlsHalf {
                given: "--tls-key (VIGIL_TLS_KEY)",
                missing: "--tls-cert (VIGIL_TLS_CERT)",
            }),
        }
    }
}

/// Validated capture settings.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub cameras: Vec<crate::capture::CameraSpec>,
    pub ffmpeg: PathBuf,
}

impl CaptureArgs {
    fn into_config(self) -> Result<CaptureConfig, ConfigError> {
        let mut cameras: Vec<crate::capture::CameraSpec> = Vec::new();
        // Empty pieces (a trailing `;`) are not cameras.
        for raw in self.cameras.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let spec: crate::capture::CameraSpec = raw.parse().map_err(|error| ConfigError::Camera {
                spec: raw.to_owned(),
                error,
            })?;
            if cameras.iter().any(|c| c.id == spec.id) {
                return Err(ConfigError::DuplicateCamera(spec.id));
            }
            cameras.push(spec);
        }
        Ok(CaptureConfig {
            cameras,
            ffmpeg: self.ffmpeg,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("VIGIL_JWT_SECRET must be set when VIGIL_ENV=production")]
    MissingSecret,
    #[error("VIGIL_DETECT_THRESHOLD must be between 0 and 1, got {0}")]
    Threshold(f32),
    #[error("VIGIL_JWT_SECRET must be at least {min} bytes, got {got}")]
    ShortSecret { min: usize, got: usize },
    #[error("invalid camera `{spec}`: {error}")]
    Camera {
        spec: String,
        error: crate::capture::SpecError,
    },
    #[error("camera id `{0}` is given twice")]
    DuplicateCamera(String),
    #[error("{given} is set but {missing} is not: HTTPS needs both, plain HTTP neither")]
    TlsHalf {
        given: &'static str,
        missing: &'static str,
    },
}

/// A signing secret that is long enough to resist brute force.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        if raw.len() < Self::MIN_LEN {
            return Err(ConfigError::ShortSecret {
                min: Self::MIN_LEN,
                got: raw.len(),
            });
        }
        Ok(Self(raw.as_bytes().to_vec()))
    }

    pub fn random() -> Self {
        let mut bytes = vec![0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// Where the secret came from; a generated one invalidates every token on restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    Generated,
}

/// Validated configuration of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseArgs,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    /// Dashboard files read from disk on every request; `None`: the embedded copy.
    pub static_dir: Option<PathBuf>,
    pub jwt_secret: JwtSecret,
    pub secret_source: SecretSource,
    pub environment: Environment,
    pub workers: usize,
    pub auth: AuthArgs,
    pub uploads: UploadArgs,
    pub detector: DetectorArgs,
    pub hub: HubArgs,
    pub capture: CaptureConfig,
    /// HTTPS when set; the files are read at startup.
    pub tls: Option<crate::tls::TlsFiles>,
    pub shutdown_timeout: Duration,
    pub health_interval: Duration,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let (jwt_secret, secret_source) = match (self.jwt_secret.as_deref(), self.environment) {
            (Some(raw), _) => (JwtSecret::parse(raw)?, SecretSource::Configured),
            (None, Environment::Production) => return Err(ConfigError::MissingSecret),
            (None, Environment::Development) => (JwtSecret::random(), SecretSource::Generated),
        };
        if !(0.0..=1.0).contains(&self.detector.detect_threshold) {
            return Err(ConfigError::Threshold(self.detector.detect_threshold));
        }
        let workers = if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        };
        Ok(Config {
            database: self.database,
            bind: self.bind,
            data_dir: self.data_dir,
            models_dir: self.models_dir,
            static_dir: self.static_dir,
            jwt_secret,
            secret_source,
            environment: self.environment,
            workers,
            auth: self.auth,
            uploads: self.uploads,
            detector: self.detector,
            hub: self.hub,
            capture: self.capture.into_config()?,
            tls: self.tls.into_config()?,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            health_interval: Duration::from_secs(self.health_interval_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> ServeArgs {
        ServeArgs::try_parse_from(std::iter::once("vigil").chain(args.iter().copied()))
            .expect("arguments parse")
    }

    /// The environment of the test run may legitimately set these.
    fn unset(var: &str) -> bool {
        std::env::var_os(var).is_none()
    }

    #[test]
    fn production_requires_a_secret() {
        if !unset("VIGIL_JWT_SECRET") {
            return;
        }
        let err = parse(&["--env", "production"]).into_config().unwrap_err();
        assert!(matches!(err, ConfigError::MissingSecret), "{err}");
    }

    #[test]
    fn production_refuses_a_short_secret() {
        let err = parse(&["--env", "production", "--jwt-secret", "too-short"])
            .into_config()
            .unwrap_err();
        assert!(matches!(err, ConfigError::ShortSecret { got: 9, .. }), "{err}");
    }

    #[test]
    fn production_accepts_a_long_secret() {
        let secret = "x".repeat(32);
        let config = parse(&["--env", "production", "--jwt-secret", &secret])
            .into_config()
            .unwrap();
        assert_eq!(config.secret_source, SecretSource::Configured);
        assert_eq!(config.jwt_secret.as_bytes(), secret.as_bytes());
    }

    #[test]
    fn development_generates_a_random_secret() {
        if !unset("VIGIL_JWT_SECRET") || !unset("VIGIL_ENV") {
            return;
        }
        let a = parse(&[]).into_config().unwrap();
        let b = parse(&[]).into_config().unwrap();
        assert_eq!(a.secret_source, SecretSource::Generated);
        assert_ne!(a.jwt_secret.as_bytes(), b.jwt_secret.as_bytes());
        assert!(a.jwt_secret.as_bytes().len() >= JwtSecret::MIN_LEN);
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]).into_config().unwrap();
        if unset("VIGIL_BIND") {
            assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        }
        if unset("VIGIL_DATABASE") {
            assert_eq!(config.database.name, "vigil");
        }
        if unset("VIGIL_DATA_DIR") {
            assert_eq!(config.data_dir, PathBuf::from("./data"));
        }
        if unset("VIGIL_MODELS_DIR") {
            assert_eq!(config.models_dir, PathBuf::from("./models"));
        }
    }

    #[test]
    fn cameras_come_from_repeated_flags_and_semicolons() {
        let config = parse(&[
            "--camera",
            "id=a,source=v4l2:0",
            "--camera",
            "id=b,source=dir:/tmp/in;id=c,source=ffmpeg:rtsp://h/x,fps=2;",
        ])
        .into_config()
        .unwrap();
        let ids: Vec<_> = config.capture.cameras.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(config.capture.cameras[2].fps, 2.0);
    }

    #[test]
    fn a_bad_or_repeated_camera_stops_startup_with_its_text() {
        let err = parse(&["--camera", "id=a,source=usb:0"])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("usb:0"), "{err}");
        let err = parse(&["--camera", "id=a,source=v4l2:0;id=a,source=v4l2:1"])
            .into_config()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::DuplicateCamera(ref id) if id == "a"),
            "{err}"
        );
    }

    #[test]
    fn tls_needs_both_files_or_neither() {
        if !unset("VIGIL_TLS_CERT") || !unset("VIGIL_TLS_KEY") {
            return;
        }
        assert_eq!(parse(&[]).into_config().unwrap().tls, None);
        let config = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .into_config()
            .unwrap();
        assert_eq!(
            config.tls,
            Some(crate::tls::TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        let err = parse(&["--tls-cert", "c.pem"]).into_config().unwrap_err();
        assert!(err.to_string().contains("--tls-key"), "{err}");
        let err = parse(&["--tls-key", "k.pem"]).into_config().unwrap_err();
        assert!(err.to_string().contains("--tls-cert"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = "s".repeat(40);
        let config = parse(&["--jwt-secret", &secret]).into_config().unwrap();
        assert!(!format!("{config:?}").contains(&secret));
    }
}
