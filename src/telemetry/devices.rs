//! The devices that send telemetry: bound to the owner of the key that
//! first sent their id, with when they were seen and where they last were.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime as BsonDateTime};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use vigil_wire::telemetry::{DeviceView, Position};

use super::device::DeviceId;
use super::TelemetryError;
use crate::db::{is_duplicate_key, Database, DbError};
use crate::users::UserId;

/// Devices listed at once: a larger fleet lists its most recently seen.
pub const MAX_LISTED: i64 = 1000;

/// `collected_at` comes first: MongoDB compares documents field by field,
/// so `$max` on a position keeps the one collected last, in the same write
/// that marks the device seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPosition {
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub collected_at: DateTime<Utc>,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDevice {
    /// The device id itself: one owner per id, enforced by `_id`.
    #[serde(rename = "_id")]
    pub id: DeviceId,
    pub user_id: UserId,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub last_seen: DateTime<Utc>,
    #[serde(default)]
    pub last_position: Option<StoredPosition>,
}

impl StoredDevice {
    pub fn view(&self) -> DeviceView {
        DeviceView {
            id: self.id.to_string(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            last_position: self.last_position.as_ref().map(|p| Position {
                latitude: p.latitude,
                longitude: p.longitude,
                collected_at: p.collected_at,
            }),
        }
    }
}

#[derive(Clone)]
pub struct Devices {
    devices: Collection<StoredDevice>,
}

impl Devices {
    pub fn new(db: &Database) -> Self {
        Self {
            devices: db.collection("devices"),
        }
    }

    /// Binds the device to `owner` on its first reading and marks it seen,
    /// keeping `position` when it was collected after the one kept (a phone
    /// that was offline sends its backlog late); `DeviceTaken` when another
    /// owner's key sent the device first. One write per reading.
    pub async fn touch(
        &self,
        owner: UserId,
        device: &DeviceId,
        now: DateTime<Utc>,
        position: Option<&StoredPosition>,
    ) -> Result<(), TelemetryError> {
        let filter = doc! { "_id": device.as_str(), "user_id": owner.0 };
        let mut latest = doc! { "last_seen": BsonDateTime::from_chrono(now) };
        if let Some(position) = position {
            let position = mongodb::bson::to_bson(position).map_err(|e| DbError::Malformed(e.to_string()))?;
            latest.insert("last_position", position);
        }
        let update = doc! {
            "$setOnInsert": { "first_seen": BsonDateTime::from_chrono(now) },
            "$max": latest,
        };
        // Two first readings at once race to insert; the loser of the race
        // finds the winner's row on its second try.
        for _ in 0..2 {
            match self
                .devices
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if is_duplicate_key(&err) => {
                    if self.owner(device).await?.is_some_and(|o| o != owner) {
                        return Err(TelemetryError::DeviceTaken(device.clone()));
                    }
                }
                Err(err) => return Err(DbError::from_driver(err).into()),
            }
        }
        Err(TelemetryError::DeviceTaken(device.clone()))
    }

    async fn owner(&self, device: &DeviceId) -> Result<Option<UserId>, DbError> {
        Ok(self
            .devices
            .find_one(doc! { "_id": device.as_str() })
            .await
            .map_err(DbError::from_driver)?
            .map(|d| d.user_id))
    }

    /// The owner's device, or `None` (also for another owner's).
    pub async fn get(&self, owner: UserId, device: &DeviceId) -> Result<Option<StoredDevice>, DbError> {
        self.devices
            .find_one(doc! { "_id": device.as_str(), "user_id": owner.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// The owner's devices, most recently seen first.
    pub async fn list(&self, owner: UserId) -> Result<Vec<StoredDevice>, DbError> {
        self.devices
            .find(doc! { "user_id": owner.0 })
            .sort(doc! { "last_seen": -1, "_id": 1 })
            .limit(MAX_LISTED)
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }
}
