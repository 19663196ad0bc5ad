//! One typed configuration, read from flags, `VIGIL_*` environment variables
//! and `.env` (loaded by `main` before clap parses).
//!
//! [`args`] holds clap's view: every option with its flag, variable, default
//! and `--help` line, each value already parsed into its type. [`Config`]
//! gathers the settings each module owns ([`DatabaseSettings`],
//! [`AuthSettings`], [`ImageLimits`], [`DetectorSettings`], [`HubConfig`]…)
//! once the rules that span several options hold (a production secret, TLS
//! files in pairs, unique camera ids).

pub mod args;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use args::{DatabaseArgs, ServeArgs};

use crate::agents::IngestSettings;
use crate::auth::password::Argon2Settings;
use crate::auth::rate_limit::RateLimit;
use crate::auth::secret::ShortSecret;
use crate::auth::throttle::ThrottleSettings;
use crate::auth::{AuthSettings, JwtSecret};
use crate::capture::{CameraId, CaptureSettings};
use crate::db::DatabaseSettings;
use crate::hub::rate::MessageLimit;
use crate::hub::HubConfig;
use crate::jobs::JobSettings;
use crate::media::MediaSettings;
use crate::mqtt::{MqttSettings, MqttUrlError};
use crate::notify::webhooks::WebhookSettings;
use crate::people::MatchRule;
use crate::retention::RetentionSettings;
use crate::telemetry::ClockSkew;
use crate::tls::TlsFiles;
use crate::vision::{default_threads, DetectorConfig, DetectorSettings, ImageLimits, RecognizerSettings};

/// Deployment mode. Production refuses unsafe defaults instead of warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--jwt-secret (VIGIL_JWT_SECRET) must be set when --env (VIGIL_ENV) is production")]
    MissingSecret,
    #[error("--jwt-secret (VIGIL_JWT_SECRET) {0}")]
    ShortSecret(#[from] ShortSecret),
    #[error("--camera (VIGIL_CAMERAS): camera id `{0}` is given twice")]
    DuplicateCamera(CameraId),
    #[error("--mqtt-url (VIGIL_MQTT_URL) {0}")]
    MqttUrl(#[from] MqttUrlError),
    #[error("{given} is set but {missing} is not: HTTPS needs both, plain HTTP neither")]
    TlsHalf {
        given: &'static str,
        missing: &'static str,
    },
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
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    /// Dashboard files read from disk on every request; `None`: the embedded copy.
    pub static_dir: Option<PathBuf>,
    pub jwt_secret: JwtSecret,
    pub secret_source: SecretSource,
    pub environment: Environment,
    pub workers: usize,
    pub auth: AuthSettings,
    pub uploads: ImageLimits,
    pub media: MediaSettings,
    pub detector: DetectorSettings,
    pub recognizer: RecognizerSettings,
    /// When a face is given a subject's name.
    pub matching: MatchRule,
    /// When an unknown face is taken for a recurring stranger; 0: never.
    pub visitor_distance: f32,
    pub hub: HubConfig,
    pub capture: CaptureSettings,
    /// HTTPS when set; the files are read at startup.
    pub tls: Option<TlsFiles>,
    pub shutdown_timeout: Duration,
    pub health_interval: Duration,
    /// How far ahead of the server a device's clock may be.
    pub telemetry_skew: ClockSkew,
    pub jobs: JobSettings,
    pub agents: IngestSettings,
    pub webhooks: WebhookSettings,
    /// Alarms on an MQTT broker; `None` without `--mqtt-url`.
    pub mqtt: Option<MqttSettings>,
    pub retention: RetentionSettings,
    /// Free bytes kept in the data folder (0: no disk guard).
    pub min_free_disk_bytes: u64,
}

/// 0 means one per core.
fn or_cores(n: usize) -> usize {
    if n == 0 {
        default_threads()
    } else {
        n
    }
}

impl DatabaseArgs {
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            uri: self.uri.clone(),
            name: self.name.clone(),
            pool_size: self.pool_size,
            server_selection_timeout: self.server_selection_timeout,
        }
    }
}

impl args::AuthArgs {
    fn settings(&self) -> AuthSettings {
        AuthSettings {
            default_quota: self.default_quota,
            rate_limit: RateLimit {
                per_second: self.rate_limit_per_second,
                burst: self.rate_limit_burst.unwrap_or(self.rate_limit_per_second),
            },
            jwt_algorithm: self.jwt_algorithm,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            argon2: Argon2Settings {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
            },
            login_throttle: ThrottleSettings {
                max_per_account: self.login_max_failures,
                max_per_ip: self.login_max_failures_per_ip,
                window: self.login_failure_window,
            },
        }
    }
}

impl args::HubArgs {
    fn settings(&self, log_spill_dir: PathBuf) -> HubConfig {
        HubConfig {
            allow_anonymous: self.ws_allow_anonymous,
            queue: self.ws_queue as usize,
            heartbeat: self.ws_heartbeat,
            client_timeout: self.ws_client_timeout,
            message_limit: MessageLimit {
                per_second: self.ws_messages_per_second,
                burst: self.ws_message_burst,
            },
            fib_max_n: self.fib_max_n,
            log_clock: self.ws_log_clock,
            log_ttl_days: self.ws_log_ttl_days,
            log_buffer: self.ws_log_buffer as usize,
            log_spill_dir,
            instance_heartbeat: self.instance_heartbeat,
        }
    }
}

impl args::CaptureArgs {
    fn settings(self) -> Result<CaptureSettings, ConfigError> {
        let mut cameras: Vec<crate::capture::CameraSpec> = Vec::new();
        for spec in self.cameras.into_iter().flatten() {
            if cameras.iter().any(|c| c.id == spec.id) {
                return Err(ConfigError::DuplicateCamera(spec.id));
            }
            cameras.push(spec);
        }
        Ok(CaptureSettings {
            cameras,
            ffmpeg: self.ffmpeg,
            ffprobe: self.ffprobe,
            leases: self.camera_leases,
        })
    }
}

impl args::MqttArgs {
    fn settings(self) -> Result<Option<MqttSettings>, ConfigError> {
        let Some(url) = self.mqtt_url.and_then(|given| given.0) else {
            return Ok(None);
        };
        Ok(Some(MqttSettings {
            url: url?,
            prefix: self.mqtt_prefix,
            client_id: self.mqtt_client_id,
            queue_limit: self.mqtt_queue_limit,
            discovery_prefix: self.mqtt_discovery_prefix.0,
        }))
    }
}

impl args::TlsArgs {
    fn settings(self) -> Result<Option<TlsFiles>, ConfigError> {
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
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

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let (jwt_secret, secret_source) = match (self.jwt_secret.as_deref(), self.environment) {
            (Some(raw), _) => (JwtSecret::parse(raw)?, SecretSource::Configured),
            (None, Environment::Production) => return Err(ConfigError::MissingSecret),
            (None, Environment::Development) => (JwtSecret::random(), SecretSource::Generated),
        };
        let uploads = ImageLimits {
            max_bytes: self.uploads.max_upload_bytes,
            max_width: self.uploads.max_image_side,
            max_height: self.uploads.max_image_side,
            max_pixels: self.uploads.max_image_pixels,
        };
        let detector = DetectorSettings {
            config: DetectorConfig {
                max_side: self.detector.detect_max_side,
                score_threshold: self.detector.detect_threshold,
                threads: or_cores(self.detector.detector_threads),
                precision: self.detector.detector_precision,
                ..DetectorConfig::default()
            },
            concurrency: or_cores(self.detector.detector_concurrency),
            decode_budget_pixels: u64::from(self.uploads.decode_budget_mpx) * 1_000_000,
            decode_wait: self.uploads.decode_wait,
        };
        let log_spill_dir = self.data_dir.join("message-log");
        Ok(Config {
            database: self.database.settings(),
            bind: self.bind,
            data_dir: self.data_dir,
            models_dir: self.models_dir,
            static_dir: self.static_dir,
            jwt_secret,
            secret_source,
            environment: self.environment,
            workers: or_cores(self.workers),
            auth: self.auth.settings(),
            uploads,
            media: MediaSettings {
                backend: self.uploads.media_store,
                url_ttl: self.uploads.media_url_ttl,
            },
            detector,
            recognizer: RecognizerSettings {
                threads: or_cores(self.recognizer.recognizer_threads),
                concurrency: or_cores(self.recognizer.recognizer_concurrency),
                min_face_px: self.recognizer.recognition_min_face,
            },
            matching: MatchRule {
                threshold: self.recognizer.recognition_threshold,
                margin: self.recognizer.recognition_margin,
            },
            visitor_distance: self.recognizer.visitor_distance,
            hub: self.hub.settings(log_spill_dir),
            capture: self.capture.settings()?,
            tls: self.tls.settings()?,
            shutdown_timeout: self.shutdown_timeout,
            health_interval: self.health_interval,
            telemetry_skew: ClockSkew(
                chrono::Duration::from_std(self.telemetry_max_skew).unwrap_or(chrono::Duration::days(1)),
            ),
            jobs: JobSettings {
                workers: or_cores(self.jobs.job_workers),
                max_attempts: self.jobs.job_max_attempts,
                queue_limit: self.jobs.job_queue_limit,
                lease: self.jobs.job_lease,
                max_video_bytes: self.jobs.max_video_bytes,
            },
            agents: IngestSettings {
                max_skew: self.agents.alarm_max_skew,
                redetect: self.agents.agent_redetect,
            },
            webhooks: WebhookSettings {
                allow_private: self.webhooks.webhook_allow_private,
            },
            mqtt: self.mqtt.settings()?,
            retention: RetentionSettings {
                days: self.retention.retention_days,
                unknown_face_days: self.retention.unknown_face_retention_days,
                interval: self.retention.retention_interval,
            },
            min_free_disk_bytes: self.retention.min_free_disk_mb * 1024 * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args::with_env_hint;
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
        assert!(
            matches!(err, ConfigError::ShortSecret(ShortSecret { got: 9, .. })),
            "{err}"
        );
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
    fn camera_leases_are_on_unless_turned_off() {
        use crate::capture::LeaseMode;
        if unset("VIGIL_CAMERA_LEASES") {
            let config = parse(&[]).into_config().unwrap();
            assert_eq!(config.capture.leases, LeaseMode::Auto);
            assert!(config.capture.leases.enabled());
        }
        for (value, mode) in [
            ("auto", LeaseMode::Auto),
            ("on", LeaseMode::On),
            ("off", LeaseMode::Off),
        ] {
            let config = parse(&["--camera-leases", value]).into_config().unwrap();
            assert_eq!(config.capture.leases, mode);
            assert_eq!(mode.enabled(), value != "off");
        }
        assert!(ServeArgs::try_parse_from(["vigil", "--camera-leases", "maybe"]).is_err());
    }

    #[test]
    fn a_bad_or_repeated_camera_stops_startup_with_its_text() {
        let err = ServeArgs::try_parse_from(["vigil", "--camera", "id=a,source=usb:0"]).unwrap_err();
        assert!(err.to_string().contains("usb:0"), "{err}");
        let err = parse(&["--camera", "id=a,source=v4l2:0;id=a,source=v4l2:1"])
            .into_config()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::DuplicateCamera(ref id) if id.as_str() == "a"),
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
            Some(TlsFiles {
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
    fn mqtt_is_off_unless_a_url_is_given_and_a_bad_url_names_the_flag_not_the_password() {
        if unset("VIGIL_MQTT_URL") {
            assert!(parse(&[]).into_config().unwrap().mqtt.is_none());
        }
        assert!(parse(&["--mqtt-url", ""]).into_config().unwrap().mqtt.is_none());
        let config = parse(&[
            "--mqtt-url",
            "mqtt://ha:hunter2@broker",
            "--mqtt-discovery-prefix",
            "",
        ])
        .into_config()
        .unwrap();
        let mqtt = config.mqtt.as_ref().expect("MQTT settings");
        assert_eq!((mqtt.url.host.as_str(), mqtt.url.port), ("broker", 1883));
        assert_eq!(mqtt.discovery_prefix, None);
        assert!(!format!("{config:?}").contains("hunter2"));
        let args = parse(&["--mqtt-url", "mqtts://ha:hunter2@broker"]);
        assert!(!format!("{args:?}").contains("hunter2"));
        let err = args.into_config().unwrap_err().to_string();
        assert!(
            err.starts_with("--mqtt-url (VIGIL_MQTT_URL) mqtts:// is not supported"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = ServeArgs::try_parse_from(["vigil", "--mqtt-prefix", "a/#"]).unwrap_err();
        assert!(err.to_string().contains("wildcards"), "{err}");
    }

    #[test]
    fn retention_and_the_disk_guard_default_to_30_days_and_512_mib() {
        if unset("VIGIL_RETENTION_DAYS") && unset("VIGIL_MIN_FREE_DISK_MB") {
            let config = parse(&[]).into_config().unwrap();
            assert_eq!(config.retention.days, 30);
            assert_eq!(config.retention.unknown_face_days, 30);
            assert_eq!(config.min_free_disk_bytes, 512 * 1024 * 1024);
        }
        let config = parse(&["--retention-days", "0", "--min-free-disk-mb", "0"])
            .into_config()
            .unwrap();
        assert_eq!((config.retention.days, config.min_free_disk_bytes), (0, 0));
        assert!(ServeArgs::try_parse_from(["vigil", "--retention-days", "-1"]).is_err());
        assert!(ServeArgs::try_parse_from(["vigil", "--retention-days", "36501"]).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = "s".repeat(40);
        let config = parse(&["--jwt-secret", &secret]).into_config().unwrap();
        assert!(!format!("{config:?}").contains(&secret));
    }

    #[test]
    fn bad_values_stop_parsing_and_name_the_flag_and_the_variable() {
        use clap::CommandFactory;
        for (flag, value) in [
            ("--detect-threshold", "1.5"),
            ("--db-timeout-secs", "0"),
            ("--rate-limit-per-second", "0"),
            ("--ws-heartbeat-secs", "soon"),
            ("--ws-messages-per-second", "0"),
            ("--ws-message-burst", "0"),
        ] {
            let err = ServeArgs::try_parse_from(["vigil", flag, value]).unwrap_err();
            let text = with_env_hint(err, &ServeArgs::command()).render().to_string();
            assert!(text.contains(flag), "{text}");
            let env = format!(
                "VIGIL_{}",
                flag.trim_start_matches("--").replace('-', "_").to_uppercase()
            );
            assert!(text.contains(&env), "{env} not in {text}");
        }
    }

    #[test]
    fn durations_and_limits_arrive_typed() {
        let config = parse(&["--ws-heartbeat-secs", "3", "--rate-limit-per-second", "4"])
            .into_config()
            .unwrap();
        assert_eq!(config.hub.heartbeat, Duration::from_secs(3));
        assert_eq!(
            (
                config.hub.message_limit.per_second.get(),
                config.hub.message_limit.burst.get()
            ),
            (20, 40),
            "the defaults, far above what the dashboard sends"
        );
        assert_eq!(config.auth.rate_limit.per_second.get(), 4);
        assert_eq!(
            config.auth.rate_limit.burst.get(),
            4,
            "the burst defaults to the rate"
        );
    }
}
