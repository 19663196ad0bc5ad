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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPosition {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub collected_at: DateTime<Utc>,
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

    /// Binds the device to `owner` on its first reading and marks it seen;
    /// `DeviceTaken` when another owner's key sent it first.
    pub async fn touch(
        &self,
        owner: UserId,
        device: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<(), TelemetryError> {
        let now = BsonDateTime::from_chrono(now);
        let filter = doc! { "_id": device.as_str(), "user_id": owner.0 };
        let update = doc! {
            "$setOnInsert": { "first_seen": now },
            "$max": { "last_seen": now },
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

    /// Keeps the fix with the latest collection time, whatever order fixes
    /// arrive in (a phone that was offline sends its backlog late).
    pub async fn record_position(
        &self,
        owner: UserId,
        device: &DeviceId,
        position: StoredPosition,
    ) -> Result<(), DbError> {
        let at = BsonDateTime::from_chrono(position.collected_at);
        let position = mongodb::bson::to_bson(&position).map_err(|e| DbError::Malformed(e.to_string()))?;
        self.devices
            .update_one(
                doc! {
                    "_id": device.as_str(),
                    "user_id": owner.0,
                    "$or": [ { "last_position": null }, { "last_position.collected_at": { "$lt": at } } ],
                },
                doc! { "$set": { "last_position": position } },
            )
            .await
            .map(drop)
            .map_err(DbError::from_driver)
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
