//! Jobs to the hub's `jobs` topic: a change stream on `jobs`, so sessions
//! of every instance see the changes any instance's workers made, each for
//! its own account only. An update event is followed by a read of the job
//! (the stream's own post-image is not relied on), so a burst of progress
//! updates may show the newest state more than once, never an older one
//! after a newer one from the same read.

use std::time::Duration;

use futures_util::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::Collection;
use vigil_wire::hub::{ServerMessage, Topic};

use super::queue::JobQueue;
use super::{JobId, JobRecord};
use crate::db::{Database, DbError};
use crate::hub::Hub;

type Changes = ChangeStream<ChangeStreamEvent<Document>>;

async fn open(collection: &Collection<Document>, resume: Option<ResumeToken>) -> Result<Changes, DbError> {
    collection
        .watch()
        .pipeline([doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace"] } } }])
        .resume_after(resume)
        .await
        .map_err(DbError::from_driver)
}

fn deliver(hub: &Hub, job: &JobRecord) {
    let owner = job.user_id;
    let message = ServerMessage::Job { job: job.view() };
    let frame = message.text().into();
    let delivered = hub.registry().fan_out(&frame, |s| {
        s.wants(Topic::Jobs) && s.viewer.get().is_some_and(|v| v.user_id == owner)
    });
    hub.log().record_broadcast(&delivered, &message);
}

/// Opens the stream (now, when the database answered at startup, so no
/// change from then on is missed) and follows it in a task.
pub async fn start(
    hub: Hub,
    queue: JobQueue,
    db: &Database,
    database_up: bool,
) -> tokio::task::JoinHandle<()> {
    let collection = db.collection::<Document>("jobs");
    let first = if database_up {
        open(&collection, None).await.ok()
    } else {
        None
    };
    tokio::spawn(follow(hub, queue, collection, first))
}

/// From the last resume token after a stream error, so a blip loses nothing.
#[tracing::instrument(name = "jobs_change_stream", skip_all)]
async fn follow(hub: Hub, queue: JobQueue, collection: Collection<Document>, mut first: Option<Changes>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(250);
    let mut resume: Option<ResumeToken> = None;
    loop {
        let opened = match first.take() {
            Some(stream) => Ok(stream),
            None => open(&collection, resume.clone()).await,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(err) => {
                if resume.take().is_some() {
                    tracing::warn!(error = %err, "cannot resume; following from now on");
                } else {
                    tracing::debug!(error = %err, ?backoff, "cannot open the change stream yet; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    resume = stream.resume_token();
                    backoff = Duration::from_millis(250);
                    let Some(id) = event
                        .document_key
                        .as_ref()
                        .and_then(|key| key.get_object_id("_id").ok())
                    else {
                        continue;
                    };
                    match queue.find(JobId(id)).await {
                        Ok(Some(job)) => deliver(&hub, &job),
                        Ok(None) => {}
                        Err(err) => tracing::debug!(error = %err, "cannot read a changed job"),
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "change stream failed; reopening");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
