//! Detections: one image searched for faces, stored with its result, its
//! original and annotated images and, when faces were found, an alarm.

mod recorder;
mod repository;
mod upload;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use recorder::{Frame, RecordError, Recorded, Recorder};
pub use repository::{DetectionScope, Detections};
pub use upload::{UploadError, UploadService};

use crate::media::signed::UrlSigner;
use crate::media::MediaId;
use crate::users::UserId;
use crate::vision::Face;

/// The model name stored with each result, so old results stay interpretable
/// after a model change.
pub const MODEL_NAME: &str = "centerface";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaRefs {
    pub original: MediaId,
    pub annotated: MediaId,
}

/// The stored detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectionRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
    pub face_count: u32,
    pub model: String,
    pub duration_ms: f64,
    pub media: MediaRefs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<ObjectId>,
}

/// A detection as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetectionView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "upload")]
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Size of the image (after EXIF orientation) the boxes refer to.
    #[schema(example = 640)]
    pub width: u32,
    #[schema(example = 480)]
    pub height: u32,
    #[schema(example = 1)]
    pub face_count: u32,
    /// Best score first; boxes and landmarks in image pixels.
    pub faces: Vec<Face>,
    #[schema(example = "centerface")]
    pub model: String,
    /// Time spent in the detector.
    #[schema(example = 41.7)]
    pub duration_ms: f64,
    /// Signed URL of the image as uploaded.
    pub image_url: String,
    /// Signed URL of the copy with faces marked (JPEG).
    pub annotated_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<String>,
}

impl DetectionView {
    pub fn new(record: &DetectionRecord, signer: &UrlSigner) -> Self {
        Self {
            id: record.id.to_hex(),
            source: record.source.clone(),
            camera_id: record.camera_id.clone(),
            created_at: record.created_at,
            width: record.width,
            height: record.height,
            face_count: record.face_count,
            faces: record.faces.clone(),
            model: record.model.clone(),
            duration_ms: record.duration_ms,
            image_url: signer.url(&record.media.original),
            annotated_url: signer.url(&record.media.annotated),
            alarm_id: record.alarm_id.map(|a| a.to_hex()),
        }
    }
}

/// A source label: 1–64 printable characters.
pub fn parse_source(raw: Option<&str>) -> Option<String> {
    match raw.map(str::trim) {
        None | Some("") => Some("upload".to_owned()),
        Some(s) if s.chars().count() <= 64 && !s.chars().any(char::is_control) => Some(s.to_owned()),
        Some(_) => None,
    }
}
