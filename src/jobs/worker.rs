//! The workers of one instance: each claims a job, runs it while a keeper
//! renews its lease, and ends it: done, failed, or queued again after a
//! failed attempt. A job whose lease is lost (cancelled, or taken over
//! after this worker was too slow to renew) is dropped at once and not
//! written to again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tracing::Instrument;
use vigil_wire::jobs::JobError;
use vigil_wire::ErrorCode;

use super::detect::DetectJobs;
use super::metrics;
use super::queue::JobQueue;
use super::video::VideoJobs;
use super::{JobProgress, JobRecord, JobResult, Payload};
use crate::db::{Database, DbError};
use crate::users::{UserError, Users};

/// How often idle workers look for jobs other instances queued (their own
/// instance's wake them at once).
const POLL: Duration = Duration::from_secs(1);
/// Pause after the database failed a claim.
const CLAIM_BACKOFF: Duration = Duration::from_secs(2);

/// Why a job stopped before it was done.
#[derive(Debug)]
pub enum Stop {
    /// The lease is no longer this worker's: write nothing more.
    Lost,
    /// Failed for good (the quota ran out, not a video): not run again.
    Failed(JobError),
    /// This attempt failed (the database was away, ffmpeg died): run again
    /// while the kind's retry policy allows.
    Retry(JobError),
    /// This attempt failed and the handler already asked the policy
    /// ([`Run::retry_delay`]): run again after this pause. A handler that
    /// reports the outcome of each attempt itself (a webhook's delivery
    /// log) decides once, so that what it wrote is what happens.
    RetryIn(JobError, Duration),
}

impl Stop {
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        Stop::Failed(JobError {
            code,
            message: message.into(),
        })
    }

    pub fn retry(code: ErrorCode, message: impl Into<String>) -> Self {
        Stop::Retry(JobError {
            code,
            message: message.into(),
        })
    }
}

impl From<DbError> for Stop {
    fn from(err: DbError) -> Self {
        use crate::error::Coded;
        Stop::retry(err.code(), err.to_string())
    }
}

/// A job being run, as its handler sees it.
pub struct Run<'a> {
    pub job: &'a JobRecord,
    queue: &'a JobQueue,
    holder: &'a str,
    last: Mutex<JobResult>,
}

impl Run<'_> {
    /// Records progress (and renews the lease); [`Stop::Lost`] when the job
    /// is no longer this worker's.
    pub async fn report(&self, progress: &JobProgress, result: &JobResult) -> Result<(), Stop> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = result.clone();
        if self
            .queue
            .report(self.job.id, self.holder, progress, result)
            .await?
        {
            Ok(())
        } else {
            Err(Stop::Lost)
        }
    }

    /// The pause before the next attempt should this one fail now; `None`:
    /// this one is the last.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.queue.policy(self.job.kind).next_delay(
            self.job.attempts,
            self.job.created_at,
            chrono::Utc::now(),
        )
    }

    fn last_result(&self) -> JobResult {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs a kind of job whose work belongs to another module, which depends
/// on this one (webhook deliveries: `notify::webhooks`).
pub trait KindHandler: Send + Sync {
    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Result<JobResult, Stop>>;
}

/// What runs each kind of job.
pub struct Handlers {
    pub detect: DetectJobs,
    pub video: VideoJobs,
    pub webhook: Arc<dyn KindHandler>,
}

impl Handlers {
    async fn run(&self, run: &Run<'_>) -> Result<JobResult, Stop> {
        match &run.job.payload {
            Payload::Detect { image } => self.detect.run(run, *image).await,
            Payload::Video { video, fps, .. } => self.video.run(run, *video, *fps).await,
            Payload::Webhook { .. } => self.webhook.run(run).await,
        }
    }

    /// Removes what a job that ended no longer needs: a video always, a
    /// detect job's image unless its detection now holds it.
    pub async fn discard_payload(&self, job: &JobRecord, done: bool) {
        match &job.payload {
            Payload::Detect { image } if !done => self.detect.discard(*image).await,
            Payload::Detect { .. } => {}
            Payload::Video { video, .. } => self.video.discard(*video).await,
            Payload::Webhook { .. } => {}
        }
    }
}

/// This instance's workers.
#[derive(Clone)]
pub struct Workers {
    pub queue: JobQueue,
    pub handlers: Arc<Handlers>,
    pub holder: String,
    pub db: Database,
    pub users: Users,
}

impl Workers {
    /// Starts the workers (`--job-workers` of them) and the task that fails
    /// jobs abandoned on their last attempt.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = (0..self.queue.settings.workers)
            .map(|n| {
                let worker = self.clone();
                tokio::spawn(
                    worker
                        .work()
                        .instrument(tracing::info_span!("job_worker", worker = n)),
                )
            })
            .collect();
        let reaper = self.clone();
        tasks.push(tokio::spawn(
            reaper
                .reap_abandoned()
                .instrument(tracing::info_span!("job_reaper")),
        ));
        tasks
    }

    /// Gives back this instance's running jobs on a clean shutdown.
    pub async fn release(&self) {
        match self.queue.release_all(&self.holder).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "running jobs given back to the queue"),
            Err(err) => {
                tracing::warn!(error = %err, "could not give back running jobs; they resume when their lease expires")
            }
        }
    }

    async fn work(self) {
        loop {
            match self.queue.claim(&self.holder).await {
                Ok(Some(job)) => {
                    let span =
                        tracing::info_span!("job", job = %job.id, kind = ?job.kind, attempt = job.attempts);
                    self.run(job).instrument(span).await;
                }
                Ok(None) => {
                    let _ = tokio::time::timeout(POLL, self.queue.submitted()).await;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "cannot claim jobs now");
                    tokio::time::sleep(CLAIM_BACKOFF).await;
                }
            }
        }
    }

    async fn run(&self, job: JobRecord) {
        let started = Instant::now();
        tracing::info!(source = %job.source, "job started");
        let run = Run {
            job: &job,
            queue: &self.queue,
            holder: &self.holder,
            last: Mutex::new(job.result.clone()),
        };
        metrics::started();
        let outcome = tokio::select! {
            outcome = self.handlers.run(&run) => outcome,
            () = keep_lease(&self.queue, &job, &self.holder) => Err(Stop::Lost),
        };
        let elapsed = started.elapsed();
        metrics::stopped();
        let result = match &outcome {
            Ok(result) => result.clone(),
            Err(_) => run.last_result(),
        };
        // The kind's retry policy decides whether a failed attempt is the last.
        let outcome = match outcome {
            Err(Stop::Retry(error)) => match run.retry_delay() {
                Some(delay) => Err(Stop::RetryIn(error, delay)),
                None => Err(Stop::Failed(error)),
            },
            other => other,
        };
        match outcome {
            Ok(result) => {
                self.end(&job, &result, None).await;
                metrics::finished(job.kind, elapsed, true);
                tracing::info!(
                    detections = result.detections,
                    alarms = result.alarms,
                    ?elapsed,
                    "job done"
                );
            }
            Err(Stop::Lost) => {
                metrics::lost();
                // Cancelled: what it leaves is settled here, by the worker
                // that held it, once it no longer reads it.
                if let Ok(Some(now)) = self.queue.find(job.id).await {
                    if now.state == super::JobState::Cancelled {
                        self.settle_unfinished(&now).await;
                    }
                }
                tracing::info!("job no longer ours (cancelled, or taken over): stopped");
            }
            Err(Stop::RetryIn(error, delay)) => self.retry_later(&job, &error, delay).await,
            Err(Stop::Retry(error) | Stop::Failed(error)) => {
                tracing::warn!(code = error.code.as_str(), error = %error.message, "job failed");
                self.end(&job, &result, Some(&error)).await;
                metrics::finished(job.kind, elapsed, false);
            }
        }
    }

    async fn retry_later(&self, job: &JobRecord, error: &JobError, delay: Duration) {
        tracing::warn!(code = error.code.as_str(), error = %error.message, ?delay, "job attempt failed; it will be run again");
        if let Err(err) = self.queue.retry_later(job.id, &self.holder, error, delay).await {
            tracing::warn!(error = %err, "could not queue the job again; it resumes when its lease expires");
        }
    }

    /// Writes the end of a job and removes what it no longer needs. A
    /// detect job that failed without a detection gives its unit of quota
    /// back in the same transaction: only a stored detection is paid for.
    /// One that failed after an earlier attempt stored its detection is
    /// done: that detection keeps its image and its unit.
    async fn end(&self, job: &JobRecord, result: &JobResult, error: Option<&JobError>) {
        let mut error = error;
        let mut result = result.clone();
        let mut refund = false;
        if error.is_some() && matches!(job.payload, Payload::Detect { .. }) {
            match self.handlers.detect.recorded(job).await {
                Ok(Some(record)) => {
                    result = super::detect::result_of(&record);
                    error = None;
                }
                Ok(None) => refund = true,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot tell whether the job stored its detection; it runs again when its lease expires");
                    return;
                }
            }
        }
        let ended = if refund {
            let _turn = Users::charge_turn(job.user_id).await;
            let patience = crate::db::ABANDONED_TRANSACTION_WAIT;
            crate::in_transaction!(self.db, UserError, within patience, |session| async {
                let ended = self
                    .queue
                    .finish(job.id, &self.holder, &result, error, Some(&mut *session))
                    .await?;
                if ended.is_some() {
                    self.users.refund(job.user_id, session).await?;
                }
                Ok(ended)
            })
        } else {
            self.queue
                .finish(job.id, &self.holder, &result, error, None)
                .await
                .map_err(UserError::from)
        };
        match ended {
            Ok(Some(ended)) => self.handlers.discard_payload(&ended, error.is_none()).await,
            Ok(None) => {
                // Cancelled as it ended: settled like any cancelled job.
                if let Ok(Some(now)) = self.queue.find(job.id).await {
                    if now.state == super::JobState::Cancelled {
                        self.settle_unfinished(&now).await;
                    }
                }
                tracing::info!("job no longer ours when it ended: left as it is");
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not record the end of the job; it runs again when its lease expires")
            }
        }
    }

    /// A job failed without a worker (abandoned, or cancelled while
    /// queued): a detect job that stored no detection gives its unit back
    /// and its image goes; one that did keeps both.
    pub async fn settle_unfinished(&self, job: &JobRecord) {
        if let Payload::Detect { .. } = job.payload {
            match self.handlers.detect.recorded(job).await {
                Ok(Some(_)) => return,
                Ok(None) => {
                    let _turn = Users::charge_turn(job.user_id).await;
                    let refunded = crate::in_transaction!(self.db, UserError, |session| async {
                        self.users.refund(job.user_id, session).await
                    });
                    if let Err(err) = refunded {
                        tracing::warn!(job = %job.id, error = %err, "could not give back the job's unit of quota");
                    }
                }
                Err(err) => {
                    tracing::warn!(job = %job.id, error = %err, "cannot tell whether the job stored its detection; its image is left to the orphan sweep");
                    return;
                }
            }
        }
        self.handlers.discard_payload(job, false).await;
    }

    /// Every lease length: fails the jobs whose worker died on their last
    /// attempt, and removes their payloads.
    async fn reap_abandoned(self) {
        loop {
            tokio::time::sleep(self.queue.settings.lease.max(POLL)).await;
            match self.queue.fail_abandoned().await {
                Ok(failed) => {
                    for job in failed {
                        tracing::warn!(job = %job.id, attempts = job.attempts, "job failed: its workers kept stopping");
                        metrics::finished(job.kind, Duration::ZERO, false);
                        self.settle_unfinished(&job).await;
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cannot look for abandoned jobs now"),
            }
        }
    }
}

/// Renews the lease every third of its length; returns once it is lost
/// (not this worker's any more, or not renewed in time because the database
/// was away: another worker may have it by then).
async fn keep_lease(queue: &JobQueue, job: &JobRecord, holder: &str) {
    let length = queue.settings.lease;
    let every = (length / 3).max(Duration::from_millis(200));
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match queue.renew(job.id, holder).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not renew the job's lease");
                if renewed.elapsed() >= length {
                    return;
                }
            }
        }
    }
}
