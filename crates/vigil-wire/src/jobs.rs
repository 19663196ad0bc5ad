//! Background jobs as the API and the `jobs` WebSocket topic show them: an
//! asynchronous detection (`POST /api/v1/detections?mode=async`) or a whole
//! video analysed on the server (`POST /api/v1/videos`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ErrorCode;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// One uploaded image, detected as a synchronous upload would be.
    Detect,
    /// A video file: frames sampled with ffmpeg, each one detected.
    Video,
    /// One alarm POSTed to one webhook (never listed in `GET /api/v1/jobs`:
    /// its attempts are the webhook's delivery log).
    Webhook,
}

/// Where a job is in its life. `queued → running → done | failed`, and
/// `cancelled` from either of the first two; a running job whose worker
/// died goes back to running on another worker once its lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Done, failed or cancelled: nothing will change it any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        JobState::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown job state `{raw}` (queued, running, done, failed, cancelled)"))
    }
}

/// How far a job got.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct JobProgress {
    /// Frames (or images) analysed and recorded.
    #[schema(example = 12)]
    pub done: u64,
    /// Frames the job will analyse, once known (a video's, from ffprobe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 120)]
    pub total: Option<u64>,
    /// Seconds left at the pace so far, once there is a pace and a total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 31.5)]
    pub eta_secs: Option<f64>,
}

/// What a job produced (so far, for one that failed or was cancelled).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    /// Detections stored.
    #[schema(example = 12)]
    pub detections: u64,
    /// Faces found across them.
    #[schema(example = 3)]
    pub faces: u64,
    /// Alarms raised.
    #[schema(example = 2)]
    pub alarms: u64,
    /// The detection of a `detect` job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub detection_id: Option<String>,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    pub code: ErrorCode,
    #[schema(example = "the quota is used up")]
    pub message: String,
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b8")]
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// The label of what is analysed: the upload's `source`, or the video's
    /// name (each frame's detection gets `name@m:ss.s`).
    #[schema(example = "door.mp4")]
    pub source: String,
    /// The owner.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b9")]
    pub user_id: String,
    /// Frames per second sampled from a video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 1.0)]
    pub fps: Option<f64>,
    /// Times a worker has taken the job up (more than one: a worker died or
    /// the job failed and was tried again).
    #[schema(example = 1)]
    pub attempts: u32,
    pub progress: JobProgress,
    pub result: JobResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}
