//! Readings to the hub's `telemetry` topic: a change stream per telemetry
//! collection, so that sessions of every instance see the readings any
//! instance stored, each for its own account only. A reading's retry
//! inserts nothing, so nothing is pushed twice.

use mongodb::bson::{doc, Document};
use tracing::Instrument;
use vigil_wire::hub::{ServerMessage, Topic};
use vigil_wire::telemetry::ReadingView;

use super::{Gps, Gyroscope, StoredPhoto, StoredReading, Telemetry};
use crate::db::{change_feed, Database};
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

fn inserts() -> Vec<Document> {
    vec![doc! { "$match": { "operationType": "insert" } }]
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
            change_feed::open(&collection, &inserts(), None).await.ok()
        } else {
            None
        };
        let (hub, telemetry) = (hub.clone(), telemetry.clone());
        let follow = change_feed::follow(collection, inserts(), first, move |change| {
            if let Some(document) = change.full_document {
                match kind.view(&telemetry, document) {
                    Ok((owner, reading)) => deliver(&hub, owner, reading),
                    Err(err) => tracing::warn!(error = %err, "skipping a reading of unexpected shape"),
                }
            }
            std::future::ready(())
        });
        tasks.push(tokio::spawn(
            follow.instrument(tracing::info_span!("telemetry_change_stream", ?kind)),
        ));
    }
    tasks
}
