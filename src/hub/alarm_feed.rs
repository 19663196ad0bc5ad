//! Alarms to subscribers: those raised here (the in-process [`AlarmBus`],
//! no database round trip) and those inserted by any instance sharing the
//! database (a change stream on `alarms`). An alarm raised here arrives on
//! both; a small set of recently delivered ids makes each reach this
//! instance's sessions once.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use chrono::DateTime;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use vigil_wire::hub::{ServerMessage, Topic};

use super::Hub;
use crate::alarms::{Alarm, AlarmBus, AlarmId};
use crate::db::{change_feed, Database, DbError};

/// Ids remembered for de-duplication. Both paths deliver within moments of
/// the insert, so the same alarm never arrives thousands of alarms apart.
const REMEMBERED: usize = 4096;

#[derive(Default)]
pub struct RecentIds {
    set: HashSet<AlarmId>,
    order: VecDeque<AlarmId>,
}

impl RecentIds {
    /// True the first time an id is seen (within the window).
    pub fn first_time(&mut self, id: AlarmId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

pub type AlarmStream = change_feed::Changes;

fn inserts() -> Vec<Document> {
    vec![doc! { "$match": { "operationType": "insert" } }]
}

pub struct AlarmFeed {
    collection: Collection<Document>,
    recent: Mutex<RecentIds>,
}

impl AlarmFeed {
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("alarms"),
            recent: Mutex::new(RecentIds::default()),
        }
    }

    pub async fn open(&self) -> Result<AlarmStream, DbError> {
        change_feed::open(&self.collection, &inserts(), None).await
    }

    /// Delivers an alarm to every session allowed to see it, unless it was
    /// delivered already.
    pub fn deliver(&self, hub: &Hub, alarm: &Alarm) {
        if !self
            .recent
            .lock()
            .expect("recent ids lock poisoned")
            .first_time(alarm.id)
        {
            return;
        }
        let mut view = alarm.view(hub.signer());
        // The database keeps milliseconds: an alarm from the bus must look
        // exactly like the same alarm read back (change stream, HTTP API).
        view.date = DateTime::from_timestamp_millis(view.date.timestamp_millis()).unwrap_or(view.date);
        let message = ServerMessage::Alarm(view);
        let frame = message.text().into();
        let delivered = hub.registry().fan_out(&frame, |s| {
            s.wants(Topic::Alarms) && s.viewer.get().is_some_and(|v| v.may_see(alarm))
        });
        tracing::debug!(alarm = %alarm.id, sessions = delivered.len(), "alarm delivered");
        hub.log().record_broadcast(&delivered, &message);
    }
}

/// Alarms raised by this process.
#[tracing::instrument(name = "alarm_bus_feed", skip_all)]
pub async fn follow_bus(hub: Hub, bus: AlarmBus) {
    let mut alarms = bus.subscribe();
    loop {
        match alarms.recv().await {
            Ok(alarm) => hub.alarm_feed().deliver(&hub, &alarm),
            // The change stream carries the missed ones too.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "alarm bus overflowed; the change stream delivers the rest"
                )
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Alarms inserted by any instance, followed from the last resume token
/// after a stream error so that nothing inserted meanwhile is lost
/// (`db::change_feed`).
pub async fn follow_change_stream(hub: Hub, first: Option<AlarmStream>) {
    let collection = hub.alarm_feed().collection.clone();
    let follow = change_feed::follow(collection, inserts(), first, move |change| {
        if let Some(document) = change.full_document {
            match mongodb::bson::from_document::<Alarm>(document) {
                Ok(alarm) => hub.alarm_feed().deliver(&hub, &alarm),
                Err(err) => tracing::warn!(error = %err, "skipping an alarm document of unexpected shape"),
            }
        }
        std::future::ready(())
    });
    follow
        .instrument(tracing::info_span!("alarm_change_stream"))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_and_old_ids_are_forgotten() {
        let mut recent = RecentIds::default();
        let first = AlarmId::new();
        assert!(recent.first_time(first));
        assert!(!recent.first_time(first));
        for _ in 0..REMEMBERED {
            assert!(recent.first_time(AlarmId::new()));
        }
        assert_eq!(recent.set.len(), REMEMBERED);
        assert!(recent.first_time(first), "forgotten after {REMEMBERED} newer ids");
    }
}
