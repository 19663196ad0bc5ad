//! Camera leases (`camera_leases`): which instance runs each camera when
//! several share one database.
//!
//! One document per camera id: `{_id: camera, holder: instance id,
//! acquired_at, expires_at}`. An instance takes a lease that is free
//! (no document, or no holder), lapsed (`expires_at` passed) or its own, in
//! one conditional upsert: when another instance holds it, the upsert's
//! insert collides with that document's `_id` and fails with a duplicate
//! key, so of two instances racing for a free camera exactly one wins. The
//! holder renews every heartbeat, moving `expires_at` to three heartbeats
//! ahead, and deletes the document when it stops the camera.
//!
//! Times are the instances' own clocks (`Utc::now()`), not the database's:
//! instances on one machine agree exactly, and across machines NTP keeps them
//! far closer than the one heartbeat of margin the holder keeps (it stops
//! capturing a heartbeat before its lease runs out, see
//! [`CameraLeases::safe_window`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{self, doc};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::spec::CameraId;
use crate::db::{is_duplicate_key, Database, DbError};

const COLLECTION: &str = "camera_leases";

/// Heartbeats a lease lasts past its last renewal: the rule by which the
/// hub gives up an instance's WebSocket clients (three missed beats).
pub const LEASE_BEATS: u32 = 3;

/// `--camera-leases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaseMode {
    /// Today the same as `On`: a lone instance wins every lease it asks for,
    /// at the cost of one small write per camera per heartbeat.
    #[default]
    Auto,
    On,
    /// Every instance runs every camera it is given.
    Off,
}

impl LeaseMode {
    pub fn enabled(self) -> bool {
        !matches!(self, LeaseMode::Off)
    }
}

/// One row of `camera_leases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRow {
    /// The camera id.
    #[serde(rename = "_id")]
    pub camera: String,
    /// The instance id of the holder.
    pub holder: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub acquired_at: DateTime<Utc>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
}

/// What an attempt to take a camera's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This instance holds the lease until `expires_at`.
    Acquired { expires_at: DateTime<Utc> },
    /// Another instance holds it (and has renewed it in time).
    Held(LeaseRow),
    /// Another instance held it a moment ago and has just released it: try again.
    Released,
}

/// The leases of one instance. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CameraLeases {
    leases: Collection<LeaseRow>,
    instance_id: String,
    heartbeat: Duration,
}

impl CameraLeases {
    pub fn new(db: &Database, instance_id: &str, heartbeat: Duration) -> Self {
        Self {
            leases: db.collection(COLLECTION),
            instance_id: instance_id.to_owned(),
            heartbeat,
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// How often the holder renews, and a standby instance tries to take over.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// How long a lease lasts past its last renewal.
    pub fn duration(&self) -> Duration {
        self.heartbeat * LEASE_BEATS
    }

    /// How long after sending an acquisition or a renewal the holder may
    /// capture: one heartbeat short of the lease, so that it has stopped
    /// before any other instance can take the camera (and clocks that
    /// disagree by less than a heartbeat cannot make two run at once).
    pub fn safe_window(&self) -> Duration {
        self.duration() - self.heartbeat
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.duration())
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Takes the camera's lease if it is free, lapsed at `now`, or already
    /// this instance's.
    #[tracing::instrument(level = "debug", name = "camera_lease_acquire", skip_all, fields(camera = %camera))]
    pub async fn acquire(&self, camera: &CameraId, now: DateTime<Utc>) -> Result<Claim, DbError> {
        let expires_at = self.expiry(now);
        let taken = self
            .leases
            .update_one(
                doc! {
                    "_id": camera.as_str(),
                    "$or": [
                        { "holder": &self.instance_id },
                        { "holder": null },
                        { "expires_at": { "$lte": bson::DateTime::from_chrono(now) } },
                    ],
                },
                doc! { "$set": {
                    "holder": &self.instance_id,
                    "acquired_at": bson::DateTime::from_chrono(now),
                    "expires_at": bson::DateTime::from_chrono(expires_at),
                }},
            )
            .upsert(true)
            .await;
        match taken {
            // Matched (lapsed, or ours) or inserted (free): ours either way.
            Ok(_) => Ok(Claim::Acquired { expires_at }),
            // The document is there and held by another instance.
            Err(err) if is_duplicate_key(&err) => Ok(match self.get(camera).await? {
                Some(row) => Claim::Held(row),
                None => Claim::Released,
            }),
            Err(err) => Err(DbError::from_driver(err)),
        }
    }

    /// Moves the lease's expiry to a full lease from `now`; false when this
    /// instance no longer holds it (another took it over, or it was removed).
    #[tracing::instrument(level = "debug", name = "camera_lease_renew", skip_all, fields(camera = %camera))]
    pub async fn renew(&self, camera: &CameraId, now: DateTime<Utc>) -> Result<bool, DbError> {
        let result = self
            .leases
            .update_one(
                doc! { "_id": camera.as_str(), "holder": &self.instance_id },
                doc! { "$set": { "expires_at": bson::DateTime::from_chrono(self.expiry(now)) } },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(result.matched_count == 1)
    }

    /// Gives the lease up, if this instance holds it; true when it did.
    #[tracing::instrument(level = "debug", name = "camera_lease_release", skip_all, fields(camera = %camera))]
    pub async fn release(&self, camera: &CameraId) -> Result<bool, DbError> {
        let result = self
            .leases
            .delete_one(doc! { "_id": camera.as_str(), "holder": &self.instance_id })
            .await
            .map_err(DbError::from_driver)?;
        Ok(result.deleted_count == 1)
    }

    /// The camera's lease as stored, lapsed or not.
    pub async fn get(&self, camera: &CameraId) -> Result<Option<LeaseRow>, DbError> {
        self.leases
            .find_one(doc! { "_id": camera.as_str() })
            .await
            .map_err(DbError::from_driver)
    }
}
