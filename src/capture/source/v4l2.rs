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

    use image::{ImageFormat, RgbImage};
    use nokhwa::pixel_format::RgbFormat;
    use nokhwa::utils::{ApiBackend, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
    use nokhwa::{Buffer, Camera};
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
            match to_rgb(&frame) {
                Ok(image) => out.push(image),
                Err(e) => break Err(format!("v4l2:{index}: cannot decode frame: {e}")),
            }
        };
        let _ = camera.stop_stream();
        result
    }

    /// The frame as RGB. MJPEG goes through the JPEG decoder uploads use:
    /// nokhwa's own would compile libjpeg-turbo from C into every build for
    /// this alone. The raw formats are nokhwa's.
    pub(super) fn to_rgb(frame: &Buffer) -> Result<RgbImage, String> {
        if frame.source_frame_format() == FrameFormat::MJPEG {
            return image::load_from_memory_with_format(frame.buffer(), ImageFormat::Jpeg)
                .map(|image| image.into_rgb8())
                .map_err(|e| e.to_string());
        }
        let decoded = frame.decode_image::<RgbFormat>().map_err(|e| e.to_string())?;
        let (width, height) = (decoded.width(), decoded.height());
        RgbImage::from_raw(width, height, decoded.into_raw())
            .ok_or_else(|| "frame of unexpected size".to_owned())
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

#[cfg(all(test, feature = "camera"))]
mod tests {
    use std::io::Cursor;

    use image::{ImageFormat, Rgb, RgbImage};
    use nokhwa::utils::{FrameFormat, Resolution};
    use nokhwa::Buffer;

    use super::imp::to_rgb;

    /// Left half red, right half blue.
    fn halves(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        })
    }

    fn close(actual: &Rgb<u8>, expected: [u8; 3], tolerance: u8) -> bool {
        actual
            .0
            .iter()
            .zip(expected)
            .all(|(a, e)| a.abs_diff(e) <= tolerance)
    }

    #[test]
    fn an_mjpeg_frame_is_decoded_to_its_pixels() {
        let picture = halves(64, 48);
        let mut jpeg = Vec::new();
        picture
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let frame = Buffer::new(Resolution::new(64, 48), &jpeg, FrameFormat::MJPEG);
        let image = to_rgb(&frame).unwrap();
        assert_eq!(image.dimensions(), (64, 48));
        assert!(
            close(image.get_pixel(8, 24), [220, 20, 20], 24),
            "{:?}",
            image.get_pixel(8, 24)
        );
        assert!(
            close(image.get_pixel(56, 24), [20, 20, 220], 24),
            "{:?}",
            image.get_pixel(56, 24)
        );
    }

    #[test]
    fn a_damaged_mjpeg_frame_is_an_error_not_a_panic() {
        let frame = Buffer::new(
            Resolution::new(64, 48),
            &[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3],
            FrameFormat::MJPEG,
        );
        assert!(to_rgb(&frame).is_err());
    }

    #[test]
    fn a_raw_rgb_frame_keeps_its_pixels() {
        let picture = halves(32, 16);
        let frame = Buffer::new(Resolution::new(32, 16), picture.as_raw(), FrameFormat::RAWRGB);
        assert_eq!(to_rgb(&frame).unwrap(), picture);
    }
}
