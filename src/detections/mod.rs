//! Detections: one image searched for faces, stored with its result, its
//! original and annotated images and, when faces were found, an alarm.

mod gate;
mod identify;
pub mod prints;
mod recorder;
mod repository;
mod source;
mod strangers;
mod upload;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

pub use gate::{AlarmGate, EveryFace};
pub use identify::{FaceIdentifier, Identified, NoRecognition, Viewer};
pub use prints::{FacePrints, PrintScope, SeenFaceRecord};
pub use recorder::{AlarmTrigger, Frame, JobFrame, Original, RecordError, Recorded, Recorder};
pub use repository::{DetectionScope, Detections};
pub use source::{InvalidSource, Source};
pub use strangers::{Grouped, NoGrouping, StrangerFace, Strangers};
pub use upload::{UploadError, UploadService};
pub use vigil_wire::detections::DetectionView;

use crate::media::signed::UrlSigner;
use crate::media::MediaId;
use crate::users::UserId;
use vigil_wire::people::SeenFace;

/// The model name stored with each result, so old results stay interpretable
/// after a model change.
pub const MODEL_NAME: &str = "centerface";

/// A detection's id: 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DetectionId(pub ObjectId);

impl DetectionId {
    pub fn new() -> Self {
        Self(ObjectId::new())
    }
}

impl Default for DetectionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::str::FromStr for DetectionId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for DetectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaRefs {
    pub original: MediaId,
    pub annotated: MediaId,
}

/// The stored detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectionRecord {
    #[serde(rename = "_id")]
    pub id: DetectionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// Each face with who it is.
    pub faces: Vec<SeenFace>,
    pub face_count: u32,
    pub model: String,
    pub duration_ms: f64,
    pub media: MediaRefs,
    /// False when `media` names images that were never written (a camera
    /// frame recorded while the disk guard paused storing).
    #[serde(default = "kept", skip_serializing_if = "is_kept")]
    pub image_kept: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<ObjectId>,
    /// The job that recorded it, and which of its frames it is (unique
    /// together: a job run twice records each frame once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_frame: Option<u32>,
}

impl DetectionRecord {
    /// The record as the API shows it, with image URLs signed now.
    pub fn view(&self, signer: &UrlSigner) -> DetectionView {
        DetectionView {
            id: self.id.to_string(),
            source: self.source.to_string(),
            camera_id: self.camera_id.clone(),
            created_at: self.created_at,
            width: self.width,
            height: self.height,
            face_count: self.face_count,
            faces: self.faces.clone(),
            model: self.model.clone(),
            duration_ms: self.duration_ms,
            image_url: signer.url(&self.media.original),
            annotated_url: signer.url(&self.media.annotated),
            image_kept: self.image_kept,
            alarm_id: self.alarm_id.map(|a| a.to_hex()),
        }
    }
}

/// Documents stored before `image_kept` existed had their images.
pub(crate) fn kept() -> bool {
    true
}

pub(crate) fn is_kept(kept: &bool) -> bool {
    *kept
}
