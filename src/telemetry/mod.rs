//! Telemetry from a fleet of devices: gyroscope and GPS readings and photos,
//! each with the time it was collected and the id of the device (a phone in
//! a vehicle). Readings are validated field by field, stored once however
//! often a device retries, and read back per device; each photo's faces are
//! matched against the owner's earlier photos and enrolled subjects.

mod device;
mod devices;
mod fields;
pub mod live;
mod photo_index;
mod photos;
mod readings;
mod series;
mod service;

pub use device::DeviceId;
pub use devices::{Devices, StoredDevice};
pub use fields::ClockSkew;
pub use photo_index::PhotoIndex;
pub use photos::{PhotoId, PhotoImages, PhotoUpload, StoredPhoto};
pub use readings::{Gps, Gyroscope, Header, ParseContext, Reading, StoredReading};
pub use series::{Series, Stored};
pub use service::{photo_from_json, photo_from_parts, Telemetry, TelemetryDeps, TelemetrySettings};

use crate::error::{Coded, ErrorCode, FieldError};
use crate::users::UserError;
use crate::vision::VisionError;

crate::object_id!(
    /// A stored gyroscope or GPS reading's id: 24 hex digits.
    ReadingId
);

/// A reading with fields that break their rules: every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reading: {}", describe(.fields))]
pub struct InvalidReading {
    pub fields: Vec<FieldError>,
}

impl InvalidReading {
    pub fn new(fields: Vec<FieldError>) -> Self {
        Self { fields }
    }

    pub fn one(field: &str, problem: impl Into<String>) -> Self {
        Self::new(vec![FieldError {
            field: field.to_owned(),
            problem: problem.into(),
        }])
    }
}

fn describe(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("`{}` {}", f.field, f.problem))
        .collect();
    parts.join("; ")
}

impl Coded for InvalidReading {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidReading
    }

    fn fields(&self) -> Vec<FieldError> {
        self.fields.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Invalid(#[from] InvalidReading),
    #[error("device {0} belongs to another account")]
    DeviceTaken(DeviceId),
    #[error(transparent)]
    Quota(#[from] UserError),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Storage(#[from] crate::disk::StoragePaused),
}

impl crate::db::Transient for TelemetryError {
    fn is_transient(&self) -> bool {
        match self {
            TelemetryError::Db(e) => e.is_transient(),
            TelemetryError::Quota(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl Coded for TelemetryError {
    fn code(&self) -> ErrorCode {
        match self {
            TelemetryError::Invalid(e) => e.code(),
            TelemetryError::DeviceTaken(_) => ErrorCode::DeviceTaken,
            TelemetryError::Quota(e) => e.code(),
            TelemetryError::Vision(e) => e.code(),
            TelemetryError::Media(e) => e.code(),
            TelemetryError::Db(e) => e.code(),
            TelemetryError::Storage(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            TelemetryError::Quota(e) => e.retry_after(),
            TelemetryError::Db(e) => e.retry_after(),
            TelemetryError::Vision(e) => e.retry_after(),
            _ => None,
        }
    }

    fn fields(&self) -> Vec<FieldError> {
        match self {
            TelemetryError::Invalid(e) => e.fields(),
            _ => Vec::new(),
        }
    }
}
