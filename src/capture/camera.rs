//! One camera's life: open the source, search frames for faces, apply the
//! alarm policy, reopen failed network sources with capped exponential
//! backoff, and keep its status current.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use image::RgbImage;
use tokio::sync::watch;

use super::policy::{AlarmPolicy, AlarmReason};
use super::sampler::Latest;
use super::source::{self, stopped, Ended, FrameOut};
use super::spec::{CameraId, CameraSpec};
use super::status::{CameraState, CameraStats};
use crate::detections::{AlarmTrigger, Frame, Original, Recorder, Source};
use crate::media::ImageKind;
use crate::vision::{encode_jpeg, Detection, DetectorPool};

/// First retry delay of a failed source; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run that delivered frames for this long was healthy: the next failure
/// starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// A frame that raised an alarm.
pub struct CameraAlarm {
    pub camera_id: CameraId,
    pub reason: AlarmReason,
    pub image: Arc<RgbImage>,
    pub detection: Detection,
    pub duration_ms: f64,
    pub captured_at: DateTime<Utc>,
}

/// Where alarms go: the recorder in the server, stdout in `vigil watch`.
pub trait AlarmSink: Send + Sync + 'static {
    fn raise(&self, alarm: CameraAlarm) -> BoxFuture<'_, Result<(), String>>;

    /// Every processed frame (for `vigil watch --every-frame`).
    fn frame(&self, _camera_id: &CameraId, _detection: &Detection, _duration_ms: f64) {}
}

/// Stores the frame, its annotated copy, a detection and an alarm, and
/// broadcasts the alarm, exactly as an upload would.
pub struct RecorderSink(pub Recorder);

impl AlarmSink for RecorderSink {
    fn raise(&self, alarm: CameraAlarm) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let image = alarm.image.clone();
            let original = tokio::task::spawn_blocking(move || encode_jpeg(&image))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            // A camera id is always a valid source label (narrower alphabet, same length).
            let source = Source::parse(alarm.camera_id.as_str()).map_err(|e| e.to_string())?;
            self.0
                .record_camera(Frame {
                    owner: None,
                    source,
                    camera_id: Some(alarm.camera_id.to_string()),
                    original: Original::Bytes {
                        bytes: original,
                        kind: ImageKind::Jpeg,
                    },
                    image: alarm.image,
                    detection: alarm.detection,
                    duration_ms: alarm.duration_ms,
                    alarm: AlarmTrigger::IfFaces,
                    captured_at: None,
                    message: None,
                    job: None,
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Until when this instance may raise a camera's alarms: for ever when
/// cameras are not leased; under a lease, until the end of the lease's safe
/// window, which each renewal moves on. Checked before every alarm, so that
/// a process that was paused past its lease (SIGSTOP, a stalled VM) cannot
/// raise one more alarm while its lease keeper is still waking up.
#[derive(Clone)]
pub struct Tenure(Option<Arc<std::sync::Mutex<Instant>>>);

impl Tenure {
    pub fn unlimited() -> Self {
        Self(None)
    }

    pub fn until(deadline: Instant) -> Self {
        Self(Some(Arc::new(std::sync::Mutex::new(deadline))))
    }

    /// Moves the deadline (a renewal, or `Instant::now()` to end it at once).
    pub fn set(&self, deadline: Instant) {
        if let Some(until) = &self.0 {
            *until.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
        }
    }

    pub fn holds(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|until| Instant::now() < *until.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What every camera task shares.
#[derive(Clone)]
pub struct CaptureDeps {
    pub detector: DetectorPool,
    pub sink: Arc<dyn AlarmSink>,
    pub ffmpeg: PathBuf,
}

/// The camera task: runs until the source finishes, fails for good, or
/// `stop` is set; raises alarms only while `tenure` holds.
pub async fn supervise(
    spec: CameraSpec,
    stats: Arc<CameraStats>,
    deps: CaptureDeps,
    mut stop: watch::Receiver<bool>,
    tenure: Tenure,
) {
    // One policy for the camera's whole life: a reconnect in the middle of a
    // visit is not a new appearance.
    let mut policy = AlarmPolicy::new(spec.cooldown);
    let mut delay = BACKOFF_MIN;
    loop {
        stats.set_state(CameraState::Starting);
        let started = Instant::now();
        let captured_before = stats.frames_captured.load(std::sync::atomic::Ordering::Relaxed);
        let result = run_once(&spec, &stats, &deps, &mut policy, &mut stop, &tenure).await;
        match result {
            Ok(Ended::Stopped) => {
                stats.set_state(CameraState::Stopped);
                return;
            }
            Ok(Ended::Exhausted) if !spec.source.is_network() => {
                tracing::info!("source finished");
                stats.set_state(CameraState::Finished);
                return;
            }
            // A live stream is not supposed to end: treat it as a failure.
            Ok(Ended::Exhausted) => stats.set_error("the stream ended"),
            Err(err) => {
                tracing::warn!(error = %err, "source failed");
                stats.set_error(err);
                if !spec.source.is_restartable() {
                    stats.set_state(CameraState::Failed);
                    return;
                }
            }
        }
        let delivered = stats.frames_captured.load(std::sync::atomic::Ordering::Relaxed) > captured_before;
        if delivered && started.elapsed() >= HEALTHY_RUN {
            delay = BACKOFF_MIN;
        }
        stats.set_backoff(Utc::now() + delay);
        tracing::info!(?delay, "reopening the source after a delay");
        tokio::select! {
            _ = stopped(&mut stop) => {
                stats.set_state(CameraState::Stopped);
                return;
            }
            _ = tokio::time::sleep(delay) => {}
        }
        stats.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Runs the source and the detector side by side until the source ends;
/// the detector then takes the last pending frame (the end of a file counts).
async fn run_once(
    spec: &CameraSpec,
    stats: &Arc<CameraStats>,
    deps: &CaptureDeps,
    policy: &mut AlarmPolicy,
    stop: &mut watch::Receiver<bool>,
    tenure: &Tenure,
) -> Result<Ended, String> {
    let out = FrameOut {
        slot: Arc::new(Latest::new()),
        stats: stats.clone(),
    };
    let mut consumer_stop = stop.clone();
    let producer = async {
        let result = source::run(spec, &deps.ffmpeg, &out, stop).await;
        out.slot.close();
        result
    };
    let consumer = async {
        tokio::select! {
            _ = stopped(&mut consumer_stop) => {}
            _ = process_frames(spec, &out.slot, stats, deps, policy, tenure) => {}
        }
    };
    let (result, ()) = tokio::join!(producer, consumer);
    result
}

async fn process_frames(
    spec: &CameraSpec,
    slot: &Latest<source::CapturedFrame>,
    stats: &CameraStats,
    deps: &CaptureDeps,
    policy: &mut AlarmPolicy,
    tenure: &Tenure,
) {
    use std::sync::atomic::Ordering::Relaxed;
    while let Some(frame) = slot.next().await {
        let started = Instant::now();
        let detection = match deps.detector.detect(frame.image.clone()).await {
            Ok(detection) => detection,
            Err(err) => {
                tracing::warn!(error = %err, "detection failed");
                stats.set_error(format!("detection failed: {err}"));
                continue;
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        stats.frames_processed.fetch_add(1, Relaxed);
        deps.sink.frame(&spec.id, &detection, duration_ms);
        let Some(reason) = policy.observe(frame.at, detection.faces.len()) else {
            continue;
        };
        if !tenure.holds() {
            // The lease keeper stops this task at once; the next holder
            // raises the alarms of its own frames.
            tracing::debug!("alarm not raised: the camera's lease ran out");
            continue;
        }
        let faces = detection.faces.len();
        let alarm = CameraAlarm {
            camera_id: spec.id.clone(),
            reason,
            image: frame.image,
            detection,
            duration_ms,
            captured_at: frame.wall,
        };
        match deps.sink.raise(alarm).await {
            Ok(()) => {
                tracing::debug!(faces, reason = reason.as_str(), "camera alarm");
                stats.alarm_raised(frame.wall);
            }
            Err(err) => {
                tracing::warn!(error = %err, "alarm could not be recorded");
                stats.set_error(format!("alarm not recorded: {err}"));
            }
        }
    }
}
