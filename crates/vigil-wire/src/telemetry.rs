//! Telemetry from devices (a phone in each vehicle): gyroscope and GPS
//! readings, photos recognised among the owner's earlier photos, and the
//! devices themselves, as the API answers them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::people::{Recognised, SeenFace};
use crate::ErrorDetail;

/// Readings one `POST /telemetry/batch` may carry.
pub const MAX_BATCH_ITEMS: usize = 100;

/// What a reading measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadingKind {
    Gyroscope,
    Gps,
    Photo,
}

impl ReadingKind {
    pub const ALL: [ReadingKind; 3] = [ReadingKind::Gyroscope, ReadingKind::Gps, ReadingKind::Photo];

    pub fn as_str(self) -> &'static str {
        match self {
            ReadingKind::Gyroscope => "gyroscope",
            ReadingKind::Gps => "gps",
            ReadingKind::Photo => "photo",
        }
    }
}

/// A stored gyroscope reading (rad/s around each axis, as the phone reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GyroscopeView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "AA:BB:CC:DD:EE:FF")]
    pub device_id: String,
    /// When the device took the reading.
    pub collected_at: DateTime<Utc>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
    #[schema(example = 0.01)]
    pub x: f64,
    #[schema(example = -0.02)]
    pub y: f64,
    #[schema(example = 0.98)]
    pub z: f64,
}

/// A stored GPS fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpsView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "AA:BB:CC:DD:EE:FF")]
    pub device_id: String,
    pub collected_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    #[schema(example = 52.5163)]
    pub latitude: f64,
    #[schema(example = 13.3777)]
    pub longitude: f64,
    /// Horizontal accuracy in metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Metres above sea level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
    /// Metres per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Degrees clockwise from north, in `[0, 360)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
}

/// The closest face among the owner's earlier photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhotoMatch {
    /// The earlier photo.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub photo_id: String,
    /// Euclidean distance between the two faces' embeddings.
    #[schema(example = 0.31)]
    pub distance: f32,
    /// Which face of this photo it is the match of (index into `faces`).
    pub face_index: u32,
    /// The enrolled subject this photo's face is, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Recognised>,
}

/// A stored photo and what was found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhotoView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "AA:BB:CC:DD:EE:FF")]
    pub device_id: String,
    pub collected_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// Each face, with who it is among the owner's enrolled subjects.
    pub faces: Vec<SeenFace>,
    /// True when a face of this photo is the same person as a face of an
    /// earlier photo: `match.distance` is at most the recognition threshold.
    pub recognized: bool,
    /// The closest earlier face, whether or not it is close enough; absent
    /// when this photo has no face or no earlier photo has one.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    #[schema(rename = "match")]
    pub best_match: Option<PhotoMatch>,
    /// Signed URL of the photo as sent.
    pub image_url: String,
}

/// One stored reading of any kind, tagged with its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ReadingView {
    Gyroscope(GyroscopeView),
    Gps(GpsView),
    Photo(PhotoView),
}

/// The latest position of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    #[schema(example = 52.5163)]
    pub latitude: f64,
    #[schema(example = 13.3777)]
    pub longitude: f64,
    pub collected_at: DateTime<Utc>,
}

/// A device that has sent telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// The device id as normalised: MAC addresses in upper case with colons.
    #[schema(example = "AA:BB:CC:DD:EE:FF")]
    pub id: String,
    pub first_seen: DateTime<Utc>,
    /// When the server last stored a reading of it.
    pub last_seen: DateTime<Utc>,
    /// The GPS fix with the latest `collected_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_position: Option<Position>,
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchItemResult {
    /// Position of the item in `items`.
    pub index: u32,
    /// The status the item would have had on its own: 201 stored, 200
    /// already stored (a retry), 4xx refused, 5xx not stored this time.
    #[schema(example = 201)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<ReadingView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The answer to a batch: one result per item, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    pub results: Vec<BatchItemResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_tagged_with_their_kind() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let reading = ReadingView::Gyroscope(GyroscopeView {
            id: "a".repeat(24),
            device_id: "AA:BB:CC:DD:EE:FF".into(),
            collected_at: at,
            received_at: at,
            x: 1.0,
            y: 2.0,
            z: 3.0,
        });
        let json = serde_json::to_value(&reading).unwrap();
        assert_eq!(json["kind"], "gyroscope");
        assert_eq!(json["x"], 1.0);
        assert_eq!(serde_json::from_value::<ReadingView>(json).unwrap(), reading);
    }
}
