//! One collection per kind of reading, each with a unique index on
//! (owner, device, collected time): the retry of a reading finds the one
//! already stored instead of storing it twice, on every instance.

use mongodb::bson::{doc, DateTime as BsonDateTime};
use mongodb::{ClientSession, Collection};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::device::DeviceId;
use super::readings::StoredReading;
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{is_duplicate_key, Database, DbError};
use crate::users::UserId;

/// Whether a reading was new.
#[derive(Debug)]
pub enum Stored<T> {
    Created(T),
    /// The same device, kind and time were stored before: that record.
    Existing(T),
}

impl<T> Stored<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stored<U> {
        match self {
            Stored::Created(t) => Stored::Created(f(t)),
            Stored::Existing(t) => Stored::Existing(f(t)),
        }
    }

    /// The record, new or found.
    pub fn into_record(self) -> T {
        match self {
            Stored::Created(t) | Stored::Existing(t) => t,
        }
    }

    pub fn is_created(&self) -> bool {
        matches!(self, Stored::Created(_))
    }
}

pub struct Series<T: Send + Sync> {
    collection: Collection<T>,
}

impl<T: Send + Sync> Clone for Series<T> {
    fn clone(&self) -> Self {
        Self {
            collection: self.collection.clone(),
        }
    }
}

/// The key a retry is recognised by.
fn key(owner: UserId, device: &DeviceId, at: chrono::DateTime<chrono::Utc>) -> mongodb::bson::Document {
    doc! { "user_id": owner.0, "device_id": device.as_str(), "collected_at": BsonDateTime::from_chrono(at) }
}

impl<T> Series<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin,
{
    pub fn new(db: &Database, collection: &str) -> Self {
        Self {
            collection: db.collection(collection),
        }
    }

    pub async fn find(
        &self,
        owner: UserId,
        device: &DeviceId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<T>, DbError> {
        self.collection
            .find_one(key(owner, device, at))
            .await
            .map_err(DbError::from_driver)
    }

    /// Inserts `record` inside a transaction; a duplicate is an error that
    /// aborts it ([`DbError::is_duplicate_key`]).
    pub async fn insert_in(&self, record: &T, session: &mut ClientSession) -> Result<(), DbError> {
        self.collection
            .insert_one(record)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Newest first by collection time.
    pub async fn page(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &PageRequest,
        key: impl Fn(&T) -> (chrono::DateTime<chrono::Utc>, mongodb::bson::oid::ObjectId),
    ) -> Result<Page<T>, DbError> {
        find_page(
            &self.collection,
            doc! { "user_id": owner.0, "device_id": device.as_str() },
            "collected_at",
            page,
            key,
        )
        .await
    }

    pub(super) fn collection(&self) -> &Collection<T> {
        &self.collection
    }
}

impl<D> Series<StoredReading<D>>
where
    StoredReading<D>: Serialize + DeserializeOwned + Send + Sync + Unpin,
{
    /// Stores the reading unless its twin is there already.
    pub async fn insert_once(&self, reading: StoredReading<D>) -> Result<Stored<StoredReading<D>>, DbError> {
        insert_once(&self.collection, reading, |r| {
            (r.user_id, &r.device_id, r.collected_at)
        })
        .await
    }

    pub async fn readings(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &PageRequest,
    ) -> Result<Page<StoredReading<D>>, DbError> {
        self.page(owner, device, page, |r| (r.collected_at, r.id.0)).await
    }
}

/// Inserts `record`, or returns the one with the same key.
pub async fn insert_once<T>(
    collection: &Collection<T>,
    record: T,
    key_of: impl Fn(&T) -> (UserId, &DeviceId, chrono::DateTime<chrono::Utc>),
) -> Result<Stored<T>, DbError>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin,
{
    match collection.insert_one(&record).await {
        Ok(_) => Ok(Stored::Created(record)),
        Err(err) if is_duplicate_key(&err) => {
            let (owner, device, at) = key_of(&record);
            collection
                .find_one(key(owner, device, at))
                .await
                .map_err(DbError::from_driver)?
                .map(Stored::Existing)
                // Deleted between the two calls: the caller may simply retry.
                .ok_or_else(|| DbError::Malformed("a duplicate reading vanished".to_owned()))
        }
        Err(err) => Err(DbError::from_driver(err)),
    }
}
