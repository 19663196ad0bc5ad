//! The `jobs` collection: submitting, claiming, leases, the end of a job,
//! cancelling and reading. Every write of a worker is conditioned on the
//! job still running under its lease: a worker that lost it (it was too
//! slow to renew and another took over, or the job was cancelled) changes
//! nothing.

use std::sync::Arc;

use chrono::Utc;
use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use mongodb::bson::{self, doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};
use tokio::sync::Notify;
use vigil_wire::jobs::JobError;

use super::{
    JobId, JobKind, JobProgress, JobRecord, JobResult, JobSettings, JobState, Lease, Payload, RetryPolicy,
};
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::detections::Source;
use crate::media::{MediaId, MediaReferences};
use crate::users::UserId;

/// Whose jobs a caller may see: admins all, everyone else their own.
#[derive(Debug, Clone, Copy)]
pub enum JobScope {
    Owner(UserId),
    All,
}

impl JobScope {
    /// What a caller may list, read and cancel. Webhook deliveries are
    /// left out: their attempts are the webhook's delivery log, and they are
    /// stopped by deleting the webhook, so they would only crowd the
    /// account's uploads and videos out of its listing.
    fn filter(self, mut base: Document) -> Document {
        if let JobScope::Owner(user) = self {
            base.insert("user_id", user.0);
        }
        base.insert("kind", doc! { "$ne": kind_name(JobKind::Webhook) });
        base
    }
}

/// Every kind of job, for the queries whose rule differs per kind.
const KINDS: [JobKind; 3] = [JobKind::Detect, JobKind::Video, JobKind::Webhook];

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Detect => "detect",
        JobKind::Video => "video",
        JobKind::Webhook => "webhook",
    }
}

/// What inserting a job outside a submission found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// A job with the same unique payload (an alarm for a webhook) exists.
    AlreadyQueued,
}

/// A job about to be submitted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub user: UserId,
    pub source: Source,
    pub payload: Payload,
}

/// What cancelling found.
#[derive(Debug)]
pub enum Cancelled {
    /// It was queued or running (as it was then), and now is cancelled.
    Now(JobRecord),
    /// It had ended already.
    Finished(JobRecord),
    NotFound,
}

fn bson_of<T: serde::Serialize>(value: &T) -> Result<Bson, DbError> {
    bson::to_bson(value).map_err(|e| DbError::Malformed(e.to_string()))
}

#[derive(Clone)]
pub struct JobQueue {
    jobs: Collection<JobRecord>,
    pub settings: JobSettings,
    /// Wakes this instance's idle workers when it queued something.
    submitted: Arc<Notify>,
}

impl JobQueue {
    pub fn new(db: &Database, settings: JobSettings) -> Self {
        Self {
            jobs: db.collection("jobs"),
            settings,
            submitted: Arc::new(Notify::new()),
        }
    }

    /// The document of a job about to be inserted.
    pub fn prepare(new: NewJob) -> JobRecord {
        let now = Utc::now();
        JobRecord {
            id: JobId(bson::oid::ObjectId::new()),
            kind: new.payload.kind(),
            user_id: new.user,
            state: JobState::Queued,
            source: new.source,
            payload: new.payload,
            attempts: 0,
            lease: None,
            progress: JobProgress::default(),
            result: JobResult::default(),
            error: None,
            created_at: now,
            updated_at: now,
            available_at: now,
            started_at: None,
            finished_at: None,
        }
    }

    /// Jobs that submissions wait behind. Webhook deliveries are not
    /// counted: they are bounded by the alarms and the webhooks, not by what
    /// users submit, and a receiver that is down for an hour must not get
    /// uploads refused with `queue_full`.
    pub async fn queued(&self) -> Result<u64, DbError> {
        self.jobs
            .count_documents(doc! {
                "state": JobState::Queued.as_str(),
                "kind": { "$ne": kind_name(JobKind::Webhook) },
            })
            .await
            .map_err(DbError::from_driver)
    }

    /// How many jobs are in each state, for the metrics.
    pub async fn counts(&self) -> Result<Vec<(JobState, u64)>, DbError> {
        let mut counts = Vec::new();
        for state in JobState::ALL {
            let n = self
                .jobs
                .count_documents(doc! { "state": state.as_str() })
                .await
                .map_err(DbError::from_driver)?;
            counts.push((state, n));
        }
        Ok(counts)
    }

    /// Inserts inside the caller's transaction; the workers are woken once
    /// it commits ([`JobQueue::wake`]).
    pub async fn insert(&self, job: &JobRecord, session: &mut ClientSession) -> Result<(), DbError> {
        self.jobs
            .insert_one(job)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Inserts a job that is not a user's submission (a webhook delivery),
    /// once: a unique key on its payload makes a second insert of the same
    /// one [`Enqueued::AlreadyQueued`]. Wakes the workers.
    pub async fn enqueue(&self, new: NewJob) -> Result<Enqueued, DbError> {
        let job = Self::prepare(new);
        match self.jobs.insert_one(&job).await {
            Ok(_) => {
                self.wake();
                Ok(Enqueued::New)
            }
            Err(err) if crate::db::is_duplicate_key(&err) => Ok(Enqueued::AlreadyQueued),
            Err(err) => Err(DbError::from_driver(err)),
        }
    }

    /// The retry policy of a kind of job.
    pub fn policy(&self, kind: JobKind) -> RetryPolicy {
        RetryPolicy::of(kind, &self.settings)
    }

    /// Per kind, the filter of running jobs whose lease expired and that
    /// have takes left (`left`) or none (`!left`).
    fn expired(&self, now: chrono::DateTime<Utc>, left: bool) -> Vec<Document> {
        KINDS
            .into_iter()
            .map(|kind| {
                let max = i64::from(self.policy(kind).max_attempts());
                let attempts = if left {
                    doc! { "$lt": max }
                } else {
                    doc! { "$gte": max }
                };
                doc! {
                    "state": JobState::Running.as_str(),
                    "kind": kind_name(kind),
                    "lease.expires_at": { "$lt": now },
                    "attempts": attempts,
                }
            })
            .collect()
    }

    /// Cancels the deliveries still to be made to a webhook (it was
    /// deleted). One running now finds at its end that it is no longer
    /// its worker's, and writes nothing.
    pub async fn cancel_deliveries(&self, webhook: bson::oid::ObjectId) -> Result<u64, DbError> {
        let now = Utc::now();
        let updated = self
            .jobs
            .update_many(
                doc! {
                    "kind": kind_name(JobKind::Webhook),
                    "payload.webhook": webhook,
                    "state": { "$in": [JobState::Queued.as_str(), JobState::Running.as_str()] },
                },
                doc! {
                    "$set": { "state": JobState::Cancelled.as_str(), "updated_at": now, "finished_at": now },
                    "$unset": { "lease": "" },
                },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(updated.modified_count)
    }

    pub fn wake(&self) {
        self.submitted.notify_waiters();
    }

    pub async fn submitted(&self) {
        self.submitted.notified().await
    }

    /// Takes the oldest job that is queued, or running under a lease that
    /// expired (its worker died or froze) with attempts left, for `holder`.
    pub async fn claim(&self, holder: &str) -> Result<Option<JobRecord>, DbError> {
        let now = Utc::now();
        let lease = Lease {
            holder: holder.to_owned(),
            expires_at: now + self.lease_length(),
        };
        let mut either = vec![Bson::Document(
            doc! { "state": JobState::Queued.as_str(), "available_at": { "$lte": now } },
        )];
        either.extend(self.expired(now, true).into_iter().map(Bson::Document));
        self.jobs
            .find_one_and_update(
                doc! { "$or": either },
                doc! {
                    "$set": { "state": JobState::Running.as_str(), "lease": bson_of(&lease)?, "updated_at": now },
                    "$min": { "started_at": now },
                    "$inc": { "attempts": 1 },
                },
            )
            .sort(doc! { "created_at": 1 })
            .return_document(ReturnDocument::After)
            .await
            .map_err(DbError::from_driver)
    }

    fn lease_length(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// The filter of a job `holder` still runs.
    fn held(id: JobId, holder: &str) -> Document {
        doc! { "_id": id.0, "state": JobState::Running.as_str(), "lease.holder": holder }
    }

    /// Extends the lease; `false` when it is no longer `holder`'s.
    pub async fn renew(&self, id: JobId, holder: &str) -> Result<bool, DbError> {
        let now = Utc::now();
        let updated = self
            .jobs
            .update_one(
                Self::held(id, holder),
                doc! { "$set": { "lease.expires_at": now + self.lease_length() } },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(updated.matched_count == 1)
    }

    /// Records how far the job got (and renews the lease); `false` when it
    /// is no longer `holder`'s.
    pub async fn report(
        &self,
        id: JobId,
        holder: &str,
        progress: &JobProgress,
        result: &JobResult,
    ) -> Result<bool, DbError> {
        let now = Utc::now();
        let updated = self
            .jobs
            .update_one(
                Self::held(id, holder),
                doc! { "$set": {
                    "progress": bson_of(progress)?,
                    "result": bson_of(result)?,
                    "updated_at": now,
                    "lease.expires_at": now + self.lease_length(),
                } },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(updated.matched_count == 1)
    }

    /// Ends a job `holder` runs: `done`, or `failed` with `error`. `None`
    /// when it is no longer `holder`'s.
    pub async fn finish(
        &self,
        id: JobId,
        holder: &str,
        result: &JobResult,
        error: Option<&JobError>,
        session: Option<&mut ClientSession>,
    ) -> Result<Option<JobRecord>, DbError> {
        let now = Utc::now();
        let state = if error.is_some() {
            JobState::Failed
        } else {
            JobState::Done
        };
        let mut set = doc! {
            "state": state.as_str(),
            "result": bson_of(result)?,
            "updated_at": now,
            "finished_at": now,
        };
        if let Some(error) = error {
            set.insert("error", bson_of(error)?);
        }
        let mut action = self
            .jobs
            .find_one_and_update(
                Self::held(id, holder),
                doc! { "$set": set, "$unset": { "lease": "" } },
            )
            .return_document(ReturnDocument::After);
        if let Some(session) = session {
            action = action.session(session);
        }
        action.await.map_err(DbError::from_driver)
    }

    /// Puts a job that failed an attempt back in the queue, to be taken up
    /// again after `delay`; its last error stays visible meanwhile.
    pub async fn retry_later(
        &self,
        id: JobId,
        holder: &str,
        error: &JobError,
        delay: std::time::Duration,
    ) -> Result<bool, DbError> {
        let now = Utc::now();
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        let updated = self
            .jobs
            .update_one(
                Self::held(id, holder),
                doc! {
                    "$set": {
                        "state": JobState::Queued.as_str(),
                        "error": bson_of(error)?,
                        "updated_at": now,
                        "available_at": now + delay,
                    },
                    "$unset": { "lease": "" },
                },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(updated.matched_count == 1)
    }

    /// Gives back the jobs `holder` runs (a clean shutdown): queued again at
    /// once, the attempt not counted, so another instance (or this one after
    /// its restart) takes them up without waiting for the lease to expire.
    pub async fn release_all(&self, holder: &str) -> Result<u64, DbError> {
        let now = Utc::now();
        let updated = self
            .jobs
            .update_many(
                doc! { "state": JobState::Running.as_str(), "lease.holder": holder },
                doc! {
                    "$set": { "state": JobState::Queued.as_str(), "updated_at": now, "available_at": now },
                    "$unset": { "lease": "" },
                    "$inc": { "attempts": -1 },
                },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(updated.modified_count)
    }

    /// Fails the jobs whose worker was lost (lease expired) on their last
    /// attempt: no worker will claim them again. Returns them, for their
    /// payloads to be removed.
    pub async fn fail_abandoned(&self) -> Result<Vec<JobRecord>, DbError> {
        let now = Utc::now();
        let abandoned: Vec<JobRecord> = self
            .jobs
            .find(doc! { "$or": self.expired(now, false) })
            .limit(100)
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let mut failed = Vec::new();
        for job in abandoned {
            let error = JobError {
                code: vigil_wire::ErrorCode::Internal,
                message: format!(
                    "the worker running it stopped without finishing, {} times",
                    job.attempts
                ),
            };
            let Some(lease) = &job.lease else { continue };
            let ended = self
                .jobs
                .find_one_and_update(
                    doc! { "_id": job.id.0, "state": JobState::Running.as_str(), "lease.expires_at": bson::DateTime::from_chrono(lease.expires_at) },
                    doc! {
                        "$set": { "state": JobState::Failed.as_str(), "error": bson_of(&error)?, "updated_at": now, "finished_at": now },
                        "$unset": { "lease": "" },
                    },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(DbError::from_driver)?;
            failed.extend(ended);
        }
        Ok(failed)
    }

    /// Cancels a queued or running job the caller may see. A running job's
    /// worker notices at its next write and stops. [`Cancelled::Now`]
    /// carries the job as it was just before (its `lease` says whether a
    /// worker had it).
    pub async fn cancel(&self, scope: JobScope, id: JobId) -> Result<Cancelled, DbError> {
        let now = Utc::now();
        let before = self
            .jobs
            .find_one_and_update(
                scope.filter(doc! {
                    "_id": id.0,
                    "state": { "$in": [JobState::Queued.as_str(), JobState::Running.as_str()] },
                }),
                doc! {
                    "$set": { "state": JobState::Cancelled.as_str(), "updated_at": now, "finished_at": now },
                    "$unset": { "lease": "" },
                },
            )
            .return_document(ReturnDocument::Before)
            .await
            .map_err(DbError::from_driver)?;
        if let Some(job) = before {
            return Ok(Cancelled::Now(job));
        }
        Ok(match self.get(scope, id).await? {
            Some(job) => Cancelled::Finished(job),
            None => Cancelled::NotFound,
        })
    }

    pub async fn get(&self, scope: JobScope, id: JobId) -> Result<Option<JobRecord>, DbError> {
        self.jobs
            .find_one(scope.filter(doc! { "_id": id.0 }))
            .await
            .map_err(DbError::from_driver)
    }

    /// Any job, by id, webhook deliveries included (the live feed reads
    /// what changed, a worker what became of its job).
    pub async fn find(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        self.jobs
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn list(
        &self,
        scope: JobScope,
        state: Option<JobState>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>, DbError> {
        let mut base = scope.filter(Document::new());
        if let Some(state) = state {
            base.insert("state", state.as_str());
        }
        find_page(&self.jobs, base, "created_at", page, |j| (j.created_at, j.id.0)).await
    }

    /// True when a job that may still run needs the image.
    pub async fn references(&self, media: MediaId) -> Result<bool, DbError> {
        Ok(self
            .jobs
            .find_one(doc! {
                "payload.image": media.to_string(),
                "state": { "$in": [JobState::Queued.as_str(), JobState::Running.as_str()] },
            })
            .await
            .map_err(DbError::from_driver)?
            .is_some())
    }
}

impl JobQueue {
    /// True when a job that may still run needs the video.
    pub async fn needs_video(&self, video: bson::oid::ObjectId) -> Result<bool, DbError> {
        Ok(self
            .jobs
            .find_one(doc! {
                "payload.video": video,
                "state": { "$in": [JobState::Queued.as_str(), JobState::Running.as_str()] },
            })
            .await
            .map_err(DbError::from_driver)?
            .is_some())
    }
}

impl MediaReferences for JobQueue {
    fn references(&self, id: MediaId) -> BoxFuture<'_, Result<bool, DbError>> {
        Box::pin(JobQueue::references(self, id))
    }
}
