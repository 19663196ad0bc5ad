//! Gyroscope and GPS readings: parsed once from the body, stored as they
//! were collected, shown as the wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_wire::telemetry::{GpsView, GyroscopeView};

use super::device::DeviceId;
use super::fields::{ClockSkew, Fields, Range};
use super::{InvalidReading, ReadingId};
use crate::users::UserId;

/// Bound on each gyroscope axis. Phones report at most a few tens of rad/s
/// (a few thousand °/s for those that send degrees); beyond this it is noise.
const GYRO_LIMIT: f64 = 10_000.0;

/// Who sent a reading of what, and when it was collected.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub device: DeviceId,
    pub collected_at: DateTime<Utc>,
}

/// A reading as parsed, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<T> {
    pub header: Header,
    pub data: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gyroscope {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gps {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
}

/// The moment a reading is checked against: the server's clock.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    pub now: DateTime<Utc>,
    pub skew: ClockSkew,
}

impl Header {
    fn parse(fields: &mut Fields<'_>, cx: ParseContext) -> Option<Self> {
        let device = fields.device_id();
        let collected_at = fields.timestamp(cx.now, cx.skew);
        Some(Self {
            device: device?,
            collected_at: collected_at?,
        })
    }
}

/// A kind of reading that comes as plain JSON fields.
pub trait Measurement: Sized {
    fn parse(fields: &mut Fields<'_>) -> Option<Self>;
}

impl<T: Measurement> Reading<T> {
    /// Every field checked; all the problems at once when any is bad.
    pub fn parse(body: &Value, prefix: &str, cx: ParseContext) -> Result<Self, InvalidReading> {
        let mut fields = Fields::of(body, prefix);
        let header = Header::parse(&mut fields, cx);
        let data = T::parse(&mut fields);
        let parsed = header.zip(data).map(|(header, data)| Reading { header, data });
        fields.finish(parsed)
    }
}

impl Measurement for Gyroscope {
    fn parse(fields: &mut Fields<'_>) -> Option<Self> {
        let axis = Range::Closed(-GYRO_LIMIT, GYRO_LIMIT);
        let (x, y, z) = (
            fields.number("x", axis),
            fields.number("y", axis),
            fields.number("z", axis),
        );
        Some(Self { x: x?, y: y?, z: z? })
    }
}

impl Measurement for Gps {
    fn parse(fields: &mut Fields<'_>) -> Option<Self> {
        let latitude = fields.number("latitude", Range::Closed(-90.0, 90.0));
        let longitude = fields.number("longitude", Range::Closed(-180.0, 180.0));
        let accuracy = fields.optional_number("accuracy", Range::Closed(0.0, 1e6));
        // From the Dead Sea shore's depth below a mine to an airliner's height.
        let altitude = fields.optional_number("altitude", Range::Closed(-11_000.0, 20_000.0));
        // Up to an airliner's speed in m/s: a vehicle tracker is not a rocket.
        let speed = fields.optional_number("speed", Range::Closed(0.0, 350.0));
        let heading = fields.optional_number("heading", Range::HalfOpen(0.0, 360.0));
        Some(Self {
            latitude: latitude?,
            longitude: longitude?,
            accuracy: accuracy?,
            altitude: altitude?,
            speed: speed?,
            heading: heading?,
        })
    }
}

/// A stored reading of kind `T`: one document of `telemetry_<kind>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReading<T> {
    #[serde(rename = "_id")]
    pub id: ReadingId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub collected_at: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub received_at: DateTime<Utc>,
    #[serde(flatten)]
    pub data: T,
}

impl<T> StoredReading<T> {
    pub fn new(owner: UserId, reading: Reading<T>, received_at: DateTime<Utc>) -> Self {
        Self {
            id: ReadingId::new(),
            user_id: owner,
            device_id: reading.header.device,
            collected_at: reading.header.collected_at,
            received_at: crate::db::paging::bson_precision(received_at),
            data: reading.data,
        }
    }
}

impl StoredReading<Gyroscope> {
    pub fn view(&self) -> GyroscopeView {
        GyroscopeView {
            id: self.id.to_string(),
            device_id: self.device_id.to_string(),
            collected_at: self.collected_at,
            received_at: self.received_at,
            x: self.data.x,
            y: self.data.y,
            z: self.data.z,
        }
    }
}

impl StoredReading<Gps> {
    pub fn view(&self) -> GpsView {
        GpsView {
            id: self.id.to_string(),
            device_id: self.device_id.to_string(),
            collected_at: self.collected_at,
            received_at: self.received_at,
            latitude: self.data.latitude,
            longitude: self.data.longitude,
            accuracy: self.data.accuracy,
            altitude: self.data.altitude,
            speed: self.data.speed,
            heading: self.data.heading,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn cx() -> ParseContext {
        ParseContext {
            now: Utc.timestamp_millis_opt(1_780_000_000_000).unwrap(),
            skew: ClockSkew::default(),
        }
    }

    fn problems<T: Measurement + std::fmt::Debug>(body: Value) -> Vec<String> {
        Reading::<T>::parse(&body, "", cx())
            .unwrap_err()
            .fields
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect()
    }

    #[test]
    fn a_gps_fix_with_its_optional_fields() {
        let body = json!({"device_id": "aa-bb-cc-dd-ee-ff", "timestamp": 1_779_999_990_000_i64,
                          "latitude": -33.9, "longitude": 151.2, "speed": 12.5, "unknown": 1});
        let fix = Reading::<Gps>::parse(&body, "", cx()).unwrap();
        assert_eq!(fix.header.device.as_str(), "AA:BB:CC:DD:EE:FF");
        assert_eq!(fix.data.speed, Some(12.5));
        assert_eq!(fix.data.heading, None);
    }

    #[test]
    fn every_problem_of_a_gps_fix_is_reported() {
        let got = problems::<Gps>(json!({"latitude": 91, "longitude": -180.5, "heading": -1}));
        assert_eq!(
            got,
            [
                "device_id: is missing",
                "timestamp: is missing",
                "latitude: must be between -90 and 90",
                "longitude: must be between -180 and 180",
                "heading: must be at least 0 and below 360",
            ]
        );
    }

    #[test]
    fn gyroscope_axes_are_numbers() {
        let got = problems::<Gyroscope>(json!({"device_id": "d1", "timestamp": "2026-05-28T20:00:00Z",
                                               "x": "Infinity", "y": null, "z": 0}));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("x: must be a number"));
        assert_eq!(got[1], "y: is missing");
    }
}
