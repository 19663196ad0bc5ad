//! A searched image as the API shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::people::SeenFace;

/// A detection as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectionView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "upload")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Size of the image (after EXIF orientation) the boxes refer to.
    #[schema(example = 640)]
    pub width: u32,
    #[schema(example = 480)]
    pub height: u32,
    #[schema(example = 1)]
    pub face_count: u32,
    /// Best score first; boxes and landmarks in image pixels, and who each
    /// face is (`identity`).
    pub faces: Vec<SeenFace>,
    #[schema(example = "centerface")]
    pub model: String,
    /// Time spent in the detector.
    #[schema(example = 41.7)]
    pub duration_ms: f64,
    /// Signed URL of the image as uploaded.
    pub image_url: String,
    /// Signed URL of the copy with faces marked (JPEG).
    pub annotated_url: String,
    /// False when the images were not stored (a camera frame recorded while
    /// the disk guard paused storage): both URLs then answer 404.
    #[serde(default = "crate::kept")]
    pub image_kept: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<String>,
}
