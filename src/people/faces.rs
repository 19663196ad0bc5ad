//! The `subject_faces` collection: one enrolled face each, with its
//! embedding, the model that computed it, its aligned crop and its source.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Binary};
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::{FaceOrigin, SubjectFaceId, SubjectFaceView, SubjectId};
pub use crate::db::StoredEmbedding;
use crate::db::{Database, DbError};
use crate::media::signed::UrlSigner;
use crate::media::{MediaId, MediaReferences};
use crate::users::UserId;
use crate::vision::{Embedding, Face};
use vigil_wire::people::{FeedbackKind, FeedbackView};

/// What a stored face says about its subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// One of the subject's faces (an enrolment, or an "is" correction).
    #[default]
    Positive,
    /// A face that is not the subject (a "not" correction): later faces
    /// nearer to it than to the subject's own faces are not given the name.
    Negative,
}

impl Polarity {
    fn is_positive(&self) -> bool {
        *self == Polarity::Positive
    }
}

/// Matches the faces of one polarity. Faces stored before corrections
/// existed have no field and are positive.
fn of_polarity(polarity: Polarity) -> mongodb::bson::Document {
    match polarity {
        Polarity::Positive => doc! { "polarity": { "$ne": "negative" } },
        Polarity::Negative => doc! { "polarity": "negative" },
    }
}

/// The stored enrolled face.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectFaceRecord {
    #[serde(rename = "_id")]
    pub id: SubjectFaceId,
    pub subject_id: SubjectId,
    pub owner_id: UserId,
    pub embedding: StoredEmbedding,
    /// The recognizer (and alignment) that computed the embedding; faces of
    /// another model are never compared, `vigil reindex` recomputes them.
    pub model: String,
    /// Where the face is in `source_image`.
    pub face: Face,
    pub origin: FaceOrigin,
    #[serde(default, skip_serializing_if = "Polarity::is_positive")]
    pub polarity: Polarity,
    /// The aligned crop the embedding was computed from (JPEG).
    pub crop: MediaId,
    /// The image the face was enrolled from, kept so a new model or
    /// alignment can recompute the embedding.
    pub source_image: MediaId,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

impl SubjectFaceRecord {
    pub fn view(&self, signer: &UrlSigner) -> SubjectFaceView {
        SubjectFaceView {
            id: self.id.to_string(),
            subject_id: self.subject_id.to_string(),
            origin: self.origin.clone(),
            face: self.face,
            crop_url: signer.url(&self.crop),
            model: self.model.clone(),
            created_at: self.created_at,
        }
    }

    /// The face as a correction: one taken from a detection.
    pub fn feedback_view(&self) -> Option<FeedbackView> {
        let FaceOrigin::Detection {
            detection_id,
            face_index,
        } = &self.origin
        else {
            return None;
        };
        Some(FeedbackView {
            id: self.id.to_string(),
            kind: match self.polarity {
                Polarity::Positive => FeedbackKind::Is,
                Polarity::Negative => FeedbackKind::Not,
            },
            subject_id: self.subject_id.to_string(),
            detection_id: detection_id.clone(),
            face_index: *face_index,
            created_at: self.created_at,
        })
    }

    pub fn images(&self) -> [MediaId; 2] {
        [self.crop, self.source_image]
    }
}

#[derive(Clone)]
pub struct SubjectFaces {
    faces: Collection<SubjectFaceRecord>,
}

impl SubjectFaces {
    pub fn new(db: &Database) -> Self {
        Self {
            faces: db.collection("subject_faces"),
        }
    }

    pub fn collection(&self) -> &Collection<SubjectFaceRecord> {
        &self.faces
    }

    pub async fn insert(&self, face: &SubjectFaceRecord, session: &mut ClientSession) -> Result<(), DbError> {
        self.faces
            .insert_one(face)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// A subject's own faces (not the corrections against it), oldest first.
    pub async fn of_subject(&self, subject: SubjectId) -> Result<Vec<SubjectFaceRecord>, DbError> {
        let mut filter = of_polarity(Polarity::Positive);
        filter.insert("subject_id", subject.0);
        self.faces
            .find(filter)
            .sort(doc! { "created_at": 1, "_id": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn get(&self, id: SubjectFaceId) -> Result<Option<SubjectFaceRecord>, DbError> {
        self.faces
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// One of `owner`'s faces, of any subject and polarity.
    pub async fn get_of_owner(
        &self,
        owner: UserId,
        id: SubjectFaceId,
    ) -> Result<Option<SubjectFaceRecord>, DbError> {
        self.faces
            .find_one(doc! { "_id": id.0, "owner_id": owner.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// How many "not" corrections a subject has.
    pub async fn count_negatives(&self, subject: SubjectId) -> Result<u64, DbError> {
        let mut filter = of_polarity(Polarity::Negative);
        filter.insert("subject_id", subject.0);
        self.faces
            .count_documents(filter)
            .await
            .map_err(DbError::from_driver)
    }

    /// Every face of `model`, for loading the gallery.
    pub async fn all_of_model(&self, model: &str) -> Result<Vec<SubjectFaceRecord>, DbError> {
        self.faces
            .find(doc! { "model": model })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Faces computed by another model than `model`: `vigil reindex` redoes them.
    pub async fn count_not_of_model(&self, model: &str) -> Result<u64, DbError> {
        self.faces
            .count_documents(doc! { "model": { "$ne": model } })
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn ids_not_of_model(&self, model: &str) -> Result<Vec<SubjectFaceId>, DbError> {
        self.ids(doc! { "model": { "$ne": model } }).await
    }

    pub async fn all_ids(&self) -> Result<Vec<SubjectFaceId>, DbError> {
        self.ids(doc! {}).await
    }

    async fn ids(&self, filter: mongodb::bson::Document) -> Result<Vec<SubjectFaceId>, DbError> {
        let ids = crate::db::ids_matching(&self.faces, filter).await?;
        Ok(ids.into_iter().map(SubjectFaceId).collect())
    }

    /// Deletes one face of `subject` if it has that polarity.
    pub async fn take(
        &self,
        subject: SubjectId,
        id: SubjectFaceId,
        polarity: Polarity,
        session: &mut ClientSession,
    ) -> Result<Option<SubjectFaceRecord>, DbError> {
        let mut filter = of_polarity(polarity);
        filter.insert("_id", id.0);
        filter.insert("subject_id", subject.0);
        self.faces
            .find_one_and_delete(filter)
            .session(session)
            .await
            .map_err(DbError::from_driver)
    }

    /// Removes every face of a subject and returns them (for their images).
    pub async fn take_all(
        &self,
        subject: SubjectId,
        session: &mut ClientSession,
    ) -> Result<Vec<SubjectFaceRecord>, DbError> {
        let faces: Vec<SubjectFaceRecord> = self
            .faces
            .find(doc! { "subject_id": subject.0 })
            .session(&mut *session)
            .await
            .map_err(DbError::from_driver)?
            .stream(&mut *session)
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        self.faces
            .delete_many(doc! { "subject_id": subject.0 })
            .session(session)
            .await
            .map_err(DbError::from_driver)?;
        Ok(faces)
    }

    /// The crop of a subject's oldest remaining face, for its cover.
    pub async fn first_crop(
        &self,
        subject: SubjectId,
        session: &mut ClientSession,
    ) -> Result<Option<MediaId>, DbError> {
        let mut filter = of_polarity(Polarity::Positive);
        filter.insert("subject_id", subject.0);
        Ok(self
            .faces
            .find_one(filter)
            .sort(doc! { "created_at": 1, "_id": 1 })
            .session(session)
            .await
            .map_err(DbError::from_driver)?
            .map(|f| f.crop))
    }

    /// A new embedding (and crop) for one face, after a model change.
    pub async fn reembed(
        &self,
        id: SubjectFaceId,
        embedding: Embedding,
        model: &str,
        crop: MediaId,
    ) -> Result<(), DbError> {
        let binary: Binary = StoredEmbedding(embedding).into();
        self.faces
            .update_one(
                doc! { "_id": id.0 },
                doc! { "$set": { "embedding": binary, "model": model, "crop": crop.to_string() } },
            )
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}

impl MediaReferences for SubjectFaces {
    fn references(&self, id: MediaId) -> BoxFuture<'_, Result<bool, DbError>> {
        Box::pin(async move {
            let id = id.to_string();
            Ok(self
                .faces
                .find_one(doc! { "$or": [ { "crop": &id }, { "source_image": &id } ] })
                .await
                .map_err(DbError::from_driver)?
                .is_some())
        })
    }
}
