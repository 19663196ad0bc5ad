//! The set of running cameras: started from the configuration, added and
//! removed at runtime by admins, all stopped (and their ffmpeg children
//! reaped) on shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::camera::{supervise, CaptureDeps};
use super::spec::{CameraId, CameraSpec};
use super::status::{CameraStats, CameraStatus};
use crate::error::{Coded, ErrorCode};

/// Time a camera task gets to stop its source before it is aborted.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CamerasError {
    #[error("a camera with id `{0}` already exists")]
    Exists(CameraId),
    #[error("no camera with id `{0}`")]
    NotFound(CameraId),
    #[error("capture is shutting down")]
    ShuttingDown,
}

impl Coded for CamerasError {
    fn code(&self) -> ErrorCode {
        match self {
            CamerasError::Exists(_) => ErrorCode::CameraExists,
            CamerasError::NotFound(_) => ErrorCode::NotFound,
            CamerasError::ShuttingDown => ErrorCode::NotReady,
        }
    }
}

struct Running {
    spec: CameraSpec,
    stats: Arc<CameraStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Cheap to clone; clones share the cameras.
#[derive(Clone)]
pub struct Cameras {
    deps: CaptureDeps,
    running: Arc<Mutex<Option<BTreeMap<CameraId, Running>>>>,
}

impl Cameras {
    pub fn new(deps: CaptureDeps) -> Self {
        Self {
            deps,
            running: Arc::new(Mutex::new(Some(BTreeMap::new()))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BTreeMap<CameraId, Running>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a camera. Never fails because of the source: a source that
    /// cannot be opened shows up in the camera's status instead.
    pub fn add(&self, spec: CameraSpec) -> Result<CameraStatus, CamerasError> {
        let mut guard = self.lock();
        let running = guard.as_mut().ok_or(CamerasError::ShuttingDown)?;
        if running.contains_key(&spec.id) {
            return Err(CamerasError::Exists(spec.id));
        }
        let stats = Arc::new(CameraStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("camera", id = %spec.id, source = %spec.source.redacted());
        let task =
            tokio::spawn(supervise(spec.clone(), stats.clone(), self.deps.clone(), stop_rx).instrument(span));
        tracing::info!(camera = %spec.id, source = %spec.source.redacted(), fps = spec.fps.get(), "camera added");
        let status = stats.snapshot(&spec);
        running.insert(
            spec.id.clone(),
            Running {
                spec,
                stats,
                stop,
                task,
            },
        );
        Ok(status)
    }

    pub fn list(&self) -> Vec<CameraStatus> {
        self.lock()
            .as_ref()
            .map(|running| running.values().map(|r| r.stats.snapshot(&r.spec)).collect())
            .unwrap_or_default()
    }

    pub fn get(&self, id: &CameraId) -> Option<CameraStatus> {
        self.lock()
            .as_ref()
            .and_then(|running| running.get(id).map(|r| r.stats.snapshot(&r.spec)))
    }

    /// Stops a camera and waits until its source is closed.
    pub async fn remove(&self, id: &CameraId) -> Result<(), CamerasError> {
        let camera = self
            .lock()
            .as_mut()
            .and_then(|running| running.remove(id))
            .ok_or_else(|| CamerasError::NotFound(id.clone()))?;
        stop(camera).await;
        tracing::info!(camera = %id, "camera removed");
        Ok(())
    }

    /// Stops every camera (no more can be added) and waits for them.
    pub async fn shutdown(&self) {
        let Some(running) = self.lock().take() else {
            return;
        };
        if running.is_empty() {
            return;
        }
        tracing::info!(cameras = running.len(), "stopping cameras");
        futures_util::future::join_all(running.into_values().map(stop)).await;
    }
}

async fn stop(mut camera: Running) {
    let _ = camera.stop.send(true);
    if tokio::time::timeout(STOP_TIMEOUT, &mut camera.task)
        .await
        .is_err()
    {
        // Dropping the task drops its ffmpeg child, which kill_on_drop kills.
        tracing::warn!(camera = %camera.spec.id, "camera did not stop in time; aborting it");
        camera.task.abort();
        let _ = camera.task.await;
    }
}
