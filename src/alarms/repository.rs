use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Collection};

use super::{Alarm, AlarmId};
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::users::UserId;

/// Whose alarms a caller may see.
#[derive(Debug, Clone, Copy)]
pub enum AlarmScope {
    /// Admins: every alarm, cameras included.
    All,
    Owner(UserId),
}

impl AlarmScope {
    fn filter(self) -> Document {
        match self {
            AlarmScope::All => doc! {},
            AlarmScope::Owner(user) => doc! { "user_id": user.0 },
        }
    }
}

#[derive(Clone)]
pub struct Alarms {
    alarms: Collection<Alarm>,
}

impl Alarms {
    pub fn new(db: &Database) -> Self {
        Self {
            alarms: db.collection("alarms"),
        }
    }

    pub fn collection(&self) -> &Collection<Alarm> {
        &self.alarms
    }

    pub async fn insert(&self, alarm: &Alarm, session: Option<&mut ClientSession>) -> Result<(), DbError> {
        let insert = self.alarms.insert_one(alarm);
        match session {
            Some(s) => insert.session(s).await,
            None => insert.await,
        }
        .map(drop)
        .map_err(DbError::from_driver)
    }

    pub async fn get(&self, scope: AlarmScope, id: AlarmId) -> Result<Option<Alarm>, DbError> {
        let mut filter = scope.filter();
        filter.insert("_id", id.0);
        self.alarms.find_one(filter).await.map_err(DbError::from_driver)
    }

    pub async fn list(&self, scope: AlarmScope, page: &PageRequest) -> Result<Page<Alarm>, DbError> {
        find_page(&self.alarms, scope.filter(), "date", page, |a| (a.date, a.id.0)).await
    }

    pub async fn delete_for_detection(
        &self,
        detection: ObjectId,
        session: &mut ClientSession,
    ) -> Result<(), DbError> {
        self.alarms
            .delete_many(doc! { "detection_id": detection })
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Alarms whose identities name `subject` (24 hex digits).
    pub async fn naming(&self, subject: &str) -> Result<Vec<Alarm>, DbError> {
        self.alarms
            .find(doc! { "identities.subject_id": subject })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Alarms with a face tagged as visitor `visitor` (24 hex digits).
    pub async fn with_visitor(&self, visitor: &str) -> Result<Vec<Alarm>, DbError> {
        self.alarms
            .find(doc! { "identities.visitor.id": visitor })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Stores an alarm's changed identities with the message written again
    /// from them (after an erasure, a naming).
    pub async fn rename_faces(&self, alarm: &Alarm) -> Result<(), DbError> {
        let message = Alarm::message_for(
            alarm.face_count,
            &alarm.identities,
            &alarm.source,
            alarm.camera_id.is_some(),
        );
        let identities =
            mongodb::bson::to_bson(&alarm.identities).map_err(|e| DbError::Malformed(e.to_string()))?;
        self.alarms
            .update_one(
                doc! { "_id": alarm.id.0 },
                doc! { "$set": { "identities": identities, "message": message } },
            )
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}
