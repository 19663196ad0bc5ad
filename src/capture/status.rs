//! What a camera is doing, readable at any time by the API and `/metrics`
//! while its task updates it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::spec::CameraSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Opening the source (or waiting for its first frame).
    Starting,
    /// Frames are arriving.
    Running,
    /// The source failed; it is reopened after a delay.
    Backoff,
    /// A local file reached its end.
    Finished,
    /// The source failed and will not be retried (see `last_error`).
    Failed,
    /// Removed or shutting down.
    Stopped,
    /// Not run here: another instance holds the camera's lease (see
    /// `instance_id`), or the lease cannot be had yet; this instance takes
    /// the camera over when that lease lapses.
    Standby,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Starting => "starting",
            CameraState::Running => "running",
            CameraState::Backoff => "backoff",
            CameraState::Finished => "finished",
            CameraState::Failed => "failed",
            CameraState::Stopped => "stopped",
            CameraState::Standby => "standby",
        }
    }

    /// The task has ended and will not produce frames again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CameraState::Finished | CameraState::Failed | CameraState::Stopped
        )
    }

    pub const ALL: [CameraState; 7] = [
        CameraState::Starting,
        CameraState::Running,
        CameraState::Backoff,
        CameraState::Finished,
        CameraState::Failed,
        CameraState::Stopped,
        CameraState::Standby,
    ];
}

#[derive(Debug, Default)]
pub struct CameraStats {
    pub frames_captured: AtomicU64,
    pub frames_processed: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub alarms_raised: AtomicU64,
    pub restarts: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Option<CameraState>,
    last_frame_at: Option<DateTime<Utc>>,
    last_alarm_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    retry_at: Option<DateTime<Utc>>,
    runner: Option<String>,
}

impl CameraStats {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> CameraState {
        self.inner().state.unwrap_or(CameraState::Starting)
    }

    pub fn set_state(&self, state: CameraState) {
        let mut inner = self.inner();
        inner.state = Some(state);
        if state != CameraState::Backoff {
            inner.retry_at = None;
        }
    }

    pub fn set_backoff(&self, retry_at: DateTime<Utc>) {
        let mut inner = self.inner();
        inner.state = Some(CameraState::Backoff);
        inner.retry_at = Some(retry_at);
    }

    /// The instance running the camera, as far as this one knows.
    pub fn set_runner(&self, instance_id: Option<&str>) {
        self.inner().runner = instance_id.map(str::to_owned);
    }

    pub fn runner(&self) -> Option<String> {
        self.inner().runner.clone()
    }

    pub fn set_error(&self, error: impl Into<String>) {
        self.inner().last_error = Some(error.into());
    }

    /// A frame arrived from the source; `dropped` when it displaced one the
    /// detector never got to.
    pub fn frame_captured(&self, at: DateTime<Utc>, dropped: bool) {
        self.frames_captured.fetch_add(1, Ordering::Relaxed);
        if dropped {
            self.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner();
        inner.last_frame_at = Some(at);
        if inner.state != Some(CameraState::Running) {
            inner.state = Some(CameraState::Running);
        }
    }

    pub fn alarm_raised(&self, at: DateTime<Utc>) {
        self.alarms_raised.fetch_add(1, Ordering::Relaxed);
        self.inner().last_alarm_at = Some(at);
    }

    pub fn snapshot(&self, spec: &CameraSpec) -> CameraStatus {
        let inner = self.inner();
        CameraStatus {
            id: spec.id.to_string(),
            source: spec.source.redacted(),
            fps: spec.fps.get(),
            cooldown_secs: spec.cooldown.as_secs_f64(),
            r#loop: spec.looping,
            status: inner.state.unwrap_or(CameraState::Starting),
            last_frame_at: inner.last_frame_at,
            last_alarm_at: inner.last_alarm_at,
            last_error: inner.last_error.clone(),
            retry_at: inner.retry_at,
            instance_id: inner.runner.clone(),
            frames_captured: self.frames_captured.load(Ordering::Relaxed),
            frames_processed: self.frames_processed.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            alarms_raised: self.alarms_raised.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// A camera as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatus {
    #[schema(example = "front-door")]
    pub id: String,
    /// The source, with any URL password replaced by `***`.
    #[schema(example = "ffmpeg:rtsp://viewer:***@10.0.0.5/stream")]
    pub source: String,
    #[schema(example = 5.0)]
    pub fps: f64,
    #[schema(example = 10.0)]
    pub cooldown_secs: f64,
    pub r#loop: bool,
    pub status: CameraState,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub last_alarm_at: Option<DateTime<Utc>>,
    /// The most recent failure (kept after recovery, for diagnosis).
    #[schema(example = "rtsp://10.0.0.5/stream: Connection refused")]
    pub last_error: Option<String>,
    /// When a source in `backoff` is reopened.
    pub retry_at: Option<DateTime<Utc>>,
    /// The vigil instance running the camera: this one, unless the camera
    /// is on `standby` here, then the one holding its lease; null when none
    /// does (no instance holds the lease, or the database cannot be reached).
    #[schema(example = "3f1c0a7e9b2d4c6a8e0f1a2b3c4d5e6f")]
    pub instance_id: Option<String>,
    /// Frames read from the source (at the camera's fps).
    pub frames_captured: u64,
    /// Frames searched for faces.
    pub frames_processed: u64,
    /// Frames replaced by a newer one before the detector was free.
    pub frames_dropped: u64,
    pub alarms_raised: u64,
    /// Times the source was reopened after a failure.
    pub restarts: u64,
}
