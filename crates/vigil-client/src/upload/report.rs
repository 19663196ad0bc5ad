//! What `upload` prints: one line per image or frame on stdout (text, or
//! JSON with `--json`), the progress bar and the notes on stderr. The bar
//! is drawn only when stderr is a terminal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use vigil_ffmpeg::sampling::format_time;
use vigil_wire::detections::DetectionView;

use crate::error::ApiFailure;

/// An image file, or one frame of a video file.
#[derive(Debug, Clone)]
pub struct Item {
    file: Arc<str>,
    frame: Option<(u64, f64)>,
}

impl Item {
    pub fn file(file: Arc<str>) -> Self {
        Self { file, frame: None }
    }

    pub fn frame(file: Arc<str>, index: u64, seconds: f64) -> Self {
        Self {
            file,
            frame: Some((index, seconds)),
        }
    }

    pub(super) fn label(&self) -> String {
        match self.frame {
            Some((_, seconds)) => format!("{}@{}", self.file, format_time(seconds)),
            None => self.file.to_string(),
        }
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "file": &*self.file,
            "frame": self.frame.map(|(i, _)| i),
            "time": self.frame.map(|(_, t)| (t * 1000.0).round() / 1000.0),
        })
    }
}

/// The `--json` line of an image, frame or video that failed:
/// `{"file", "frame", "time", "ok": false, "error": {"status", "code", "message"}}`.
pub(super) fn failure_json(item: &Item, status: Option<u16>, code: &str, message: &str) -> Value {
    let mut line = item.json();
    line["ok"] = false.into();
    line["error"] = json!({"status": status, "code": code, "message": message});
    line
}

/// The text line of one that failed: `fail  FILE  [STATUS ]CODE: MESSAGE`.
pub(super) fn failure_text(item: &Item, status: Option<u16>, code: &str, message: &str) -> String {
    let status = status.map(|s| format!("{s} ")).unwrap_or_default();
    format!("fail  {}  {status}{code}: {message}", item.label())
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub uploaded: u64,
    pub with_faces: u64,
    pub failed: u64,
    pub rate_limit_waits: u64,
    /// Planned images and frames never sent (the run stopped early).
    planned_left: u64,
}

impl Totals {
    pub fn not_sent(&self) -> u64 {
        self.planned_left
    }
}

pub struct Reporter {
    json: bool,
    bar: ProgressBar,
    totals: Mutex<Totals>,
}

impl Reporter {
    pub fn new(json: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos}/{len} [{wide_bar}] {elapsed_precise}, ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self {
            json,
            bar,
            totals: Mutex::new(Totals::default()),
        }
    }

    fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `planned`: images plus the frames the videos are expected to give.
    pub fn start(&self, planned: u64) {
        self.bar.set_length(planned);
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    /// A video gave a frame beyond its estimate.
    pub fn more_than_planned(&self) {
        self.bar.inc_length(1);
    }

    /// A video ended `missing` frames short of its estimate.
    pub fn fewer_than_planned(&self, missing: u64) {
        if missing > 0 {
            let length = self.bar.length().unwrap_or(0);
            self.bar.set_length(length.saturating_sub(missing));
        }
    }

    fn line(&self, text: String) {
        self.bar.suspend(|| crate::emit(&text));
    }

    pub fn uploaded(&self, item: &Item, detection: &DetectionView) {
        {
            let mut totals = self.totals();
            totals.uploaded += 1;
            if detection.face_count > 0 {
                totals.with_faces += 1;
            }
        }
        self.bar.inc(1);
        if self.json {
            let mut line = item.json();
            line["ok"] = true.into();
            line["detection"] = serde_json::to_value(detection).expect("detections serialise");
            self.line(line.to_string());
        } else {
            let faces = if detection.face_count == 1 {
                "face "
            } else {
                "faces"
            };
            let alarm = detection
                .alarm_id
                .as_deref()
                .map(|a| format!("  alarm {a}"))
                .unwrap_or_default();
            self.line(format!(
                "ok    {}  {} {faces}  detection {}{alarm}",
                item.label(),
                detection.face_count,
                detection.id
            ));
        }
    }

    fn failure_line(&self, item: &Item, status: Option<u16>, code: &str, message: &str) {
        self.totals().failed += 1;
        let line = if self.json {
            failure_json(item, status, code, message).to_string()
        } else {
            failure_text(item, status, code, message)
        };
        self.line(line);
    }

    /// The server refused this image or frame.
    pub fn refused(&self, item: &Item, failure: &ApiFailure) {
        self.bar.inc(1);
        self.failure_line(
            item,
            Some(failure.status),
            failure.code.as_str(),
            &failure.message,
        );
    }

    /// A planned image or frame that could not be sent.
    pub fn failed_job(&self, item: &Item, code: &str, reason: &str) {
        self.bar.inc(1);
        self.failure_line(item, None, code, reason);
    }

    /// A whole input failed; `planned` of its frames leave the bar.
    pub fn failed_input(&self, item: &Item, planned: u64, code: &str, reason: &str) {
        self.fewer_than_planned(planned);
        self.failure_line(item, None, code, reason);
    }

    pub fn waiting(&self, failure: &ApiFailure, wait: Duration) {
        self.totals().rate_limit_waits += 1;
        let text = format!(
            "upload: {} ({}); waiting {:.1} s",
            failure.code,
            failure.message,
            wait.as_secs_f64()
        );
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// Clears the bar, prints the summary on stderr and returns the totals.
    pub fn finish(&self, elapsed: Duration) -> Totals {
        let length = self.bar.length().unwrap_or(0);
        let left = length.saturating_sub(self.bar.position());
        self.bar.finish_and_clear();
        let mut totals = *self.totals();
        totals.planned_left = left;
        let waits = match totals.rate_limit_waits {
            0 => String::new(),
            n => format!(", waited {n} time(s) for the rate limit"),
        };
        eprintln!(
            "upload: {} uploaded ({} with faces), {} failed in {:.1} s{waits}",
            totals.uploaded,
            totals.with_faces,
            totals.failed,
            elapsed.as_secs_f64()
        );
        totals
    }
}
