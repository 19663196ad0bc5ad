use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::{ClientSession, Collection};
use vigil_wire::people::SeenFace;

use super::{DetectionId, DetectionRecord};
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::media::{MediaId, MediaReferences};
use crate::users::UserId;

/// Whose detections a caller may see: only their own, admins too (camera
/// detections are reached through their alarms).
#[derive(Debug, Clone, Copy)]
pub struct DetectionScope(pub UserId);

#[derive(Clone)]
pub struct Detections {
    detections: Collection<DetectionRecord>,
}

impl Detections {
    pub fn new(db: &Database) -> Self {
        Self {
            detections: db.collection("detections"),
        }
    }

    pub async fn insert(&self, record: &DetectionRecord, session: &mut ClientSession) -> Result<(), DbError> {
        self.detections
            .insert_one(record)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    pub async fn get(
        &self,
        scope: DetectionScope,
        id: DetectionId,
    ) -> Result<Option<DetectionRecord>, DbError> {
        self.detections
            .find_one(doc! { "_id": id.0, "user_id": scope.0 .0 })
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn list(
        &self,
        scope: DetectionScope,
        page: &PageRequest,
    ) -> Result<Page<DetectionRecord>, DbError> {
        find_page(
            &self.detections,
            doc! { "user_id": scope.0 .0 },
            "created_at",
            page,
            |d| (d.created_at, d.id.0),
        )
        .await
    }

    /// The detection a job recorded for one of its frames.
    pub async fn of_job_frame(&self, job: ObjectId, frame: u32) -> Result<Option<DetectionRecord>, DbError> {
        self.detections
            .find_one(doc! { "job_id": job, "job_frame": frame })
            .await
            .map_err(DbError::from_driver)
    }

    /// The frames a job has recorded so far, in order, with their face
    /// counts and whether each raised an alarm: a job run again skips them.
    pub async fn job_frames(&self, job: ObjectId) -> Result<Vec<(u32, u32, bool)>, DbError> {
        let rows: Vec<Document> = self
            .detections
            .clone_with_type::<Document>()
            .find(doc! { "job_id": job })
            .projection(doc! { "_id": 0, "job_frame": 1, "face_count": 1, "alarm_id": 1 })
            .sort(doc! { "job_frame": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let number = |row: &Document, key: &str| -> Option<u32> {
            match row.get(key)? {
                mongodb::bson::Bson::Int32(n) => u32::try_from(*n).ok(),
                mongodb::bson::Bson::Int64(n) => u32::try_from(*n).ok(),
                _ => None,
            }
        };
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some((
                    number(row, "job_frame")?,
                    number(row, "face_count")?,
                    row.contains_key("alarm_id"),
                ))
            })
            .collect())
    }

    /// Removes and returns the record, if the caller owns it.
    pub async fn take(
        &self,
        scope: DetectionScope,
        id: DetectionId,
        session: &mut ClientSession,
    ) -> Result<Option<DetectionRecord>, DbError> {
        self.detections
            .find_one_and_delete(doc! { "_id": id.0, "user_id": scope.0 .0 })
            .session(session)
            .await
            .map_err(DbError::from_driver)
    }

    /// The detections with these ids, whoever owns them (the caller scoped
    /// the ids).
    pub async fn by_ids(&self, ids: &[ObjectId]) -> Result<Vec<DetectionRecord>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.detections
            .find(doc! { "_id": { "$in": ids } })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Detections with a face named `subject` (24 hex digits).
    pub async fn naming(&self, subject: &str) -> Result<Vec<DetectionRecord>, DbError> {
        self.detections
            .find(doc! { "faces.identity.subject_id": subject })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Detections with a face tagged as visitor `visitor` (24 hex digits).
    pub async fn with_visitor(&self, visitor: &str) -> Result<Vec<DetectionRecord>, DbError> {
        self.detections
            .find(doc! { "faces.identity.visitor.id": visitor })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Replaces a detection's faces (their identities, after an erasure).
    pub async fn set_faces(&self, id: DetectionId, faces: &[SeenFace]) -> Result<(), DbError> {
        let faces = mongodb::bson::to_bson(faces).map_err(|e| DbError::Malformed(e.to_string()))?;
        self.detections
            .update_one(doc! { "_id": id.0 }, doc! { "$set": { "faces": faces } })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// True when any detection refers to the image.
    pub async fn references(&self, media: MediaId) -> Result<bool, DbError> {
        let id = media.to_string();
        let filter: Document = doc! { "$or": [ { "media.original": &id }, { "media.annotated": &id } ] };
        Ok(self
            .detections
            .find_one(filter)
            .await
            .map_err(DbError::from_driver)?
            .is_some())
    }
}

impl MediaReferences for Detections {
    fn references(&self, id: MediaId) -> BoxFuture<'_, Result<bool, DbError>> {
        Box::pin(Detections::references(self, id))
    }
}
