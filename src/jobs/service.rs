//! Accepting work for the queue: everything is checked before anything is
//! kept (the image decodes, the video is one, the quota has a unit, the
//! queue has room), and the job, its idempotency key and (for an image) its
//! unit of quota are stored in one transaction, so a refused or failed
//! submission leaves nothing half-accepted.

use std::sync::Arc;

use vigil_ffmpeg::sampling::{probe, Tools};

use super::queue::{Cancelled, JobQueue, NewJob};
use super::videos::{Incoming, VideoStore, VideoStoreError};
use super::{JobId, JobRecord, JobScope, Payload};
use crate::db::{Database, DbError, Transient};
use crate::detections::Source;
use crate::disk::{Storage, StoragePaused};
use crate::error::{Coded, ErrorCode};
use crate::idempotency::{Claim, IdempotencyKeys, Produced};
use crate::media::{MediaError, MediaId, SharedMediaStore};
use crate::users::{UserError, UserId, Users};
use crate::vision::{decode_upload, DecodeBudget, DecodedUpload, ImageLimits, VisionError};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Quota(#[from] UserError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Videos(#[from] VideoStoreError),
    #[error("not a video ffmpeg can read: {0}")]
    InvalidVideo(String),
    #[error("{queued} jobs are waiting, the limit is {limit}: try again later")]
    QueueFull { queued: u64, limit: u64 },
    #[error("this Idempotency-Key was used for a different request; use a new key")]
    KeyReused,
    #[error(transparent)]
    Storage(#[from] StoragePaused),
}

/// Seconds a client refused by a full queue should wait.
const QUEUE_FULL_RETRY_AFTER: u64 = 10;

impl Coded for SubmitError {
    fn code(&self) -> ErrorCode {
        match self {
            SubmitError::Vision(e) => e.code(),
            SubmitError::Quota(e) => e.code(),
            SubmitError::Db(e) => e.code(),
            SubmitError::Media(e) => e.code(),
            SubmitError::Videos(e) => e.code(),
            SubmitError::InvalidVideo(_) => ErrorCode::InvalidVideo,
            SubmitError::QueueFull { .. } => ErrorCode::QueueFull,
            SubmitError::KeyReused => ErrorCode::ValidationFailed,
            SubmitError::Storage(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            SubmitError::Quota(e) => e.retry_after(),
            SubmitError::Db(e) => e.retry_after(),
            SubmitError::QueueFull { .. } => Some(QUEUE_FULL_RETRY_AFTER),
            SubmitError::Vision(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl Transient for SubmitError {
    fn is_transient(&self) -> bool {
        match self {
            SubmitError::Db(e) => e.is_transient(),
            SubmitError::Quota(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// A received video and what to do with it.
pub struct VideoUpload {
    pub file: Incoming,
    pub source: Source,
    pub fps: f64,
}

#[derive(Clone)]
pub struct JobService {
    pub db: Database,
    pub queue: JobQueue,
    pub media: SharedMediaStore,
    pub videos: Arc<VideoStore>,
    pub users: Users,
    pub keys: IdempotencyKeys,
    pub limits: ImageLimits,
    /// Shared with every other decode of the process.
    pub decode_budget: DecodeBudget,
    pub tools: Tools,
    /// Submissions are refused while the disk guard has paused storing.
    pub storage: Storage,
}

impl JobService {
    /// Accepts an image for detection later: 202 material. Its unit of quota
    /// is taken now, with the job.
    pub async fn submit_detect(
        &self,
        user: UserId,
        bytes: Vec<u8>,
        source: Source,
        claim: Option<Claim>,
    ) -> Result<JobRecord, SubmitError> {
        if let Some(job) = self.earlier(claim.as_ref()).await? {
            return Ok(job);
        }
        self.storage.ensure_room()?;
        let DecodedUpload { bytes, kind, .. } =
            decode_upload(bytes, self.limits, &self.decode_budget).await?;
        self.users.check_quota(user).await?;
        self.check_room().await?;
        let image = MediaId::new(kind);
        self.media.put(image, &bytes).await?;
        let job = JobQueue::prepare(NewJob {
            user,
            source,
            payload: Payload::Detect { image },
        });
        match self.insert(&job, claim.as_ref(), true).await {
            Ok(()) => Ok(job),
            Err(err) => {
                if !matches!(err, SubmitError::Db(DbError::CommitUnknown(_))) {
                    let _ = self.media.delete(image).await;
                }
                self.after_conflict(err, claim.as_ref()).await
            }
        }
    }

    /// Starts receiving a video for [`JobService::submit_video`].
    /// Refused at once while the disk guard has paused storing: a video
    /// is written to the data folder as it arrives.
    pub async fn receive_video(&self) -> Result<Incoming, SubmitError> {
        self.storage.ensure_room()?;
        Ok(self.videos.receive().await.map_err(VideoStoreError::from)?)
    }

    /// Accepts a received video: it must be one ffmpeg reads. Its frames are
    /// paid for as they are analysed; a quota already used up refuses it.
    pub async fn submit_video(
        &self,
        user: UserId,
        mut upload: VideoUpload,
        claim: Option<Claim>,
    ) -> Result<JobRecord, SubmitError> {
        if let Some(job) = self.earlier(claim.as_ref()).await? {
            return Ok(job);
        }
        let bytes = upload.file.bytes();
        let path = upload.file.finished().await.map_err(VideoStoreError::from)?;
        probe(&self.tools, path)
            .await
            .map_err(SubmitError::InvalidVideo)?;
        self.users.check_quota(user).await?;
        self.check_room().await?;
        // The disk may have filled while the video arrived.
        self.storage.ensure_room()?;
        let video = self.videos.keep(upload.file).await?;
        let job = JobQueue::prepare(NewJob {
            user,
            source: upload.source,
            payload: Payload::Video {
                video,
                fps: upload.fps,
                bytes,
            },
        });
        match self.insert(&job, claim.as_ref(), false).await {
            Ok(()) => Ok(job),
            Err(err) => {
                if !matches!(err, SubmitError::Db(DbError::CommitUnknown(_))) {
                    let _ = self.videos.delete(video).await;
                }
                self.after_conflict(err, claim.as_ref()).await
            }
        }
    }

    /// Cancels a job the caller may see. A queued one's payload is removed
    /// here; a running one's by its worker, once it has stopped reading it.
    pub async fn cancel(&self, scope: JobScope, id: JobId) -> Result<Cancelled, DbError> {
        let cancelled = self.queue.cancel(scope, id).await?;
        if let Cancelled::Now(before) = &cancelled {
            tracing::info!(job = %id, "job cancelled");
            // Never taken up: nothing was recorded, so an image's unit goes
            // back. A running one is settled by its worker.
            if before.lease.is_none() {
                if let Payload::Detect { .. } = before.payload {
                    let _turn = Users::charge_turn(before.user_id).await;
                    let refunded = crate::in_transaction!(self.db, UserError, |session| async {
                        self.users.refund(before.user_id, session).await
                    });
                    if let Err(err) = refunded {
                        tracing::warn!(job = %id, error = %err, "could not give back the cancelled job's unit of quota");
                    }
                }
                self.discard(&before.payload).await;
            }
        }
        Ok(match cancelled {
            Cancelled::Now(before) => Cancelled::Now(JobRecord {
                state: super::JobState::Cancelled,
                lease: None,
                finished_at: Some(chrono::Utc::now()),
                ..before
            }),
            other => other,
        })
    }

    async fn discard(&self, payload: &Payload) {
        let removed = match payload {
            Payload::Detect { image } => self.media.delete(*image).await.map_err(|e| e.to_string()),
            Payload::Video { video, .. } => self.videos.delete(*video).await.map_err(|e| e.to_string()),
            Payload::Webhook { .. } => Ok(()),
        };
        if let Err(err) = removed {
            tracing::warn!(error = %err, "could not remove a cancelled job's payload");
        }
    }

    /// The job an earlier request with the key submitted.
    async fn earlier(&self, claim: Option<&Claim>) -> Result<Option<JobRecord>, SubmitError> {
        let Some(claim) = claim else { return Ok(None) };
        match self.keys.lookup(claim).await? {
            None => Ok(None),
            Some(Produced::Detection(_)) => Err(SubmitError::KeyReused),
            Some(Produced::Job(id)) => Ok(self.queue.get(JobScope::Owner(claim.user), JobId(id)).await?),
        }
    }

    /// Refuses while the queue holds `--job-queue-limit` jobs or more.
    async fn check_room(&self) -> Result<(), SubmitError> {
        let queued = self.queue.queued().await?;
        let limit = self.queue.settings.queue_limit;
        if queued >= limit {
            return Err(SubmitError::QueueFull { queued, limit });
        }
        Ok(())
    }

    /// The job, its key and (when `paid`) its unit of quota, together.
    async fn insert(&self, job: &JobRecord, claim: Option<&Claim>, paid: bool) -> Result<(), SubmitError> {
        let turn = if paid {
            Some(Users::charge_turn(job.user_id).await)
        } else {
            None
        };
        let inserted = crate::in_transaction!(self.db, SubmitError, |session| async {
            if let Some(claim) = claim {
                if !self.keys.claim(claim, Produced::Job(job.id.0), session).await? {
                    return Err(SubmitError::KeyReused);
                }
            }
            self.queue.insert(job, session).await?;
            if paid {
                self.users.charge(job.user_id, session).await?;
            }
            Ok(())
        });
        drop(turn);
        inserted?;
        self.queue.wake();
        tracing::info!(job = %job.id, kind = ?job.kind, "job queued");
        Ok(())
    }

    /// A submission that lost its key to a concurrent one answers with that
    /// one's job.
    async fn after_conflict(
        &self,
        err: SubmitError,
        claim: Option<&Claim>,
    ) -> Result<JobRecord, SubmitError> {
        if matches!(err, SubmitError::KeyReused) {
            if let Some(job) = self.earlier(claim).await? {
                return Ok(job);
            }
        }
        Err(err)
    }
}
