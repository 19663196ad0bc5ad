//! The counter protocol's memory: the last value each client reported
//! (`counters`), sent back in `hello` when it reconnects.
//!
//! A client id is scoped to its user when the session is authenticated, so
//! two users picking the same id never share a value; anonymous ids share
//! one namespace (the value is a number in 0–99, nothing to protect).

use chrono::Utc;
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;

use vigil_wire::hub::{ClientId, CounterValue};

use crate::db::{Database, DbError};
use crate::users::UserId;

#[derive(Clone)]
pub struct Counters {
    counters: Collection<Document>,
}

fn key(client_id: &ClientId, user: Option<UserId>) -> String {
    match user {
        Some(user) => format!("user:{user}:{client_id}"),
        None => format!("anon:{client_id}"),
    }
}

impl Counters {
    pub fn new(db: &Database) -> Self {
        Self {
            counters: db.collection("counters"),
        }
    }

    /// The last kept value, or 0 for a client never seen.
    pub async fn get(&self, client_id: &ClientId, user: Option<UserId>) -> Result<CounterValue, DbError> {
        let found = self
            .counters
            .find_one(doc! { "_id": key(client_id, user) })
            .await
            .map_err(DbError::from_driver)?;
        Ok(found
            .and_then(|d| match d.get("value") {
                Some(bson::Bson::Int32(v)) => u8::try_from(*v).ok(),
                Some(bson::Bson::Int64(v)) => u8::try_from(*v).ok(),
                _ => None,
            })
            .and_then(|v| CounterValue::new(v).ok())
            .unwrap_or_default())
    }

    pub async fn set(
        &self,
        client_id: &ClientId,
        user: Option<UserId>,
        value: CounterValue,
    ) -> Result<(), DbError> {
        let mut fields = doc! {
            "client_id": client_id.as_str(),
            "value": i32::from(value.get()),
            "updated_at": bson::DateTime::from_chrono(Utc::now()),
        };
        if let Some(user) = user {
            fields.insert("user_id", user.0);
        }
        self.counters
            .update_one(doc! { "_id": key(client_id, user) }, doc! { "$set": fields })
            .upsert(true)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}
