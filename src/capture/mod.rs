//! Camera and video capture: frame sources (V4L2 cameras, an ffmpeg child
//! process for files and streams, image folders), the newest-wins sampler
//! between a source and the detector, the per-camera alarm policy and the
//! supervisor that keeps sources running.
//!
//! ```text
//! source ──frames──▶ Latest (1 slot, drops counted) ──▶ DetectorPool ──▶ AlarmPolicy ──▶ AlarmSink
//!   ▲ reopened with backoff by camera::supervise                           (Recorder: images, detection, alarm, bus)
//! ```
//!
//! When several instances share a database, each camera captures on one
//! of them at a time: the holder of its lease in `camera_leases` ([`lease`]);
//! the others keep it on standby and take it over when the lease lapses.

pub mod camera;
pub mod lease;
mod leased;
pub mod manager;
pub mod metrics;
pub mod policy;
pub mod sampler;
pub mod source;
pub mod spec;
pub mod status;

pub use camera::{AlarmSink, CameraAlarm, CaptureDeps, RecorderSink, Tenure};
pub use lease::{CameraLeases, LeaseMode};
pub use manager::{Cameras, CamerasError};
pub use policy::{AlarmPolicy, AlarmReason};
pub use spec::{CameraId, CameraSpec, SourceSpec, SpecError};
pub use status::{CameraState, CameraStatus};

/// Validated capture settings of `vigil serve`.
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    /// Started with the server; ids are unique.
    pub cameras: Vec<CameraSpec>,
    /// The ffmpeg program of `ffmpeg:` sources (and of video jobs).
    pub ffmpeg: std::path::PathBuf,
    /// The ffprobe program that checks uploaded videos.
    pub ffprobe: std::path::PathBuf,
    /// Whether each camera runs on one instance at a time (`--camera-leases`).
    pub leases: LeaseMode,
}
