//! People: the subjects a user knows, their enrolled faces, and who each
//! detected face is.
//!
//! - [`fields`]: names and notes, parsed at the edge.
//! - [`subjects`], [`faces`]: the `subjects` and `subject_faces` collections.
//! - [`gallery`]: every owner's embeddings in memory, searched exactly.
//! - [`matching`]: the open-set rule (threshold and margin over aggregated distances).
//! - [`open_set`]: that rule's true and false accept rates on a user's photos.
//! - [`sync`]: the gallery kept current on every instance by change streams.
//! - [`service`]: what the API calls (subjects, enrolment, erasure).
//! - [`feedback`]: corrections ("this is not X", "this is X") and their undoing.
//! - [`identify`]: who the faces of a new detection are.
//! - [`reindex`]: new embeddings after a model change.
//! - [`erase`]: nothing of a deleted person kept anywhere.
//! - [`export`]: everything kept about a person, for them to see.

pub mod erase;
mod export;
pub mod faces;
mod feedback;
pub mod fields;
pub mod gallery;
mod identify;
pub mod matching;
pub mod open_set;
pub mod reindex;
mod service;
pub mod subjects;
pub mod sync;

pub use faces::{Polarity, SubjectFaceRecord, SubjectFaces};
pub use feedback::Correction;
pub use fields::{NewSubject, SubjectFieldError, SubjectName, SubjectNote, SubjectPatch};
pub use gallery::Gallery;
pub use identify::Recognition;
pub use matching::MatchRule;
pub use service::{EnrolFrom, People, PeopleLimits};
pub use subjects::{SubjectRecord, Subjects};
pub use sync::GallerySync;
pub use vigil_wire::people::{FaceOrigin, Identity, SubjectFaceView, SubjectView};

use crate::db::DbError;
use crate::error::{Coded, ErrorCode};
use crate::media::MediaError;
use crate::vision::{NotEmbedded, VisionError};

crate::object_id!(
    /// A subject's id.
    SubjectId
);

crate::object_id!(
    /// An enrolled face's id.
    SubjectFaceId
);

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("no subject with this id")]
    SubjectNotFound,
    #[error("no face with this id")]
    FaceNotFound,
    #[error("no detection with this id")]
    DetectionNotFound,
    #[error("the detection has {faces} faces; face_index {index} is not one of them")]
    NoSuchFace { index: u32, faces: usize },
    #[error("you already have a subject named {0:?} (names are compared without case)")]
    NameTaken(String),
    #[error("{0}")]
    LimitReached(String),
    #[error("no face was found in the image")]
    NoFace,
    #[error("{0}")]
    FaceTooSmall(NotEmbedded),
    #[error("{0}")]
    NoEmbedding(NotEmbedded),
    #[error("the stored image of this detection is gone")]
    SourceImageGone,
    #[error("the export could not be written: {0}")]
    Export(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Vision(#[from] VisionError),
}

impl From<NotEmbedded> for PeopleError {
    fn from(reason: NotEmbedded) -> Self {
        match reason {
            NotEmbedded::TooSmall { .. } => PeopleError::FaceTooSmall(reason),
            NotEmbedded::Unusable(_) => PeopleError::NoEmbedding(reason),
        }
    }
}

impl Coded for PeopleError {
    fn code(&self) -> ErrorCode {
        match self {
            PeopleError::SubjectNotFound | PeopleError::FaceNotFound | PeopleError::DetectionNotFound => {
                ErrorCode::NotFound
            }
            PeopleError::NoSuchFace { .. } => ErrorCode::ValidationFailed,
            PeopleError::NameTaken(_) => ErrorCode::SubjectNameTaken,
            PeopleError::LimitReached(_) => ErrorCode::LimitReached,
            PeopleError::NoFace => ErrorCode::NoFace,
            PeopleError::FaceTooSmall(_) => ErrorCode::FaceTooSmall,
            PeopleError::NoEmbedding(_) => ErrorCode::NoEmbedding,
            PeopleError::SourceImageGone => ErrorCode::NotFound,
            PeopleError::Export(_) => ErrorCode::Internal,
            PeopleError::Db(e) => e.code(),
            PeopleError::Media(e) => e.code(),
            PeopleError::Vision(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            PeopleError::Db(e) => e.retry_after(),
            PeopleError::Vision(e) => e.retry_after(),
            _ => None,
        }
    }
}
