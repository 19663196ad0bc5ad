//! Frame sources. Each runs until its input ends, fails, or `stop` is set,
//! and hands every frame to a [`FrameOut`].

pub mod dir;
pub mod ffmpeg;
pub mod v4l2;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use image::RgbImage;
use tokio::sync::watch;

use super::sampler::Latest;
use super::spec::{CameraSpec, SourceSpec};
use super::status::CameraStats;

/// Frames larger than this (longest side) are scaled down by ffmpeg: the
/// detector works at 640 anyway and a 4K frame would cost 25 MB per slot.
pub const MAX_FRAME_SIDE: u32 = 1280;

/// One frame as captured.
#[derive(Clone)]
pub struct CapturedFrame {
    pub image: Arc<RgbImage>,
    /// Capture time on the monotonic clock (the alarm policy's timeline).
    pub at: Instant,
    pub wall: DateTime<Utc>,
}

/// Where a source puts frames: the camera's newest-wins slot, with counting.
#[derive(Clone)]
pub struct FrameOut {
    pub slot: Arc<Latest<CapturedFrame>>,
    pub stats: Arc<CameraStats>,
}

impl FrameOut {
    pub fn push(&self, image: RgbImage) {
        let frame = CapturedFrame {
            image: Arc::new(image),
            at: Instant::now(),
            wall: Utc::now(),
        };
        let dropped = self.slot.put(frame.clone());
        self.stats.frame_captured(frame.wall, dropped);
    }
}

/// How a source run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The input has no more frames (end of file, stream closed).
    Exhausted,
    /// `stop` was set.
    Stopped,
}

/// Runs the camera's source once.
pub async fn run(
    spec: &CameraSpec,
    ffmpeg_program: &Path,
    out: &FrameOut,
    stop: &mut watch::Receiver<bool>,
) -> Result<Ended, String> {
    match &spec.source {
        SourceSpec::Ffmpeg { input } => ffmpeg::run(ffmpeg_program, input, spec, out, stop).await,
        SourceSpec::Dir { path } => dir::run(path, out, stop).await,
        SourceSpec::V4l2 { index } => v4l2::run(*index, spec.fps, out, stop).await,
    }
}

/// Resolves once `stop` is set (or its sender is gone: nobody can stop us
/// any more, so stopping is the safe reading).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}
