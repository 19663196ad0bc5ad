//! The cameras' series, set from their status when `/metrics` is scraped:
//! the status is the one count, shared with `GET /api/v1/cameras`.

use super::status::{CameraState, CameraStatus};
use crate::observability::series;

/// Reads one counter from a camera's status.
type Counter = fn(&CameraStatus) -> u64;

const COUNTERS: [(&str, Counter); 5] = [
    (series::CAMERA_FRAMES_CAPTURED, |c| c.frames_captured),
    (series::CAMERA_FRAMES_PROCESSED, |c| c.frames_processed),
    (series::CAMERA_FRAMES_DROPPED, |c| c.frames_dropped),
    (series::CAMERA_ALARMS, |c| c.alarms_raised),
    (series::CAMERA_RESTARTS, |c| c.restarts),
];

/// Sets every camera's series in the current recorder.
pub fn record(cameras: &[CameraStatus]) {
    ::metrics::gauge!(series::CAMERAS).set(cameras.len() as f64);
    for camera in cameras {
        let id = camera.id.to_string();
        for (name, value) in COUNTERS {
            ::metrics::counter!(name, "camera" => id.clone()).absolute(value(camera));
        }
        for state in CameraState::ALL {
            let on = f64::from(u8::from(camera.status == state));
            ::metrics::gauge!(series::CAMERA_STATE, "camera" => id.clone(), "state" => state.as_str())
                .set(on);
        }
        if let Some(at) = camera.last_frame_at {
            ::metrics::gauge!(series::CAMERA_LAST_FRAME, "camera" => id.clone())
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
    }
}
