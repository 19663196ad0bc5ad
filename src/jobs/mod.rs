//! The job queue: work accepted now and done in the background by any
//! instance that shares the database: an asynchronous upload's detection,
//! or a whole video's frames.
//!
//! A job is a document in `jobs`. Workers in every `vigil serve` claim the
//! oldest one that is queued, or running under a lease that expired, with
//! one `findOneAndUpdate`; they renew the lease while they work and write
//! every later change on condition that they still hold it, so a worker
//! that was presumed dead (and replaced) can no longer change the job.
//! Processing is at least once; a unique key on a detection's `(job,
//! frame)` makes what it stores exactly once. docs/architecture.md draws
//! the state machine.

mod detect;
pub mod live;
mod metrics;
mod queue;
mod retry;
mod service;
mod video;
pub mod videos;
mod worker;

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

pub use self::metrics::record_depth;
pub use detect::DetectJobs;
pub use queue::{Cancelled, Enqueued, JobQueue, JobScope, NewJob};
pub use retry::RetryPolicy;
pub use service::{JobService, SubmitError, VideoUpload};
pub use video::VideoJobs;
pub use vigil_wire::jobs::{JobKind, JobProgress, JobResult, JobState, JobView};
pub use worker::{Handlers, KindHandler, Run, Stop, Workers};

use crate::alarms::AlarmId;
use crate::detections::Source;
use crate::media::MediaId;
use crate::users::UserId;

/// A job's id: 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub ObjectId);

impl std::str::FromStr for JobId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// What a job works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// The uploaded image, stored when it was accepted (it becomes the
    /// detection's original).
    Detect { image: MediaId },
    /// The video file in the video store, and the rate it is sampled at.
    Video { video: ObjectId, fps: f64, bytes: u64 },
    /// An alarm to POST to a webhook (`notify::webhooks`). The pair is
    /// unique among jobs: an alarm is queued for a webhook once.
    Webhook { webhook: ObjectId, alarm: AlarmId },
}

impl Payload {
    pub fn kind(&self) -> JobKind {
        match self {
            Payload::Detect { .. } => JobKind::Detect,
            Payload::Video { .. } => JobKind::Video,
            Payload::Webhook { .. } => JobKind::Webhook,
        }
    }
}

/// Who runs a job, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
}

/// A stored job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    #[serde(rename = "_id")]
    pub id: JobId,
    pub kind: JobKind,
    pub user_id: UserId,
    pub state: JobState,
    pub source: Source,
    pub payload: Payload,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    pub progress: JobProgress,
    pub result: JobResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<vigil_wire::jobs::JobError>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub updated_at: DateTime<Utc>,
    /// Not claimed before then: a retry waits out its backoff.
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub available_at: DateTime<Utc>,
    #[serde(default, with = "optional_time", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, with = "optional_time", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.to_string(),
            kind: self.kind,
            state: self.state,
            source: self.source.to_string(),
            user_id: self.user_id.to_string(),
            fps: match &self.payload {
                Payload::Video { fps, .. } => Some(*fps),
                Payload::Detect { .. } | Payload::Webhook { .. } => None,
            },
            attempts: self.attempts,
            progress: self.progress,
            result: self.result.clone(),
            error: self.error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

mod optional_time {
    use chrono::{DateTime, Utc};
    use mongodb::bson::DateTime as BsonDateTime;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        time.map(BsonDateTime::from_chrono).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<BsonDateTime>::deserialize(d)?.map(BsonDateTime::to_chrono))
    }
}

/// Removes kept videos older than `age` that no queued or running job
/// needs: left by a submission whose job was never committed, a job whose
/// end was not written, a removal that failed. Returns how many went.
pub async fn sweep_orphan_videos(
    videos: &videos::VideoStore,
    queue: &JobQueue,
    age: Duration,
) -> Result<usize, String> {
    let mut removed = 0;
    for video in videos.older_than(age).await.map_err(|e| e.to_string())? {
        if !queue.needs_video(video).await.map_err(|e| e.to_string())? {
            videos.delete(video).await.map_err(|e| e.to_string())?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "orphan videos removed");
    }
    Ok(removed)
}

/// How the queue runs (`--job-*` flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSettings {
    /// Jobs this instance runs at once.
    pub workers: usize,
    /// Times a job is taken up before it is failed for good.
    pub max_attempts: u32,
    /// Queued jobs beyond which new submissions are refused (503 `queue_full`).
    pub queue_limit: u64,
    /// How long a claim holds without renewal: a worker that dies gives its
    /// job up this long after its last renewal.
    pub lease: Duration,
    /// Largest video accepted by `POST /api/v1/videos`.
    pub max_video_bytes: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            workers: 1,
            max_attempts: 3,
            queue_limit: 1000,
            lease: Duration::from_secs(30),
            max_video_bytes: 512 * 1024 * 1024,
        }
    }
}
