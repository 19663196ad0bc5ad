//! Corrections on a detected face: "this is not X" and "this is X".
//!
//! Both are faces stored for subject X, so that they reach every
//! instance's gallery through the same change stream as enrolments, are
//! re-embedded by `vigil reindex` and erased with the subject:
//! - "is" enrols the face (a positive, like any enrolment);
//! - "not" stores it as a negative: it never names anyone, and a later
//!   face nearer to it than to X's own faces is not given X's name
//!   ([`super::matching`]).
//!
//! Undoing either deletes that face, and the answers are what they were.

use super::{
    EnrolFrom, FaceOrigin, People, PeopleError, Polarity, SubjectFaceId, SubjectFaceRecord, SubjectId,
};
use crate::detections::DetectionId;
use crate::users::UserId;

/// What the owner says about a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// The face is not this subject.
    Not(SubjectId),
    /// The face is this subject.
    Is(SubjectId),
}

impl Correction {
    pub fn subject(&self) -> SubjectId {
        match self {
            Correction::Not(subject) | Correction::Is(subject) => *subject,
        }
    }
}

impl People {
    /// Records `correction` about face `face_index` of one of `owner`'s
    /// detections, for `owner`'s subject. It applies to every face
    /// identified from now on, here and on every other instance.
    pub async fn correct(
        &self,
        owner: UserId,
        detection_id: DetectionId,
        face_index: u32,
        correction: Correction,
    ) -> Result<SubjectFaceRecord, PeopleError> {
        let subject = self.get(owner, correction.subject()).await?;
        let from = EnrolFrom::Detection {
            detection_id,
            face_index,
        };
        match correction {
            Correction::Is(_) => self.enrol(&subject, from).await,
            Correction::Not(_) => {
                let negatives = self.faces.count_negatives(subject.id).await?;
                if negatives >= u64::from(self.limits.max_faces_per_subject) {
                    return Err(PeopleError::LimitReached(format!(
                        "{} has {negatives} \"not\" corrections, the most one subject may have",
                        subject.name
                    )));
                }
                self.add_face(&subject, from, Polarity::Negative).await
            }
        }
    }

    /// Undoes a correction: the face it stored (taken from a detection) is
    /// deleted with its images, everywhere.
    pub async fn undo_correction(
        &self,
        owner: UserId,
        id: SubjectFaceId,
    ) -> Result<SubjectFaceRecord, PeopleError> {
        let face = self
            .faces
            .get_of_owner(owner, id)
            .await?
            .filter(|f| matches!(f.origin, FaceOrigin::Detection { .. }))
            .ok_or(PeopleError::FaceNotFound)?;
        match face.polarity {
            Polarity::Positive => self.delete_face(owner, face.subject_id, id).await?,
            Polarity::Negative => {
                crate::in_transaction!(self.db, |session| async {
                    self.faces
                        .take(face.subject_id, id, Polarity::Negative, session)
                        .await
                })?
                .ok_or(PeopleError::FaceNotFound)?;
                self.gallery.remove_face(id);
                self.remove_images(face.images()).await;
                tracing::info!(subject = %face.subject_id, face = %id, "correction undone");
            }
        }
        Ok(face)
    }
}
