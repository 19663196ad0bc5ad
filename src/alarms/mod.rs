//! Alarms: "a face was seen". Stored in `alarms` with the shape users asked
//! for (`message`, `date`, `img`) and announced on the in-process [`AlarmBus`].

mod bus;
mod repository;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use bus::AlarmBus;
pub use repository::{AlarmScope, Alarms};

use crate::auth::principal::Principal;
use crate::media::signed::UrlSigner;
use crate::media::MediaId;
use crate::users::UserId;

/// The stored alarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alarm {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub message: String,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub date: DateTime<Utc>,
    /// The annotated frame; `img` in the API is a signed URL to it.
    pub image: MediaId,
    pub face_count: u32,
    /// "upload", a client's own label, or the camera id.
    pub source: String,
    /// Set for camera alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub detection_id: ObjectId,
    /// The uploader; `None` for camera alarms (admins see those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

impl Alarm {
    pub fn message_for(face_count: u32, source: &str, camera: bool) -> String {
        let faces = if face_count == 1 {
            "1 face".to_owned()
        } else {
            format!("{face_count} faces")
        };
        if camera {
            format!("{faces} detected on camera {source}")
        } else {
            format!("{faces} detected on {source}")
        }
    }
}

/// An alarm as the API and the WebSocket hub show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "2 faces detected on upload")]
    pub message: String,
    /// RFC 3339.
    pub date: DateTime<Utc>,
    /// Signed URL of the annotated frame; works in `<img src>` until it expires.
    #[schema(example = "/media/6650f1c2a4b1c2d3e4f5a6b8.jpg?exp=1767225600&sig=…")]
    pub img: String,
    #[schema(example = 2)]
    pub face_count: u32,
    #[schema(example = "upload")]
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub detection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl AlarmView {
    pub fn new(alarm: &Alarm, signer: &UrlSigner) -> Self {
        Self {
            id: alarm.id.to_hex(),
            message: alarm.message.clone(),
            date: alarm.date,
            img: signer.url(&alarm.image),
            face_count: alarm.face_count,
            source: alarm.source.clone(),
            camera_id: alarm.camera_id.clone(),
            detection_id: alarm.detection_id.to_hex(),
            user_id: alarm.user_id.map(|u| u.to_string()),
        }
    }
}

/// Which alarms a caller may see: admins all, everyone else their own.
pub fn repository_scope(principal: &Principal) -> AlarmScope {
    if principal.is_admin() {
        AlarmScope::All
    } else {
        AlarmScope::Owner(principal.user_id)
    }
}
