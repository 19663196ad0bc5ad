//! A camera under a lease: on standby while another instance holds it,
//! captured here while this one does.
//!
//! ```text
//!          lease taken                        renewal finds another holder, or
//! standby ────────────▶ held: capturing ──── the safe window ends unrenewed ───▶ standby
//!    ▲ retried every heartbeat, and          │ stop (removal, shutdown): capture stopped, then lease released
//!    └ as soon as the holder's lease lapses  │ source failed for good here: lease released for another instance
//! ```
//!
//! The holder stops capturing one heartbeat before its lease would run
//! out unrenewed, and no other instance can take the lease before it has
//! run out: the old holder has stopped before the new one starts, so two
//! instances never raise the same alarm.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::Instrument;

use super::camera::{supervise, CaptureDeps, Tenure};
use super::lease::{CameraLeases, Claim};
use super::manager::stop_task;
use super::source::stopped;
use super::spec::CameraSpec;
use super::status::{CameraState, CameraStats};

/// How long a clean stop waits for the lease to be released; past it the
/// lease runs out on its own.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest wait between two attempts to take a lease.
const MIN_RETRY: Duration = Duration::from_millis(20);

pub(super) struct LeasedCamera {
    pub spec: CameraSpec,
    pub stats: Arc<CameraStats>,
    pub deps: CaptureDeps,
    pub leases: CameraLeases,
}

/// How a stretch of holding the lease ended.
enum Held {
    /// Asked to stop: capture is stopped, the lease still ours.
    Stopped,
    /// Lost, or run out unrenewed: capture is stopped.
    Lost,
    /// The source failed for good here: capture has ended.
    Failed,
}

impl LeasedCamera {
    /// The camera task: runs until `stop` is set.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // A file played to its end here is not replayed after the lease
        // comes back (it would raise its alarms again).
        let mut finished = false;
        loop {
            let Some(sent) = self.standby(&mut stop).await else {
                self.stats.set_state(CameraState::Stopped);
                return;
            };
            match self.hold(sent, &mut finished, &mut stop).await {
                Held::Lost => {}
                Held::Stopped => {
                    self.release().await;
                    self.stats.set_state(CameraState::Stopped);
                    return;
                }
                Held::Failed => {
                    tracing::info!("the camera failed here: releasing its lease for another instance");
                    self.release().await;
                    self.stats.set_runner(None);
                    stopped(&mut stop).await;
                    return;
                }
            }
        }
    }

    /// Tries to take the lease every heartbeat, and as soon as the
    /// holder's lapses, until it gets it; returns when the winning attempt
    /// was sent, or `None` when asked to stop first.
    async fn standby(&self, stop: &mut watch::Receiver<bool>) -> Option<Instant> {
        let heartbeat = self.leases.heartbeat();
        let mut unreachable = false;
        let mut holder: Option<String> = None;
        self.stats.set_state(CameraState::Standby);
        loop {
            let sent = Instant::now();
            let attempt = tokio::select! {
                biased;
                () = stopped(stop) => return None,
                attempt = self.leases.acquire(&self.spec.id, Utc::now()) => attempt,
            };
            let wait = match attempt {
                Ok(Claim::Acquired { expires_at }) => {
                    tracing::info!(%expires_at, "camera lease acquired: capturing here");
                    self.stats.set_runner(Some(self.leases.instance_id()));
                    return Some(sent);
                }
                Ok(Claim::Held(row)) => {
                    if holder.as_deref() != Some(row.holder.as_str()) {
                        tracing::info!(
                            holder = %row.holder,
                            expires_at = %row.expires_at,
                            "camera on standby: another instance holds its lease"
                        );
                    }
                    self.stats.set_runner(Some(&row.holder));
                    unreachable = false;
                    let left = (row.expires_at - Utc::now()).to_std().unwrap_or_default();
                    holder = Some(row.holder);
                    (left + MIN_RETRY).min(heartbeat)
                }
                Ok(Claim::Released) => MIN_RETRY,
                Err(err) => {
                    if unreachable {
                        tracing::debug!(error = %err, "cannot take the camera lease");
                    } else {
                        tracing::warn!(
                            error = %err,
                            "cannot take the camera lease: on standby, retrying every heartbeat"
                        );
                    }
                    unreachable = true;
                    holder = None;
                    self.stats.set_runner(None);
                    heartbeat
                }
            };
            tokio::select! {
                biased;
                () = stopped(stop) => return None,
                () = sleep(wait) => {}
            }
        }
    }

    /// Captures while the lease is ours, renewing it every heartbeat.
    /// `sent`: when the request that took the lease was sent.
    async fn hold(&self, sent: Instant, finished: &mut bool, stop: &mut watch::Receiver<bool>) -> Held {
        let heartbeat = self.leases.heartbeat();
        let window = self.leases.safe_window();
        let mut valid_until = sent + window;
        let mut next_renewal = sent + heartbeat;
        let tenure = Tenure::until(valid_until.into_std());
        let mut capture = if *finished {
            self.stats.set_state(CameraState::Finished);
            None
        } else {
            Some(Capture::start(self, tenure.clone()))
        };
        let mut failing = false;
        loop {
            tokio::select! {
                biased;
                () = stopped(stop) => {
                    Capture::stop(capture).await;
                    return Held::Stopped;
                }
                () = sleep_until(valid_until) => {
                    tenure.set(std::time::Instant::now());
                    Capture::stop(capture).await;
                    tracing::warn!(
                        lease = ?self.leases.duration(),
                        "camera lease not renewed in time: capture stopped until the lease is taken again"
                    );
                    self.stats.set_runner(None);
                    return Held::Lost;
                }
                () = Capture::ended(&mut capture) => {
                    capture = None;
                    if self.stats.state() == CameraState::Failed {
                        return Held::Failed;
                    }
                    // Finished: the lease is kept, so that no other instance
                    // plays the file again.
                    *finished = true;
                    continue;
                }
                () = sleep_until(next_renewal) => {}
            }
            let sent = Instant::now();
            let renewal = tokio::select! {
                biased;
                () = stopped(stop) => {
                    Capture::stop(capture).await;
                    return Held::Stopped;
                }
                // The window's own branch above stops capture.
                () = sleep_until(valid_until) => continue,
                renewal = self.leases.renew(&self.spec.id, Utc::now()) => renewal,
            };
            match renewal {
                Ok(true) => {
                    if failing {
                        tracing::info!("camera lease renewed again");
                    }
                    failing = false;
                    valid_until = sent + window;
                    tenure.set(valid_until.into_std());
                    next_renewal = sent + heartbeat;
                }
                Ok(false) => {
                    tenure.set(std::time::Instant::now());
                    Capture::stop(capture).await;
                    tracing::warn!("camera lease lost to another instance: capture stopped");
                    return Held::Lost;
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(
                            error = %err,
                            capturing_for = ?valid_until.saturating_duration_since(Instant::now()),
                            "cannot renew the camera lease; capturing until it would run out"
                        );
                    }
                    failing = true;
                    // Sooner than a heartbeat: the window is only two long.
                    next_renewal = Instant::now() + heartbeat / 2;
                }
            }
        }
    }

    async fn release(&self) {
        match tokio::time::timeout(RELEASE_TIMEOUT, self.leases.release(&self.spec.id)).await {
            Ok(Ok(true)) => tracing::info!("camera lease released"),
            Ok(Ok(false)) => tracing::debug!("no camera lease to release"),
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                lease = ?self.leases.duration(),
                "could not release the camera lease; it runs out on its own"
            ),
            Err(_) => tracing::warn!(
                lease = ?self.leases.duration(),
                "the camera lease was not released in time; it runs out on its own"
            ),
        }
    }
}

/// The capture task while this instance holds the lease. Aborted when
/// dropped (the keeper itself was aborted), which kills its ffmpeg.
struct Capture {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Capture {
    fn start(camera: &LeasedCamera, tenure: Tenure) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(
            supervise(
                camera.spec.clone(),
                camera.stats.clone(),
                camera.deps.clone(),
                stop_rx,
                tenure,
            )
            .in_current_span(),
        );
        Self { stop, task }
    }

    /// Resolves when capture ends by itself (never when it does not run).
    async fn ended(capture: &mut Option<Self>) {
        match capture {
            Some(capture) => {
                let _ = (&mut capture.task).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Stops capture, if it runs, and waits until its source is closed; the
    /// camera is then on standby here.
    async fn stop(capture: Option<Self>) {
        if let Some(mut capture) = capture {
            stop_task(&capture.stop, &mut capture.task).await;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}
