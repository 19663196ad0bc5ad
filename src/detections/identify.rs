//! Who the faces of a frame are, asked of whoever keeps the galleries
//! (`people`), so that detections need not know how recognition works.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use image::RgbImage;
use vigil_wire::people::Identity;

use crate::users::UserId;
use crate::vision::{Embedding, Face};

/// A face that could be embedded: who it is, and the embedding (kept for
/// search by face).
#[derive(Debug, Clone)]
pub struct Identified {
    pub identity: Identity,
    pub embedding: Embedding,
    /// The recognizer that computed it.
    pub model: &'static str,
}

/// Whose gallery a frame is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// An upload: the uploader's own subjects.
    User(UserId),
    /// A camera frame: the subjects of every admin.
    Cameras,
}

impl Viewer {
    pub fn of(owner: Option<UserId>) -> Self {
        owner.map_or(Viewer::Cameras, Viewer::User)
    }
}

pub trait FaceIdentifier: Send + Sync {
    /// One entry per face, in order: `None` where a face could not be
    /// embedded. Never fails the detection: a recognition failure is logged
    /// and leaves the faces without identity.
    fn identify(
        &self,
        viewer: Viewer,
        image: Arc<RgbImage>,
        faces: Vec<Face>,
    ) -> BoxFuture<'_, Vec<Option<Identified>>>;
}

/// Recognition switched off: faces get no identity.
pub struct NoRecognition;

impl FaceIdentifier for NoRecognition {
    fn identify(
        &self,
        _: Viewer,
        _: Arc<RgbImage>,
        faces: Vec<Face>,
    ) -> BoxFuture<'_, Vec<Option<Identified>>> {
        Box::pin(std::future::ready(vec![None; faces.len()]))
    }
}
