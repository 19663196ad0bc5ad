//! What the API does with people: subjects, enrolment, and erasing a
//! person. Every change reaches this instance's gallery at once and the
//! other instances' through the change streams ([`super::sync`]).

use chrono::Utc;

use super::erase::{remove_images, Erasure};
use super::gallery::GalleryFace;
use super::{
    FaceOrigin, Gallery, NewSubject, PeopleError, Polarity, SubjectFaceId, SubjectFaceRecord, SubjectFaces,
    SubjectId, SubjectPatch, SubjectRecord, Subjects,
};
use crate::audit::AuditLog;
use crate::db::paging::{Page, PageRequest};
use crate::db::Database;
use crate::detections::{DetectionId, DetectionScope, Detections};
use crate::media::{ImageKind, MediaId, SharedMediaStore};
use crate::users::UserId;
use crate::vision::{
    decode_upload, encode_jpeg, DecodedUpload, DetectorPool, Face, ImageLimits, RecognizerPool,
};

/// How much one owner may enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeopleLimits {
    pub max_subjects: u64,
    pub max_faces_per_subject: u32,
}

impl Default for PeopleLimits {
    fn default() -> Self {
        Self {
            max_subjects: 10_000,
            max_faces_per_subject: 100,
        }
    }
}

/// Where the face to enrol is.
#[derive(Debug)]
pub enum EnrolFrom {
    /// An image: its largest face is enrolled.
    Image(Vec<u8>),
    /// A face of one of the caller's detections.
    Detection {
        detection_id: DetectionId,
        face_index: u32,
    },
    /// A face of a detection the caller was found to see some other way
    /// (a camera's, through its visitor): not checked against the owner.
    Seen {
        detection_id: DetectionId,
        face_index: u32,
    },
}

#[derive(Clone)]
pub struct People {
    pub db: Database,
    pub subjects: Subjects,
    pub faces: SubjectFaces,
    pub gallery: Gallery,
    pub detector: DetectorPool,
    pub recognizer: RecognizerPool,
    pub media: SharedMediaStore,
    pub detections: Detections,
    pub image_limits: ImageLimits,
    pub limits: PeopleLimits,
    pub erasure: Erasure,
    /// Where exports are recorded.
    pub audit: AuditLog,
}

/// When the references to an erased subject are looked for again: past the
/// moment any instance could still have named them.
const SECOND_PASS: std::time::Duration = std::time::Duration::from_secs(5);

impl People {
    pub async fn create(&self, owner: UserId, new: NewSubject) -> Result<SubjectRecord, PeopleError> {
        if self.subjects.count(owner).await? >= self.limits.max_subjects {
            return Err(PeopleError::LimitReached(format!(
                "you have {} subjects, the most one account may have",
                self.limits.max_subjects
            )));
        }
        let now = Utc::now();
        let subject = SubjectRecord {
            id: SubjectId::new(),
            owner_id: owner,
            name: new.name.as_str().to_owned(),
            name_key: new.name.key(),
            note: new.note.and_then(|n| n.into_inner()),
            face_count: 0,
            cover: None,
            created_at: now,
            updated_at: now,
        };
        self.subjects.insert(&subject).await?;
        self.gallery.set_name(subject.id, subject.name.clone());
        tracing::info!(subject = %subject.id, "subject created");
        Ok(subject)
    }

    pub async fn get(&self, owner: UserId, id: SubjectId) -> Result<SubjectRecord, PeopleError> {
        self.subjects
            .get(owner, id)
            .await?
            .ok_or(PeopleError::SubjectNotFound)
    }

    pub async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<SubjectRecord>, PeopleError> {
        Ok(self.subjects.list(owner, page).await?)
    }

    pub async fn update(
        &self,
        owner: UserId,
        id: SubjectId,
        patch: SubjectPatch,
    ) -> Result<SubjectRecord, PeopleError> {
        let note = patch.note.map(|n| n.into_inner());
        let subject = self
            .subjects
            .update(owner, id, patch.name.as_ref(), note)
            .await?
            .ok_or(PeopleError::SubjectNotFound)?;
        self.gallery.set_name(subject.id, subject.name.clone());
        Ok(subject)
    }

    /// Erases the subject: every face of it, their images, and every
    /// reference to it in detections, alarms and the message log.
    pub async fn delete(&self, owner: UserId, id: SubjectId) -> Result<(), PeopleError> {
        let (subject, faces) = self
            .erasure
            .delete_subject(Some(owner), id)
            .await?
            .ok_or(PeopleError::SubjectNotFound)?;
        // No new face gets the name here from now on; other instances stop
        // within their change stream's delay, which the second pass covers.
        self.gallery.remove_subject(subject.id);
        self.erasure.references(subject.id).await?;
        let erasure = self.erasure.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_PASS).await;
            if let Err(err) = erasure.references(id).await {
                tracing::warn!(subject = %id, error = %err, "second erasure pass failed; run `vigil erase --subject {id}`");
            }
        });
        tracing::info!(subject = %subject.id, faces = faces.len(), "subject erased");
        Ok(())
    }

    pub async fn faces(
        &self,
        owner: UserId,
        subject: SubjectId,
    ) -> Result<Vec<SubjectFaceRecord>, PeopleError> {
        let subject = self.get(owner, subject).await?;
        Ok(self.faces.of_subject(subject.id).await?)
    }

    /// Enrols one face into `subject` (as [`People::get`] found it for its
    /// owner). Nothing is stored when the image has no usable face.
    pub async fn enrol(
        &self,
        subject: &SubjectRecord,
        from: EnrolFrom,
    ) -> Result<SubjectFaceRecord, PeopleError> {
        if subject.face_count >= self.limits.max_faces_per_subject {
            return Err(PeopleError::LimitReached(format!(
                "{} has {} faces, the most one subject may have",
                subject.name, self.limits.max_faces_per_subject
            )));
        }
        self.add_face(subject, from, Polarity::Positive).await
    }

    /// Embeds the face and stores it, with its crop and source image, for
    /// `subject`. Only a positive face counts among the subject's faces and
    /// may become its cover.
    pub(super) async fn add_face(
        &self,
        subject: &SubjectRecord,
        from: EnrolFrom,
        polarity: Polarity,
    ) -> Result<SubjectFaceRecord, PeopleError> {
        let owner = subject.owner_id;
        let (source, face, origin) = self.source_face(owner, from).await?;
        let embedded = self.recognizer.embed_one(source.image.clone(), face).await??;
        let crop_bytes = encode_jpeg(&embedded.chip)?;

        let record = SubjectFaceRecord {
            id: SubjectFaceId::new(),
            subject_id: subject.id,
            owner_id: owner,
            embedding: super::faces::StoredEmbedding(embedded.embedding),
            model: self.recognizer.model_id().to_owned(),
            face,
            origin,
            polarity,
            crop: MediaId::new(ImageKind::Jpeg),
            source_image: MediaId::new(source.kind),
            created_at: Utc::now(),
        };
        // Images first: a document never names an image that is not there.
        let stored = async {
            self.media.put(record.crop, &crop_bytes).await?;
            self.media.put(record.source_image, &source.bytes).await
        }
        .await;
        if let Err(err) = stored {
            self.remove_images(record.images()).await;
            return Err(err.into());
        }
        let positive = polarity == Polarity::Positive;
        let cover = (positive && subject.cover.is_none()).then_some(record.crop);
        let inserted = crate::in_transaction!(self.db, |session| async {
            self.faces.insert(&record, session).await?;
            if positive {
                self.subjects.count_face(subject.id, 1, cover, session).await?;
            }
            Ok(())
        });
        if let Err(err) = inserted {
            self.remove_images(record.images()).await;
            return Err(err.into());
        }
        self.gallery.set_name(subject.id, subject.name.clone());
        self.gallery.insert(GalleryFace {
            owner,
            subject: subject.id,
            face: record.id,
            embedding: embedded.embedding,
            negative: !positive,
        });
        tracing::info!(subject = %subject.id, face = %record.id, ?polarity, "face enrolled");
        Ok(record)
    }

    /// Removes one enrolled face and its images.
    pub async fn delete_face(
        &self,
        owner: UserId,
        subject: SubjectId,
        face: SubjectFaceId,
    ) -> Result<(), PeopleError> {
        let subject = self.get(owner, subject).await?;
        let removed = crate::in_transaction!(self.db, |session| async {
            let Some(removed) = self
                .faces
                .take(subject.id, face, Polarity::Positive, session)
                .await?
            else {
                return Ok(None);
            };
            self.subjects.count_face(subject.id, -1, None, session).await?;
            if subject.cover == Some(removed.crop) {
                let next = self.faces.first_crop(subject.id, session).await?;
                self.subjects
                    .replace_cover(subject.id, removed.crop, next, session)
                    .await?;
            }
            Ok(Some(removed))
        })?
        .ok_or(PeopleError::FaceNotFound)?;
        self.gallery.remove_face(removed.id);
        self.remove_images(removed.images()).await;
        tracing::info!(subject = %subject.id, face = %removed.id, "enrolled face deleted");
        Ok(())
    }

    /// The decoded image and the face in it that is to be enrolled.
    async fn source_face(
        &self,
        owner: UserId,
        from: EnrolFrom,
    ) -> Result<(DecodedUpload, Face, FaceOrigin), PeopleError> {
        match from {
            EnrolFrom::Image(bytes) => {
                let (source, largest) = self.largest_face(bytes).await?;
                Ok((source, largest, FaceOrigin::Upload))
            }
            EnrolFrom::Detection {
                detection_id,
                face_index,
            }
            | EnrolFrom::Seen {
                detection_id,
                face_index,
            } => {
                let detection = match from {
                    EnrolFrom::Seen { .. } => self.detections.by_ids(&[detection_id.0]).await?.pop(),
                    _ => self.detections.get(DetectionScope(owner), detection_id).await?,
                }
                .ok_or(PeopleError::DetectionNotFound)?;
                let face = detection
                    .faces
                    .get(face_index as usize)
                    .ok_or(PeopleError::NoSuchFace {
                        index: face_index,
                        faces: detection.faces.len(),
                    })?
                    .face;
                let bytes = self
                    .media
                    .get(detection.media.original)
                    .await?
                    .ok_or(PeopleError::SourceImageGone)?;
                let source = decode_upload(bytes, self.image_limits, self.detector.decode_budget()).await?;
                let origin = FaceOrigin::Detection {
                    detection_id: detection_id.to_string(),
                    face_index,
                };
                Ok((source, face, origin))
            }
        }
    }

    /// An uploaded image, decoded, and its largest face.
    async fn largest_face(&self, bytes: Vec<u8>) -> Result<(DecodedUpload, Face), PeopleError> {
        let source = decode_upload(bytes, self.image_limits, self.detector.decode_budget()).await?;
        let detection = self.detector.detect(source.image.clone()).await?;
        let largest = detection
            .faces
            .iter()
            .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
            .copied()
            .ok_or(PeopleError::NoFace)?;
        Ok((source, largest))
    }

    /// The embedding of the largest face of an image (a search's probe).
    pub async fn embed_largest_face(&self, bytes: Vec<u8>) -> Result<crate::vision::Embedding, PeopleError> {
        let (source, face) = self.largest_face(bytes).await?;
        Ok(self.recognizer.embed_one(source.image, face).await??.embedding)
    }

    pub(super) async fn remove_images(&self, images: [MediaId; 2]) {
        remove_images(&self.media, images).await;
    }
}
