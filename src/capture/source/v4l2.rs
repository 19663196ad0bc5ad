//! Local cameras through nokhwa (cargo feature `camera`). nokhwa's capture
//! calls block, so the camera lives on a blocking thread of its own.

#[cfg(not(feature = "camera"))]
use super::{Ended, FrameOut};
#[cfg(not(feature = "camera"))]
use crate::capture::spec::Fps;
#[cfg(not(feature = "camera"))]
use tokio::sync::watch;

/// A local camera as `vigil cameras` lists it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub index: String,
    pub name: String,
    pub description: String,
}

#[cfg(feature = "camera")]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use image::RgbImage;
    use nokhwa::pixel_format::RgbFormat;
    use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};
    use nokhwa::Camera;
    use tokio::sync::watch;

    use super::DeviceInfo;
    use crate::capture::source::stopped;
    use crate::capture::source::{Ended, FrameOut};
    use crate::capture::spec::Fps;

    pub fn list() -> Result<Vec<DeviceInfo>, String> {
        nokhwa::query(ApiBackend::Video4Linux)
            .map(|cameras| {
                cameras
                    .into_iter()
                    .map(|c| DeviceInfo {
                        index: c.index().as_string(),
                        name: c.human_name(),
                        description: c.description().to_owned(),
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    pub async fn run(
        index: u32,
        fps: Fps,
        out: &FrameOut,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Ended, String> {
        let halt = Arc::new(AtomicBool::new(false));
        let thread_halt = halt.clone();
        let thread_out = out.clone();
        let mut capture = tokio::task::spawn_blocking(move || capture(index, fps, &thread_out, &thread_halt));
        tokio::select! {
            _ = stopped(stop) => {
                halt.store(true, Ordering::Relaxed);
                // One frame period at most: the loop checks the flag per frame.
                let _ = tokio::time::timeout(Duration::from_secs(5), capture).await;
                Ok(Ended::Stopped)
            }
            result = &mut capture => result.map_err(|e| format!("camera thread failed: {e}"))?,
        }
    }

    fn capture(index: u32, fps: Fps, out: &FrameOut, halt: &AtomicBool) -> Result<Ended, String> {
        let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let mut camera = Camera::new(CameraIndex::Index(index), format)
            .map_err(|e| format!("cannot open v4l2:{index}: {e}"))?;
        camera
            .open_stream()
            .map_err(|e| format!("cannot start v4l2:{index}: {e}"))?;
        let period = fps.period();
        let mut due = Instant::now();
        let result = loop {
            if halt.load(Ordering::Relaxed) {
                break Ok(Ended::Stopped);
            }
            let frame = match camera.frame() {
                Ok(frame) => frame,
                Err(e) => break Err(format!("v4l2:{index}: {e}")),
            };
            // The camera runs at its own rate; sample it at the camera's fps.
            let now = Instant::now();
            if now < due {
                continue;
            }
            due = now + period;
            let decoded = match frame.decode_image::<RgbFormat>() {
                Ok(decoded) => decoded,
                Err(e) => break Err(format!("v4l2:{index}: cannot decode frame: {e}")),
            };
            let (width, height) = (decoded.width(), decoded.height());
            match RgbImage::from_raw(width, height, decoded.into_raw()) {
                Some(image) => out.push(image),
                None => break Err(format!("v4l2:{index}: frame of unexpected size")),
            }
        };
        let _ = camera.stop_stream();
        result
    }
}

#[cfg(feature = "camera")]
pub use imp::{list, run};

#[cfg(not(feature = "camera"))]
pub fn list() -> Result<Vec<DeviceInfo>, String> {
    Err("this vigil was built without the `camera` feature".into())
}

#[cfg(not(feature = "camera"))]
pub async fn run(
    index: u32,
    _fps: Fps,
    _out: &FrameOut,
    _stop: &mut watch::Receiver<bool>,
) -> Result<Ended, String> {
    Err(format!(
        "v4l2:{index}: this vigil was built without the `camera` feature"
    ))
}
