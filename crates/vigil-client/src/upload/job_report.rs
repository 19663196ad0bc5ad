//! What `upload --server-side` prints for a video sent whole: while it
//! uploads and while the server's job runs, a bar on stderr (drawn only on
//! a terminal); on stdout, with `--json`, one line per change of the job
//! and a final one, otherwise a line when the job is accepted and a final
//! one. Lines start like `upload`'s other lines (`file`, `frame`, `time`;
//! `ok` and `error` on the final one) and carry the job as the server
//! showed it (`job`, a `JobView`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;
use vigil_ffmpeg::sampling::format_time;
use vigil_wire::jobs::{JobProgress, JobResult, JobState};

use super::report::{failure_json, failure_text, Item};

/// A job as this client reads a `JobView`. The error's code stays text, so
/// that a code a newer server made up does not make the whole job
/// unreadable; the view itself is kept as it came, for the JSON lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub state: JobState,
    pub progress: JobProgress,
    pub result: JobResult,
    pub error: Option<JobFailure>,
    view: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

impl Job {
    pub fn from_view(view: Value) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Read {
            id: String,
            state: JobState,
            #[serde(default)]
            progress: JobProgress,
            #[serde(default)]
            result: JobResult,
            #[serde(default)]
            error: Option<JobFailure>,
        }
        let read: Read = serde_json::from_value(view.clone()).map_err(|e| format!("not a job: {e}"))?;
        // It goes into URL paths.
        if read.id.is_empty()
            || !read
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("unexpected job id {:?}", read.id));
        }
        Ok(Self {
            id: read.id,
            state: read.state,
            progress: read.progress,
            result: read.result,
            error: read.error,
            view,
        })
    }

    /// What a new JSON line is printed for: anything but the ETA, which
    /// moves with every look.
    fn change(&self) -> (JobState, u64, Option<u64>, u64, u64, u64) {
        (
            self.state,
            self.progress.done,
            self.progress.total,
            self.result.detections,
            self.result.faces,
            self.result.alarms,
        )
    }
}

/// How a followed job ended, for its final line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// In a final state on the server (done, failed, or cancelled by
    /// someone else).
    Final,
    /// Cancelled here (Ctrl-C).
    CancelledHere,
    /// Ctrl-C, but the job could not be cancelled: it may still run.
    NotCancelled(String),
    /// The server stopped answering about it; it may still run.
    LostTrack(String),
}

impl Ending {
    /// `None` for a job that ended done; else the failure's code and message.
    fn failure(&self, job: &Job) -> Option<(String, String)> {
        match self {
            Ending::NotCancelled(detail) => Some((
                "not_cancelled".into(),
                format!("interrupted; the job may still run: {detail}"),
            )),
            Ending::LostTrack(detail) => {
                Some(("lost_track".into(), format!("the job may still run: {detail}")))
            }
            Ending::CancelledHere if job.state == JobState::Cancelled => {
                Some(("cancelled".into(), "cancelled with Ctrl-C".into()))
            }
            Ending::Final | Ending::CancelledHere => match job.state {
                JobState::Done => None,
                JobState::Cancelled => Some(("cancelled".into(), "the job was cancelled".into())),
                JobState::Failed => Some(match &job.error {
                    Some(error) => (error.code.clone(), error.message.clone()),
                    None => ("job_failed".into(), "the job failed".into()),
                }),
                // Not final: only the cases above reach here with one.
                JobState::Queued | JobState::Running => Some((
                    "not_finished".into(),
                    format!("the job is still {}", job.state.as_str()),
                )),
            },
        }
    }
}

/// A line while the job runs: `{"file", "frame": null, "time": null, "job"}`.
pub fn progress_json(item: &Item, job: &Job) -> Value {
    let mut line = item.json();
    line["job"] = job.view.clone();
    line
}

/// The final line: `ok` true with the job when it is done; otherwise `ok`
/// false and an `error` as for any failed upload, then the job.
pub fn final_json(item: &Item, job: &Job, ending: &Ending) -> Value {
    let mut line = match ending.failure(job) {
        None => {
            let mut line = item.json();
            line["ok"] = true.into();
            line
        }
        Some((code, message)) => failure_json(item, None, &code, &message),
    };
    line["job"] = job.view.clone();
    line
}

fn counts(job: &Job) -> String {
    let r = &job.result;
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {}",
        plural(r.detections, "detection", "detections"),
        plural(r.faces, "face", "faces"),
        plural(r.alarms, "alarm", "alarms")
    )
}

/// `job   FILE  job ID STATE` once the server has accepted the video.
pub fn accepted_text(item: &Item, job: &Job) -> String {
    format!("job   {}  job {} {}", item.label(), job.id, job.state.as_str())
}

/// `ok    FILE  job ID done: N detections, F faces, A alarms`, or `fail …`
/// with the code, the message and what was stored before the end.
pub fn final_text(item: &Item, job: &Job, ending: &Ending) -> String {
    match ending.failure(job) {
        None => format!("ok    {}  job {} done: {}", item.label(), job.id, counts(job)),
        Some((code, message)) => {
            let message = format!("{message} (job {}: {})", job.id, counts(job));
            failure_text(item, None, &code, &message)
        }
    }
}

/// The words beside the bar: the state, the faces so far and the server's
/// estimate of the time left.
pub fn bar_message(job: &Job) -> String {
    let mut text = job.state.as_str().to_owned();
    if job.result.faces > 0 {
        let faces = if job.result.faces == 1 { "face" } else { "faces" };
        text.push_str(&format!(", {} {faces}", job.result.faces));
    }
    if let Some(eta) = job.progress.eta_secs.filter(|e| e.is_finite() && *e >= 0.0) {
        text.push_str(&format!(", ETA {}", format_time(eta)));
    }
    text
}

/// Longest file name beside the bar: room is left for the bar itself.
const PREFIX_CHARS: usize = 24;

/// The file's name (not its folders), cut to [`PREFIX_CHARS`] with `…`.
pub fn bar_prefix(file: &str) -> String {
    let name = file
        .rsplit(['/', '\\'])
        .find(|part| !part.is_empty())
        .unwrap_or(file);
    if name.chars().count() <= PREFIX_CHARS {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(PREFIX_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The bar of frames: a bar once the server knows how many, a counter before.
pub fn frames_template(total: Option<u64>) -> &'static str {
    match total {
        Some(_) => "{spinner} {prefix} {pos}/{len} frames [{wide_bar}] {elapsed_precise}, {msg}",
        None => "{spinner} {prefix} {pos} frames {elapsed_precise}, {msg}",
    }
}

const BYTES_TEMPLATE: &str =
    "{spinner} {prefix} uploading {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec}, ETA {eta}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

pub struct JobReporter {
    json: bool,
    bar: ProgressBar,
    /// The bar's template now (a frame total may come later).
    template: &'static str,
    last: Option<(JobState, u64, Option<u64>, u64, u64, u64)>,
}

impl JobReporter {
    pub fn new(json: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(style(BYTES_TEMPLATE));
        Self {
            json,
            bar,
            template: BYTES_TEMPLATE,
            last: None,
        }
    }

    fn line(&self, text: String) {
        self.bar.suspend(|| crate::emit(&text));
    }

    fn set_template(&mut self, template: &'static str) {
        if self.template != template {
            self.template = template;
            self.bar.set_style(style(template));
        }
    }

    /// A video starts uploading: the bar counts its bytes.
    pub fn uploading(&mut self, item: &Item, bytes: u64) {
        self.last = None;
        self.set_template(BYTES_TEMPLATE);
        self.bar.reset();
        self.bar.set_prefix(bar_prefix(&item.label()));
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar.set_message("");
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    /// Bytes of the video handed to the connection so far.
    pub fn sent(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    /// The server took the video: the bar now counts the job's frames.
    pub fn accepted(&mut self, item: &Item, job: &Job) {
        self.bar.reset();
        if !self.json {
            self.line(accepted_text(item, job));
        }
        self.progress(item, job);
    }

    /// The job as last seen; a JSON line when something but the ETA
    /// changed (none for a final state: [`Self::finished`] prints that).
    pub fn progress(&mut self, item: &Item, job: &Job) {
        self.set_template(frames_template(job.progress.total));
        if let Some(total) = job.progress.total {
            self.bar.set_length(total);
        }
        self.bar.set_position(job.progress.done);
        self.bar.set_message(bar_message(job));
        if self.json && !job.state.is_final() && self.last != Some(job.change()) {
            self.line(progress_json(item, job).to_string());
        }
        self.last = Some(job.change());
    }

    /// The job's last line; the bar goes.
    pub fn finished(&mut self, item: &Item, job: &Job, ending: &Ending) {
        self.bar.finish_and_clear();
        let line = if self.json {
            final_json(item, job, ending).to_string()
        } else {
            final_text(item, job, ending)
        };
        self.line(line);
    }

    /// A video that never became a job (unreadable, refused…).
    pub fn failed(&self, item: &Item, status: Option<u16>, code: &str, message: &str) {
        self.bar.finish_and_clear();
        let line = if self.json {
            failure_json(item, status, code, message).to_string()
        } else {
            failure_text(item, status, code, message)
        };
        self.line(line);
    }

    /// A note on stderr (a wait, a retry), around the bar.
    pub fn note(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(state: &str, done: u64, total: Option<u64>) -> Value {
        let mut view = json!({
            "id": "6650f1c2a4b1c2d3e4f5a6b8",
            "kind": "video",
            "state": state,
            "source": "door.mp4",
            "user_id": "6650f1c2a4b1c2d3e4f5a6b9",
            "fps": 1.0,
            "attempts": 1,
            "progress": {"done": done},
            "result": {"detections": done, "faces": 1, "alarms": 0},
            "created_at": "2026-12-07T08:00:00Z",
            "updated_at": "2026-12-07T08:00:01Z"
        });
        if let Some(total) = total {
            view["progress"]["total"] = total.into();
            view["progress"]["eta_secs"] = 31.5.into();
        }
        view
    }

    fn job(state: &str, done: u64, total: Option<u64>) -> Job {
        Job::from_view(view(state, done, total)).unwrap()
    }

    fn item() -> Item {
        Item::file("clips/door.mp4".into())
    }

    #[test]
    fn a_job_view_is_read_and_kept_as_it_came() {
        let job = job("running", 3, Some(10));
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.progress.total, Some(10));
        assert_eq!(job.view["source"], "door.mp4");

        // A code this client does not know still reads.
        let mut failed = view("failed", 2, Some(10));
        failed["error"] = json!({"code": "codec_from_the_future", "message": "no"});
        let failed = Job::from_view(failed).unwrap();
        assert_eq!(failed.error.unwrap().code, "codec_from_the_future");

        let mut odd = view("done", 1, None);
        odd["id"] = "../users".into();
        assert!(Job::from_view(odd).is_err());
        assert!(Job::from_view(json!({"id": "x"})).is_err());
    }

    #[test]
    fn json_lines_carry_the_job_and_the_last_says_how_it_ended() {
        let running = progress_json(&item(), &job("running", 3, Some(10)));
        assert_eq!(running["file"], "clips/door.mp4");
        assert_eq!(running["frame"], Value::Null);
        assert_eq!(running["job"]["progress"]["done"], 3);
        assert!(
            running.get("ok").is_none(),
            "only the final line has `ok`: {running}"
        );

        let done = final_json(&item(), &job("done", 10, Some(10)), &Ending::Final);
        assert_eq!(done["ok"], true);
        assert_eq!(done["job"]["state"], "done");
        assert!(done.get("error").is_none());

        let mut quota = view("failed", 4, Some(10));
        quota["error"] = json!({"code": "quota_exhausted", "message": "the quota is used up"});
        let failed = final_json(&item(), &Job::from_view(quota).unwrap(), &Ending::Final);
        assert_eq!(failed["ok"], false);
        assert_eq!(
            failed["error"],
            json!({"status": null, "code": "quota_exhausted", "message": "the quota is used up"})
        );
        assert_eq!(failed["job"]["state"], "failed");

        let cancelled = final_json(&item(), &job("cancelled", 4, Some(10)), &Ending::CancelledHere);
        assert_eq!(cancelled["error"]["code"], "cancelled");
        // Ctrl-C came too late: the job was done already.
        let late = final_json(&item(), &job("done", 10, Some(10)), &Ending::CancelledHere);
        assert_eq!(late["ok"], true);
        let lost = final_json(
            &item(),
            &job("running", 4, Some(10)),
            &Ending::LostTrack("gone".into()),
        );
        assert_eq!(lost["error"]["code"], "lost_track");
    }

    #[test]
    fn text_lines_name_the_job_and_what_it_stored() {
        assert_eq!(
            accepted_text(&item(), &job("queued", 0, None)),
            "job   clips/door.mp4  job 6650f1c2a4b1c2d3e4f5a6b8 queued"
        );
        assert_eq!(
            final_text(&item(), &job("done", 1, Some(1)), &Ending::Final),
            "ok    clips/door.mp4  job 6650f1c2a4b1c2d3e4f5a6b8 done: 1 detection, 1 face, 0 alarms"
        );
        assert_eq!(
            final_text(&item(), &job("cancelled", 4, Some(10)), &Ending::CancelledHere),
            "fail  clips/door.mp4  cancelled: cancelled with Ctrl-C \
             (job 6650f1c2a4b1c2d3e4f5a6b8: 4 detections, 1 face, 0 alarms)"
        );
    }

    #[test]
    fn the_bar_shows_the_state_the_faces_and_the_servers_eta() {
        assert_eq!(
            bar_message(&job("running", 3, Some(10))),
            "running, 1 face, ETA 0:31.5"
        );
        let mut queued = job("queued", 0, None);
        queued.result.faces = 0;
        assert_eq!(bar_message(&queued), "queued");
        assert!(frames_template(Some(10)).contains("{len}"));
        assert!(!frames_template(None).contains("{len}"));
        assert_eq!(bar_prefix("clips/door.mp4"), "door.mp4");
        assert_eq!(bar_prefix("door.mp4"), "door.mp4");
        let long = bar_prefix(&format!("/x/{}.mp4", "a".repeat(40)));
        assert_eq!(long.chars().count(), 24);
        assert!(long.ends_with('…'));
        // Both templates are valid.
        style(frames_template(None));
        style(frames_template(Some(1)));
        style(BYTES_TEMPLATE);
    }

    #[test]
    fn a_json_line_per_change_not_per_look() {
        let mut a = job("running", 3, Some(10));
        let b = {
            let mut b = a.clone();
            b.progress.eta_secs = Some(12.0);
            b
        };
        assert_eq!(a.change(), b.change());
        a.progress.done = 4;
        assert_ne!(a.change(), b.change());
    }
}
