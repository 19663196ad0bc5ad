//! The counter protocol's memory: the last value each client reported
//! (`counters`), sent back in `hello` when it reconnects.
//!
//! A client id is scoped to its user when the session is authenticated, so
//! two users picking the same id never share a value; anonymous ids share
//! one namespace (the value is a number in 0–99, nothing to protect).
//!
//! Every session reads its value before `hello`: the reads of sessions
//! connecting together are one `find` ([`Batched`]).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use futures_util::TryStreamExt;
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;

use vigil_wire::hub::{ClientId, CounterValue};

use super::batch::{Batched, Foreground};
use crate::db::{Database, DbError};
use crate::users::UserId;

#[derive(Clone)]
pub struct Counters {
    counters: Collection<Document>,
    reads: Batched<String, Result<CounterValue, Arc<DbError>>>,
}

fn key(client_id: &ClientId, user: Option<UserId>) -> String {
    match user {
        Some(user) => format!("user:{user}:{client_id}"),
        None => format!("anon:{client_id}"),
    }
}

impl Counters {
    /// Must be called inside a tokio runtime: starts the task that reads.
    pub fn new(db: &Database, foreground: Foreground) -> Self {
        let counters: Collection<Document> = db.collection("counters");
        let reader = counters.clone();
        Self {
            reads: Batched::start("counter_reads", foreground, move |keys| {
                read_many(reader.clone(), keys)
            }),
            counters,
        }
    }

    /// The last kept value, or 0 for a client never seen.
    pub async fn get(
        &self,
        client_id: &ClientId,
        user: Option<UserId>,
    ) -> Result<CounterValue, Arc<DbError>> {
        self.reads
            .call(key(client_id, user))
            .await
            .unwrap_or_else(|| Err(Arc::new(DbError::Stopping)))
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

/// The values of `keys`, in their order, in one `find`.
async fn read_many(
    counters: Collection<Document>,
    keys: Vec<String>,
) -> Vec<Result<CounterValue, Arc<DbError>>> {
    let found: Result<Vec<Document>, _> = async {
        counters
            .find(doc! { "_id": { "$in": &keys } })
            .projection(doc! { "value": 1 })
            .await?
            .try_collect()
            .await
    }
    .await;
    let found = match found {
        Ok(found) => found,
        Err(err) => {
            let err = Arc::new(DbError::from_driver(err));
            return keys.iter().map(|_| Err(err.clone())).collect();
        }
    };
    let values: HashMap<&str, CounterValue> = found
        .iter()
        .filter_map(|d| Some((d.get_str("_id").ok()?, value_of(d)?)))
        .collect();
    keys.iter()
        .map(|key| Ok(values.get(key.as_str()).copied().unwrap_or_default()))
        .collect()
}

fn value_of(doc: &Document) -> Option<CounterValue> {
    let value = match doc.get("value")? {
        bson::Bson::Int32(v) => u8::try_from(*v).ok()?,
        bson::Bson::Int64(v) => u8::try_from(*v).ok()?,
        _ => return None,
    };
    CounterValue::new(value).ok()
}
