//! Alarms: "a face was seen". Stored in `alarms` with the shape users asked
//! for (`message`, `date`, `img`) and announced on the in-process [`AlarmBus`].

mod bus;
mod repository;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

pub use bus::AlarmBus;
pub use repository::{AlarmScope, Alarms};
pub use vigil_wire::alarms::AlarmView;

use crate::auth::Principal;
use crate::media::signed::UrlSigner;
use crate::media::MediaId;
use crate::users::UserId;

/// An alarm's id: 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlarmId(pub ObjectId);

impl AlarmId {
    pub fn new() -> Self {
        Self(ObjectId::new())
    }
}

impl Default for AlarmId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::str::FromStr for AlarmId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for AlarmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// The stored alarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alarm {
    #[serde(rename = "_id")]
    pub id: AlarmId,
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
    /// The detection (an ObjectId: detections sit above alarms).
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

impl Alarm {
    /// The alarm as the API and the hub show it, with its image URL signed now.
    pub fn view(&self, signer: &UrlSigner) -> AlarmView {
        AlarmView {
            id: self.id.to_string(),
            message: self.message.clone(),
            date: self.date,
            img: signer.url(&self.image),
            face_count: self.face_count,
            source: self.source.clone(),
            camera_id: self.camera_id.clone(),
            detection_id: self.detection_id.to_hex(),
            user_id: self.user_id.map(|u| u.to_string()),
        }
    }
}

impl AlarmScope {
    /// Which alarms a caller may see: admins all, everyone else their own.
    pub fn of(principal: &Principal) -> Self {
        if principal.is_admin() {
            AlarmScope::All
        } else {
            AlarmScope::Owner(principal.user_id)
        }
    }
}
