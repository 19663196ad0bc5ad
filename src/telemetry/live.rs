//! Readings to the hub's `telemetry` topic: a change stream per telemetry
//! collection, so that sessions of every instance see the readings any
//! instance stored, each for its own account only. A reading's retry
//! inserts nothing, so nothing is pushed twice.

use std::time::Duration;

use futures_util::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::Collection;
use vigil_wire::hub::{ServerMessage, Topic};
use vigil_wire::telemetry::ReadingView;

use super::{Gps, Gyroscope, StoredPhoto, StoredReading, Telemetry};
use crate::db::{Database, DbError};
use crate::hub::Hub;
use crate::users::UserId;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Gyroscope,
    Gps,
    Photo,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Gyroscope => "telemetry_gyroscope",
            Kind::Gps => "telemetry_gps",
            Kind::Photo => "telemetry_photos",
        }
    }

    fn view(self, telemetry: &Telemetry, document: Document) -> Result<(UserId, ReadingView), String> {
        let err = |e: mongodb::bson::de::Error| e.to_string();
        Ok(match self {
            Kind::Gyroscope => {
                let r: StoredReading<Gyroscope> = mongodb::bson::from_document(document).map_err(err)?;
                (r.user_id, ReadingView::Gyroscope(r.view()))
            }
            Kind::Gps => {
                let r: StoredReading<Gps> = mongodb::bson::from_document(document).map_err(err)?;
                (r.user_id, ReadingView::Gps(r.view()))
            }
            Kind::Photo => {
                let p: StoredPhoto = mongodb::bson::from_document(document).map_err(err)?;
                (p.user_id, ReadingView::Photo(telemetry.photo_view(&p)))
            }
        })
    }
}

fn deliver(hub: &Hub, owner: UserId, reading: ReadingView) {
    let message = ServerMessage::Telemetry { reading };
    let frame = message.text().into();
    let delivered = hub.registry().fan_out(&frame, |s| {
        s.wants(Topic::Telemetry) && s.viewer.get().is_some_and(|v| v.user_id == owner)
    });
    hub.log().record_broadcast(&delivered, &message);
}

type Inserts = ChangeStream<ChangeStreamEvent<Document>>;

async fn open(collection: &Collection<Document>, resume: Option<ResumeToken>) -> Result<Inserts, DbError> {
    collection
        .watch()
        .pipeline([doc! { "$match": { "operationType": "insert" } }])
        .resume_after(resume)
        .await
        .map_err(DbError::from_driver)
}

/// Opens a change stream per kind of reading (before the server answers,
/// when the database answered at startup, so no reading stored from then on
/// is missed) and follows each in a task of its own.
pub async fn start(
    hub: Hub,
    telemetry: Telemetry,
    db: &Database,
    database_up: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for kind in [Kind::Gyroscope, Kind::Gps, Kind::Photo] {
        let collection = db.collection::<Document>(kind.collection());
        let first = if database_up {
            open(&collection, None).await.ok()
        } else {
            None
        };
        tasks.push(tokio::spawn(follow(
            hub.clone(),
            telemetry.clone(),
            kind,
            collection,
            first,
        )));
    }
    tasks
}

/// Inserts into one collection, from the last resume token after a stream
/// error, so a blip loses nothing.
#[tracing::instrument(name = "telemetry_change_stream", skip(hub, telemetry, collection, first))]
async fn follow(
    hub: Hub,
    telemetry: Telemetry,
    kind: Kind,
    collection: Collection<Document>,
    mut first: Option<Inserts>,
) {
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
                    let Some(document) = event.full_document else {
                        continue;
                    };
                    match kind.view(&telemetry, document) {
                        Ok((owner, reading)) => deliver(&hub, owner, reading),
                        Err(err) => tracing::warn!(error = %err, "skipping a reading of unexpected shape"),
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
