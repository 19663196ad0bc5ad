//! The set of running cameras: started from the configuration, added and
//! removed at runtime by admins, all stopped (and their ffmpeg children
//! reaped) on shutdown. With leases, each camera captures only while this
//! instance holds its lease ([`super::leased`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::camera::{supervise, CaptureDeps, Tenure};
use super::lease::CameraLeases;
use super::leased::LeasedCamera;
use super::spec::{CameraId, CameraSpec};
use super::status::{CameraState, CameraStats, CameraStatus};
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

/// Who decides that a camera runs here.
#[derive(Clone)]
enum Runner {
    /// `vigil watch`: this process alone, no instance, no database.
    Local,
    /// A server that runs every camera it is given (`--camera-leases off`).
    Instance(Arc<str>),
    /// A server that runs a camera only while it holds the camera's lease.
    Leased(CameraLeases),
}

/// Cheap to clone; clones share the cameras.
#[derive(Clone)]
pub struct Cameras {
    deps: CaptureDeps,
    runner: Runner,
    /// Where camera tasks run: the runtime that made the cameras, not that
    /// of the HTTP worker whose request adds one. A worker's runtime goes
    /// away when the server stops accepting requests, before the cameras'
    /// shutdown, which must still stop them cleanly (and release their
    /// leases).
    runtime: tokio::runtime::Handle,
    running: Arc<Mutex<Option<BTreeMap<CameraId, Running>>>>,
}

impl Cameras {
    /// Cameras of this process alone (`vigil watch`). Called within the
    /// runtime the camera tasks are to run on.
    pub fn new(deps: CaptureDeps) -> Self {
        Self {
            deps,
            runner: Runner::Local,
            runtime: tokio::runtime::Handle::current(),
            running: Arc::new(Mutex::new(Some(BTreeMap::new()))),
        }
    }

    /// Cameras of the server instance `instance_id`: leased when `leases`
    /// is given, else all run here.
    pub fn for_instance(deps: CaptureDeps, instance_id: &str, leases: Option<CameraLeases>) -> Self {
        Self {
            runner: match leases {
                Some(leases) => Runner::Leased(leases),
                None => Runner::Instance(instance_id.into()),
            },
            ..Self::new(deps)
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
        let task = match &self.runner {
            Runner::Leased(leases) => {
                stats.set_state(CameraState::Standby);
                let camera = LeasedCamera {
                    spec: spec.clone(),
                    stats: stats.clone(),
                    deps: self.deps.clone(),
                    leases: leases.clone(),
                };
                self.runtime.spawn(camera.run(stop_rx).instrument(span))
            }
            Runner::Instance(_) | Runner::Local => {
                if let Runner::Instance(id) = &self.runner {
                    stats.set_runner(Some(id));
                }
                let capture = supervise(
                    spec.clone(),
                    stats.clone(),
                    self.deps.clone(),
                    stop_rx,
                    Tenure::unlimited(),
                );
                self.runtime.spawn(capture.instrument(span))
            }
        };
        tracing::info!(
            camera = %spec.id,
            source = %spec.source.redacted(),
            fps = spec.fps.get(),
            leased = matches!(self.runner, Runner::Leased(_)),
            "camera added"
        );
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

    /// The cameras with a retention of their own (`retention=DAYS`).
    pub fn retention_days(&self) -> Vec<(CameraId, u32)> {
        self.lock()
            .as_ref()
            .map(|running| {
                running
                    .values()
                    .filter_map(|r| Some((r.spec.id.clone(), r.spec.retention_days?)))
                    .collect()
            })
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
    stop_task(&camera.stop, &mut camera.task)
        .instrument(tracing::info_span!("camera", id = %camera.spec.id))
        .await;
}

/// Asks a camera task to stop and waits for it; aborts it if it takes too long.
pub(super) async fn stop_task(stop: &watch::Sender<bool>, task: &mut JoinHandle<()>) {
    let _ = stop.send(true);
    if tokio::time::timeout(STOP_TIMEOUT, &mut *task).await.is_err() {
        // Dropping the task drops its ffmpeg child, which kill_on_drop kills.
        tracing::warn!("camera did not stop in time; aborting it");
        task.abort();
        let _ = task.await;
    }
}
