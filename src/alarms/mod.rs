//! Alarms: "a face was seen". Stored in `alarms` with the shape users asked
//! for (`message`, `date`, `img`) and announced on the in-process [`AlarmBus`].

mod bus;
mod repository;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use vigil_wire::people::Identity;

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
    /// False when `image` was never written (a camera alarm raised while
    /// the disk guard paused storing).
    #[serde(default = "kept", skip_serializing_if = "is_kept")]
    pub image_kept: bool,
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
    /// Who each face is, in the detection's face order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Option<Identity>>,
}

impl Alarm {
    /// "2 faces detected on upload" when nobody was recognised; "Alice and
    /// 1 unknown face at front-door" when somebody was. Every face that is
    /// not a recognised subject counts as unknown, embedded or not.
    pub fn message_for(
        face_count: u32,
        identities: &[Option<Identity>],
        source: &str,
        camera: bool,
    ) -> String {
        let mut names: Vec<&str> = Vec::new();
        let mut recognised = 0u32;
        for known in identities.iter().flatten().filter_map(Identity::recognised) {
            recognised += 1;
            if !names.contains(&known.name.as_str()) {
                names.push(&known.name);
            }
        }
        let faces = |n: u32, what: &str| {
            if n == 1 {
                format!("1 {what}face")
            } else {
                format!("{n} {what}faces")
            }
        };
        if names.is_empty() {
            let faces = faces(face_count, "");
            return if camera {
                format!("{faces} detected on camera {source}")
            } else {
                format!("{faces} detected on {source}")
            };
        }
        let unknown = face_count.saturating_sub(recognised);
        let mut parts: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        if unknown > 0 {
            parts.push(faces(unknown, "unknown "));
        }
        let who = match parts.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        if camera {
            format!("{who} at {source}")
        } else {
            format!("{who} on {source}")
        }
    }
}

/// Alarms stored before `image_kept` existed had their images.
fn kept() -> bool {
    true
}

fn is_kept(kept: &bool) -> bool {
    *kept
}

impl Alarm {
    /// The alarm as the API and the hub show it, with its image URL signed now.
    pub fn view(&self, signer: &UrlSigner) -> AlarmView {
        AlarmView {
            id: self.id.to_string(),
            message: self.message.clone(),
            date: self.date,
            img: signer.url(&self.image),
            image_kept: self.image_kept,
            face_count: self.face_count,
            source: self.source.clone(),
            camera_id: self.camera_id.clone(),
            detection_id: self.detection_id.to_hex(),
            user_id: self.user_id.map(|u| u.to_string()),
            identities: self.identities.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_wire::people::Recognised;

    fn known(name: &str) -> Option<Identity> {
        Some(Identity::Recognised(Recognised {
            subject_id: "6650f1c2a4b1c2d3e4f5a6b7".into(),
            name: name.into(),
            distance: 0.3,
            confidence: 0.9,
        }))
    }

    #[test]
    fn messages_name_the_people_and_count_the_rest() {
        assert_eq!(
            Alarm::message_for(1, &[None], "upload", false),
            "1 face detected on upload"
        );
        assert_eq!(
            Alarm::message_for(2, &[Some(Identity::unknown()), None], "door", true),
            "2 faces detected on camera door"
        );
        assert_eq!(
            Alarm::message_for(1, &[known("Alice")], "front-door", true),
            "Alice at front-door"
        );
        assert_eq!(
            Alarm::message_for(
                2,
                &[known("Alice"), Some(Identity::unknown())],
                "front-door",
                true
            ),
            "Alice and 1 unknown face at front-door"
        );
        assert_eq!(
            Alarm::message_for(4, &[known("Alice"), known("Bob"), None, None], "upload", false),
            "Alice, Bob and 2 unknown faces on upload"
        );
        assert_eq!(
            Alarm::message_for(2, &[known("Alice"), known("Alice")], "upload", false),
            "Alice on upload"
        );
    }
}
