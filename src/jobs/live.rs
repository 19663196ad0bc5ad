//! Jobs to the hub's `jobs` topic: a change stream on `jobs`, so sessions
//! of every instance see the changes any instance's workers made, each for
//! its own account only. An update event is followed by a read of the job
//! (the stream's own post-image is not relied on), so a burst of progress
//! updates may show the newest state more than once, never an older one
//! after a newer one from the same read.

use mongodb::bson::{doc, Document};
use tracing::Instrument;
use vigil_wire::hub::{ServerMessage, Topic};

use super::queue::JobQueue;
use super::{JobId, JobRecord};
use crate::db::{change_feed, Database};
use crate::hub::Hub;

fn changes() -> Vec<Document> {
    vec![doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace"] } } }]
}

fn deliver(hub: &Hub, job: &JobRecord) {
    // Webhook deliveries are the webhook's log, not the account's jobs.
    if job.kind == super::JobKind::Webhook {
        return;
    }
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
        change_feed::open(&collection, &changes(), None).await.ok()
    } else {
        None
    };
    tokio::spawn(
        change_feed::follow(collection, changes(), first, move |change| {
            let (hub, queue) = (hub.clone(), queue.clone());
            async move {
                let Some(id) = change
                    .document_key
                    .as_ref()
                    .and_then(|key| key.get_object_id("_id").ok())
                else {
                    return;
                };
                match queue.find(JobId(id)).await {
                    Ok(Some(job)) => deliver(&hub, &job),
                    Ok(None) => {}
                    Err(err) => tracing::debug!(error = %err, "cannot read a changed job"),
                }
            }
        })
        .instrument(tracing::info_span!("jobs_change_stream")),
    )
}
