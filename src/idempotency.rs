//! `Idempotency-Key`: a client that retries a request whose answer it lost
//! (a timeout, a dropped connection) sends the same key, and gets what the
//! first request made instead of a second detection, alarm or job.
//!
//! A key belongs to one account and names what its first request produced.
//! It is claimed in the transaction that stores that: either both are
//! stored or neither, so two concurrent requests with one key cannot both
//! go through (the second's claim breaks the unique `_id`). Keys live for
//! [`KEY_LIFETIME`]; MongoDB's TTL monitor removes them, and one it has not
//! removed yet is treated as gone.

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, oid::ObjectId};
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use crate::db::{Database, DbError};
use crate::error::{Coded, ErrorCode};
use crate::users::UserId;

/// How long a key is remembered.
pub const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// The header's value: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`Idempotency-Key` must be 1-255 visible ASCII characters")]
pub struct InvalidKey;

impl Coded for InvalidKey {
    fn code(&self) -> ErrorCode {
        ErrorCode::ValidationFailed
    }
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, InvalidKey> {
        let ok = !raw.is_empty() && raw.len() <= Self::MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(raw.to_owned())).ok_or(InvalidKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the first request with a key produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Produced {
    Detection(ObjectId),
    Job(ObjectId),
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyRecord {
    #[serde(rename = "_id")]
    id: KeyId,
    produced: Produced,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyId {
    user: ObjectId,
    key: String,
}

/// A key a request holds, to be claimed with what it stores.
#[derive(Debug, Clone)]
pub struct Claim {
    pub user: UserId,
    pub key: IdempotencyKey,
}

#[derive(Clone)]
pub struct IdempotencyKeys {
    keys: Collection<KeyRecord>,
}

impl IdempotencyKeys {
    pub fn new(db: &Database) -> Self {
        Self {
            keys: db.collection("idempotency_keys"),
        }
    }

    /// What an earlier request with this key produced, if it is still remembered.
    pub async fn lookup(&self, claim: &Claim) -> Result<Option<Produced>, DbError> {
        let found = self
            .keys
            .find_one(doc! { "_id": { "user": claim.user.0, "key": claim.key.as_str() } })
            .await
            .map_err(DbError::from_driver)?;
        Ok(found.filter(|r| r.expires_at > Utc::now()).map(|r| r.produced))
    }

    /// Claims the key for `produced`, inside the transaction that stores it.
    /// `Ok(false)` when another request holds the key: the transaction must
    /// be abandoned and that request's result looked up. A key past its
    /// lifetime that the TTL monitor has not removed yet is taken over.
    pub async fn claim(
        &self,
        claim: &Claim,
        produced: Produced,
        session: &mut ClientSession,
    ) -> Result<bool, DbError> {
        let now = Utc::now();
        let id = doc! { "user": claim.user.0, "key": claim.key.as_str() };
        let produced_bson =
            mongodb::bson::to_bson(&produced).map_err(|e| DbError::Malformed(e.to_string()))?;
        let result = self
            .keys
            .update_one(
                doc! { "_id": id, "expires_at": { "$lte": now } },
                doc! { "$set": { "produced": produced_bson, "expires_at": now + KEY_LIFETIME } },
            )
            .upsert(true)
            .session(session)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if crate::db::is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(DbError::from_driver(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("3f1c-retry_1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "a b", "é", "a\n", &"k".repeat(256)] {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidKey), "{bad:?}");
        }
    }

    #[test]
    fn what_a_key_produced_is_stored_tagged() {
        let id = ObjectId::parse_str("6650f1c2a4b1c2d3e4f5a6b7").unwrap();
        let doc = mongodb::bson::to_document(&KeyRecord {
            id: KeyId {
                user: id,
                key: "k".into(),
            },
            produced: Produced::Job(id),
            expires_at: Utc::now(),
        })
        .unwrap();
        assert_eq!(
            doc.get_document("produced").unwrap().get_str("kind").unwrap(),
            "job"
        );
    }
}
