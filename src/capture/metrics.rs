//! `/metrics` in the Prometheus text format (0.0.4): per-camera counters and
//! a few process figures that cost one read of /proc.

use std::fmt::Write;

use super::status::{CameraState, CameraStatus};

/// Process-wide figures the caller gathers.
pub struct ProcessFigures {
    pub detector_slots: usize,
    pub detector_slots_free: usize,
}

/// Reads one counter from a camera's status.
type Counter = fn(&CameraStatus) -> u64;

pub fn render(cameras: &[CameraStatus], process: &ProcessFigures) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, Counter); 5] = [
        (
            "vigil_camera_frames_captured_total",
            "Frames read from the camera's source.",
            |c| c.frames_captured,
        ),
        (
            "vigil_camera_frames_processed_total",
            "Frames searched for faces.",
            |c| c.frames_processed,
        ),
        (
            "vigil_camera_frames_dropped_total",
            "Frames replaced by a newer one before detection.",
            |c| c.frames_dropped,
        ),
        ("vigil_camera_alarms_total", "Alarms raised by the camera.", |c| {
            c.alarms_raised
        }),
        (
            "vigil_camera_restarts_total",
            "Times the camera's source was reopened after a failure.",
            |c| c.restarts,
        ),
    ];
    // Camera ids are restricted to [A-Za-z0-9_.-], so labels need no escaping.
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for camera in cameras {
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", camera.id, value(camera));
        }
    }
    let name = "vigil_camera_state";
    let _ = writeln!(
        out,
        "# HELP {name} 1 for the camera's current state.\n# TYPE {name} gauge"
    );
    for camera in cameras {
        for state in CameraState::ALL {
            let on = u8::from(camera.status == state);
            let _ = writeln!(
                out,
                "{name}{{camera=\"{}\",state=\"{}\"}} {on}",
                camera.id,
                state.as_str()
            );
        }
    }
    let name = "vigil_camera_last_frame_timestamp_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Unix time of the camera's last frame.\n# TYPE {name} gauge"
    );
    for camera in cameras {
        if let Some(at) = camera.last_frame_at {
            let seconds = at.timestamp_millis() as f64 / 1000.0;
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {seconds}", camera.id);
        }
    }
    gauge(
        &mut out,
        "vigil_cameras",
        "Cameras configured.",
        cameras.len() as f64,
    );
    gauge(
        &mut out,
        "vigil_detector_slots",
        "Detections that may run at once.",
        process.detector_slots as f64,
    );
    gauge(
        &mut out,
        "vigil_detector_slots_free",
        "Detection slots free right now.",
        process.detector_slots_free as f64,
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(kib) = field("VmRSS:") {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                kib * 1024.0,
            );
        }
        if let Some(threads) = field("Threads:") {
            gauge(&mut out, "process_threads", "OS threads of the process.", threads);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            &mut out,
            "process_open_fds",
            "Open file descriptors.",
            fds.count() as f64,
        );
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}
