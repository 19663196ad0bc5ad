//! `vigil watch SRC...`: runs sources from the command line with the real
//! capture pipeline and prints alarms, to try a camera or measure throughput.
//! Needs the model, not the database.
//!
//! With `--forward URL` it is an edge agent: each alarm is also queued on
//! disk and sent to a central vigil server. The queue and the sender live in
//! the client crate, which this library does not depend on; the binary
//! plugs them in through [`Forward`] and [`watch`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::BoxFuture;

use super::detect::MAX_THREADS;
use crate::capture::spec::{is_url, parse_cooldown, Fps, DEFAULT_FPS};
use crate::capture::{
    AlarmSink, CameraAlarm, CameraId, CameraSpec, Cameras, CaptureDeps, SourceSpec, SpecError,
};
use crate::vision::{annotate_jpeg, Detection, Detector, DetectorConfig, DetectorPool};

/// The longest `--duration`: a year, far beyond any trial run, and small
/// enough that no deadline computed from it can overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// `--duration`: seconds from 0 to [`MAX_DURATION`], fractions allowed.
fn run_duration(raw: &str) -> Result<Duration, String> {
    let max = MAX_DURATION.as_secs();
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|secs| (0.0..=MAX_DURATION.as_secs_f64()).contains(secs))
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("must be a number of seconds from 0 to {max} (a year), got `{raw}`"))
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Sources: v4l2:INDEX, ffmpeg:URL_OR_FILE or dir:PATH (several run side by side).
    #[arg(required = true, value_name = "SRC")]
    pub sources: Vec<String>,
    /// Frames per second searched for faces, per source (0.001-60).
    #[arg(long, default_value_t = DEFAULT_FPS)]
    pub fps: Fps,
    /// Seconds between alarms while faces stay in view (0-86400).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_cooldown)]
    pub cooldown: Duration,
    /// Replay local files forever.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop after this many seconds, at most a year (default: when every source has ended; Ctrl-C stops too).
    #[arg(long, value_name = "SECS", value_parser = run_duration)]
    pub duration: Option<Duration>,
    /// Print every processed frame, not only alarms.
    #[arg(long)]
    pub every_frame: bool,
    /// Save each alarm's annotated frame into DIR.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Minimum face score, 0-1.
    #[arg(long, default_value_t = DetectorConfig::default().score_threshold)]
    pub threshold: f32,
    /// Detections running at once, 1-1024 (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_THREADS)))]
    pub concurrency: Option<u32>,
    /// The ffmpeg program.
    #[arg(long, env = "VIGIL_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// Directory holding centerface.onnx.
    #[arg(long, env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Be an edge agent: send every alarm to this central vigil server (http:// or https://), keeping
    /// them in an on-disk queue while it cannot be reached.
    #[arg(long, env = "VIGIL_FORWARD", value_name = "URL", help_heading = "Edge agent")]
    pub forward: Option<String>,
    /// The API key alarms are sent with (a full key, or one made with the scope alarms:write).
    #[arg(
        long,
        env = "VIGIL_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Edge agent"
    )]
    pub api_key: Option<String>,
    /// Where alarms wait for the central server, one file each; what a run leaves there is sent first by
    /// the next.
    #[arg(
        long,
        env = "VIGIL_QUEUE_DIR",
        value_name = "DIR",
        default_value = "vigil-agent-queue",
        help_heading = "Edge agent"
    )]
    pub queue_dir: PathBuf,
    /// Most alarms kept waiting (1-10000000); beyond it new alarms are dropped and counted.
    #[arg(
        long,
        env = "VIGIL_QUEUE_MAX",
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=10_000_000),
        help_heading = "Edge agent"
    )]
    pub queue_max: u32,
    /// This agent's name: alarms come from NAME/cam1, NAME/cam2… (1-48 characters, no `/`; default: the
    /// host name).
    #[arg(
        long,
        env = "VIGIL_AGENT_NAME",
        value_name = "NAME",
        value_parser = parse_agent_name,
        help_heading = "Edge agent"
    )]
    pub agent_name: Option<String>,
    /// PEM file of the CA that signed the central server's certificate; trusted instead of the public roots.
    #[arg(long, env = "VIGIL_CA_CERT", value_name = "PEM", help_heading = "Edge agent")]
    pub ca_cert: Option<PathBuf>,
}

/// Longest `--agent-name`: with `/cam` and a camera number it stays within
/// the 64 characters the server takes as a source.
pub const MAX_AGENT_NAME: usize = 48;

/// `--agent-name`: 1-[`MAX_AGENT_NAME`] characters, no `/` (it separates
/// the agent from the camera), no control characters.
pub fn parse_agent_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_AGENT_NAME
        || name.chars().any(|c| c == '/' || c.is_control())
    {
        return Err(format!(
            "must be 1-{MAX_AGENT_NAME} characters without `/` or control characters, got `{raw}`"
        ));
    }
    Ok(name.to_owned())
}

/// What `vigil watch` does with each alarm beside printing it: with
/// `--forward`, the edge agent's queue (implemented by the binary).
pub trait Forward: Send + Sync + 'static {
    /// Takes an alarm before its line is printed, so that a printed alarm
    /// is a kept one. An error is the camera's (`alarm not recorded`).
    fn alarm<'a>(&'a self, alarm: &'a CameraAlarm) -> BoxFuture<'a, Result<(), String>>;

    /// Capture has stopped (sources ended, `--duration` or Ctrl-C): send
    /// what can be sent within a few seconds and print the summary. `false`
    /// when forwarding failed for good (the run then exits with failure).
    fn finish(&self) -> BoxFuture<'_, bool>;
}

struct PrintSink {
    save: Option<PathBuf>,
    every_frame: bool,
    forward: Option<Arc<dyn Forward>>,
}

impl AlarmSink for PrintSink {
    fn raise(&self, alarm: CameraAlarm) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let forwarded = match &self.forward {
                Some(forward) => forward.alarm(&alarm).await,
                None => Ok(()),
            };
            let mut line = format!(
                "{} alarm camera={} faces={} reason={}",
                alarm
                    .captured_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                alarm.camera_id,
                alarm.detection.faces.len(),
                alarm.reason.as_str(),
            );
            if let Some(dir) = &self.save {
                let name = format!(
                    "{}-{}.jpg",
                    alarm.camera_id,
                    alarm.captured_at.format("%Y%m%dT%H%M%S%.3f")
                );
                let path = dir.join(name);
                let (image, faces) = (alarm.image.clone(), alarm.detection.faces.clone());
                let jpeg = tokio::task::spawn_blocking(move || annotate_jpeg(&image, &faces))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                tokio::fs::write(&path, jpeg).await.map_err(|e| e.to_string())?;
                line.push_str(&format!(" saved={}", path.display()));
            }
            if let Err(err) = &forwarded {
                line.push_str(&format!(" not_queued={err:?}"));
            }
            println!("{line}");
            forwarded
        })
    }

    fn frame(&self, camera_id: &crate::capture::CameraId, detection: &Detection, duration_ms: f64) {
        if self.every_frame {
            println!(
                "frame camera={camera_id} faces={} detect_ms={duration_ms:.1}",
                detection.faces.len()
            );
        }
    }
}

/// The `i`th source on the command line, with the flags every source shares.
fn watched(i: usize, text: &str, args: &WatchArgs) -> Result<CameraSpec, SpecError> {
    let id = CameraId::parse(&format!("cam{}", i + 1))?;
    let source: SourceSpec = text.parse()?;
    // --loop applies to the local files among the sources and leaves the rest alone.
    let looping = args.looping && matches!(&source, SourceSpec::Ffmpeg { input } if !is_url(input));
    CameraSpec::new(id, source, args.fps, args.cooldown, looping)
}

/// `vigil watch` without forwarding (the binary runs [`watch`] with its
/// forwarder when `--forward` is given).
pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.forward.is_none(),
        "--forward is handled by the vigil binary, not by this library"
    );
    super::block_on(watch(args, None))
}

/// Runs the sources until they end, `--duration` passes or Ctrl-C, printing
/// alarms and handing each to `forward` if given; then stops capture, lets
/// `forward` finish, and prints the summary.
///
/// Boxed where it is made, so that the binary, which awaits it, does not
/// compile the capture pipeline again (see [`super`]).
pub fn watch(
    args: WatchArgs,
    forward: Option<Arc<dyn Forward>>,
) -> BoxFuture<'static, anyhow::Result<ExitCode>> {
    Box::pin(watch_sources(args, forward))
}

async fn watch_sources(args: WatchArgs, forward: Option<Arc<dyn Forward>>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold must be between 0 and 1"
    );
    let specs = args
        .sources
        .iter()
        .enumerate()
        .map(|(i, text)| watched(i, text, &args).with_context(|| format!("source `{text}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(dir) = &args.save {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let config = DetectorConfig {
        score_threshold: args.threshold,
        ..DetectorConfig::default()
    };
    let models_dir = args.models_dir.clone();
    let detector = tokio::task::spawn_blocking(move || Detector::load(&models_dir, config)).await??;
    let concurrency = args
        .concurrency
        .map_or_else(crate::vision::default_threads, |n| n as usize);
    let cameras = Cameras::new(CaptureDeps {
        detector: DetectorPool::new(Arc::new(detector), concurrency),
        sink: Arc::new(PrintSink {
            save: args.save.clone(),
            every_frame: args.every_frame,
            forward: forward.clone(),
        }),
        ffmpeg: args.ffmpeg.clone(),
    });
    for spec in &specs {
        eprintln!("{}: {}", spec.id, spec.source.redacted());
        cameras.add(spec.clone())?;
    }
    let started = Instant::now();
    let deadline = args.duration;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if deadline.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if cameras.list().iter().all(|c| c.status.is_terminal()) {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let statuses = cameras.list();
    cameras.shutdown().await;
    let mut failed = false;
    for c in &statuses {
        failed |= c.status == crate::capture::CameraState::Failed;
        println!(
            "summary camera={} status={} seconds={elapsed:.1} frames_captured={} frames_processed={} frames_dropped={} alarms={} processed_fps={:.2}{}",
            c.id,
            c.status.as_str(),
            c.frames_captured,
            c.frames_processed,
            c.frames_dropped,
            c.alarms_raised,
            c.frames_processed as f64 / elapsed,
            c.last_error
                .as_deref()
                .map(|e| format!(" last_error={e:?}"))
                .unwrap_or_default(),
        );
    }
    if let Some(forward) = &forward {
        failed |= !forward.finish().await;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `vigil cameras`: the local V4L2 devices.
pub fn list_devices() -> anyhow::Result<ExitCode> {
    match crate::capture::source::v4l2::list() {
        Ok(devices) if devices.is_empty() => {
            println!("no V4L2 cameras found (no /dev/video* device on this machine)");
        }
        Ok(devices) => {
            for d in devices {
                println!("v4l2:{}\t{}\t{}", d.index, d.name, d.description);
            }
        }
        Err(err) => {
            let none = !std::path::Path::new("/dev").read_dir().is_ok_and(|mut entries| {
                entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("video")))
            });
            if none {
                println!("no V4L2 cameras found (no /dev/video* device on this machine)");
            } else {
                anyhow::bail!("cannot list V4L2 cameras: {err}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
