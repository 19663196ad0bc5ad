//! "A face was seen", as the API and the WebSocket hub show it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::people::Identity;

/// An alarm as the API and the WebSocket hub show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "Alice and 1 unknown face at front-door")]
    pub message: String,
    /// RFC 3339.
    pub date: DateTime<Utc>,
    /// Signed URL of the annotated frame; works in `<img src>` until it expires.
    #[schema(example = "/media/6650f1c2a4b1c2d3e4f5a6b8.jpg?exp=1767225600&sig=…")]
    pub img: String,
    /// False when the frame was not stored (a camera alarm raised while the
    /// disk guard paused storage): `img` then answers 404.
    #[serde(default = "crate::kept")]
    pub image_kept: bool,
    #[schema(example = 2)]
    pub face_count: u32,
    #[schema(example = "upload")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub detection_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Who each face of the detection is, in the detection's face order;
    /// `null` for a face that could not be embedded. Absent on alarms
    /// raised before recognition existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Option<Identity>>,
}
