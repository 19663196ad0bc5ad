//! The `seen_faces` collection: the embedding of every face of a detection
//! that could be embedded, written in the detection's transaction.
//!
//! Kept apart from the detection so that a search by face reads about 600
//! bytes a face rather than whole detections, and so that the embedding of
//! an unknown face (biometric data of someone who never agreed to be
//! enrolled) can expire long before the detection that mentions it.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document, RawDocumentBuf};
use mongodb::{ClientSession, Collection, Cursor};
use serde::{Deserialize, Serialize};

use super::DetectionId;
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError, StoredEmbedding};
use crate::users::UserId;
use crate::vision::Embedding;

pub const COLLECTION: &str = "seen_faces";

/// One embedded face of a detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeenFaceRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub detection_id: DetectionId,
    pub face_index: u32,
    /// The detection's owner; absent for a camera's (admins see those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    /// The recognizer that computed it: embeddings of two models are never compared.
    pub model: String,
    pub embedding: StoredEmbedding,
    /// The subject it was recognised as; absent for an unknown face, whose
    /// embedding expires after `--unknown-face-retention-days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<ObjectId>,
    /// The recurring stranger an unknown face was grouped with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<ObjectId>,
}

/// Who may be searched: one owner's faces, or every face (an admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintScope {
    Owner(UserId),
    Everyone,
}

#[derive(Clone)]
pub struct FacePrints {
    prints: Collection<SeenFaceRecord>,
}

impl FacePrints {
    pub fn new(db: &Database) -> Self {
        Self {
            prints: db.collection(COLLECTION),
        }
    }

    pub async fn insert_all(
        &self,
        records: &[SeenFaceRecord],
        session: &mut ClientSession,
    ) -> Result<(), DbError> {
        if records.is_empty() {
            return Ok(());
        }
        self.prints
            .insert_many(records)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Removes the prints of the detections `ids` (deleted in the same transaction).
    pub async fn delete_for(&self, ids: &[ObjectId], session: &mut ClientSession) -> Result<u64, DbError> {
        self.prints
            .delete_many(doc! { "detection_id": { "$in": ids } })
            .session(session)
            .await
            .map(|r| r.deleted_count)
            .map_err(DbError::from_driver)
    }

    /// The visitors the faces of detection `id` were grouped with.
    pub async fn visitors_of(
        &self,
        id: ObjectId,
        session: &mut ClientSession,
    ) -> Result<Vec<ObjectId>, DbError> {
        let mut cursor = self
            .prints
            .find(doc! { "detection_id": id, "visitor_id": { "$exists": true } })
            .session(&mut *session)
            .await
            .map_err(DbError::from_driver)?;
        let mut visitors = Vec::new();
        while let Some(print) = cursor.next(&mut *session).await {
            if let Some(visitor) = print.map_err(DbError::from_driver)?.visitor_id {
                if !visitors.contains(&visitor) {
                    visitors.push(visitor);
                }
            }
        }
        Ok(visitors)
    }

    /// Removes every print recognised as `subject` (its erasure).
    pub async fn delete_of_subject(&self, subject: ObjectId) -> Result<u64, DbError> {
        self.prints
            .delete_many(doc! { "subject_id": subject })
            .await
            .map(|r| r.deleted_count)
            .map_err(DbError::from_driver)
    }

    /// A visitor's faces, newest first.
    pub async fn of_visitor(
        &self,
        visitor: ObjectId,
        page: &PageRequest,
    ) -> Result<Page<SeenFaceRecord>, DbError> {
        find_page(
            &self.prints,
            doc! { "visitor_id": visitor },
            "created_at",
            page,
            |p| (p.created_at, p.id),
        )
        .await
    }

    /// Every face of the visitors `from`, with its embedding.
    pub async fn all_of_visitor(&self, visitor: ObjectId) -> Result<Vec<SeenFaceRecord>, DbError> {
        self.prints
            .find(doc! { "visitor_id": visitor })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Moves the faces of visitor `from` to `into`.
    pub async fn move_visitor(&self, from: ObjectId, into: ObjectId) -> Result<u64, DbError> {
        self.prints
            .update_many(
                doc! { "visitor_id": from },
                doc! { "$set": { "visitor_id": into } },
            )
            .await
            .map(|r| r.modified_count)
            .map_err(DbError::from_driver)
    }

    /// Gives a named visitor's faces to the subject.
    pub async fn name_visitor(&self, visitor: ObjectId, subject: ObjectId) -> Result<u64, DbError> {
        self.prints
            .update_many(
                doc! { "visitor_id": visitor },
                doc! { "$set": { "subject_id": subject }, "$unset": { "visitor_id": "" } },
            )
            .await
            .map(|r| r.modified_count)
            .map_err(DbError::from_driver)
    }

    /// Deletes an erased visitor's faces.
    pub async fn delete_of_visitor(&self, visitor: ObjectId) -> Result<u64, DbError> {
        self.prints
            .delete_many(doc! { "visitor_id": visitor })
            .await
            .map(|r| r.deleted_count)
            .map_err(DbError::from_driver)
    }

    /// How many prints are recognised as `subject`.
    pub async fn count_of_subject(&self, subject: ObjectId) -> Result<u64, DbError> {
        self.prints
            .count_documents(doc! { "subject_id": subject })
            .await
            .map_err(DbError::from_driver)
    }

    /// Removes the prints of unknown faces seen before `cutoff`.
    pub async fn delete_unknown_before(&self, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
        self.prints
            .delete_many(doc! {
                "subject_id": null,
                "created_at": { "$lt": BsonDateTime::from_chrono(cutoff) },
            })
            .await
            .map(|r| r.deleted_count)
            .map_err(DbError::from_driver)
    }

    /// The print of one face of a detection, if the scope may see it.
    pub async fn of_face(
        &self,
        scope: PrintScope,
        detection: DetectionId,
        face_index: u32,
    ) -> Result<Option<SeenFaceRecord>, DbError> {
        let mut filter = doc! { "detection_id": detection.0, "face_index": face_index };
        if let PrintScope::Owner(owner) = scope {
            filter.insert("user_id", owner.0);
        }
        self.prints.find_one(filter).await.map_err(DbError::from_driver)
    }

    /// Every print of `model` in the scope and window, as raw documents
    /// with only what a scan needs (`_id`, `detection_id`, `face_index`,
    /// `created_at`, `embedding`), newest first.
    pub async fn scan(
        &self,
        scope: PrintScope,
        model: &str,
        window: Document,
    ) -> Result<Cursor<RawDocumentBuf>, DbError> {
        let mut filter = window;
        filter.insert("model", model);
        if let PrintScope::Owner(owner) = scope {
            filter.insert("user_id", owner.0);
        }
        self.prints
            .clone_with_type::<RawDocumentBuf>()
            .find(filter)
            .projection(
                doc! { "_id": 1, "detection_id": 1, "face_index": 1, "created_at": 1, "embedding": 1 },
            )
            .sort(doc! { "created_at": -1, "_id": -1 })
            .batch_size(2000)
            .await
            .map_err(DbError::from_driver)
    }
}

/// An embedding read straight from a raw document's binary field, without
/// going through serde: a search reads a million of them.
pub fn raw_embedding(bytes: &[u8]) -> Option<Embedding> {
    if bytes.len() != 4 * crate::vision::EMBEDDING_LEN {
        return None;
    }
    let mut values = [0f32; crate::vision::EMBEDDING_LEN];
    for (value, chunk) in values.iter_mut().zip(bytes.chunks_exact(4)) {
        *value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if !value.is_finite() {
            return None;
        }
    }
    Some(Embedding::from_array(values))
}
