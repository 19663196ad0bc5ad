//! API keys for machine clients: shown once, stored as digests, revocable.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tokens::{random_secret, secret_digest};
use crate::db::{Database, DbError};
use crate::error::{Coded, ErrorCode};
use crate::users::UserId;

const KEY_PREFIX: &str = "vgl_";
/// Characters of the key kept in clear, so a user can tell keys apart.
const SHOWN_PREFIX_LEN: usize = 12;
/// Keys one user may hold; a leaked password must not mint keys without bound.
pub const MAX_KEYS_PER_USER: u64 = 100;

/// An API key's id (not the key): 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(pub ObjectId);

impl std::str::FromStr for ApiKeyId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// What a key may do. A key in a phone or a vehicle may be restricted to
/// sending telemetry, so that losing the device does not give away the
/// owner's detections, people and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Everything the owner may do.
    #[default]
    Full,
    /// Only `POST /telemetry/…`.
    Telemetry,
    /// Only `POST /api/v1/alarms` (and the WebSocket's `alarm` message): an
    /// edge agent's key, which can raise alarms and read nothing.
    #[serde(rename = "alarms:write")]
    AlarmsWrite,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredApiKey {
    #[serde(rename = "_id")]
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub key_digest: String,
    /// Keys made before scopes existed are full keys.
    #[serde(default)]
    pub scope: KeyScope,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

/// An API key as listed: no key material.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "camera-uploader")]
    pub name: String,
    /// The first characters of the key, to recognise it.
    #[schema(example = "vgl_Jx3kP0aQ")]
    pub prefix: String,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
}

/// A newly created key: the only time `key` is ever shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// Send as `X-API-Key`. Store it now: it cannot be shown again.
    #[schema(example = "vgl_Jx3kP0aQ…")]
    pub key: String,
}

impl From<&StoredApiKey> for ApiKeyView {
    fn from(k: &StoredApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scope: k.scope,
            created_at: k.created_at,
        }
    }
}

/// 1–64 printable characters saying what the key is for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(try_from = "String")]
#[schema(value_type = String, example = "camera-uploader")]
pub struct KeyName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1-64 printable characters")]
pub struct InvalidKeyName;

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, InvalidKeyName> {
        let name = raw.trim();
        let ok = (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control);
        ok.then(|| Self(name.to_owned())).ok_or(InvalidKeyName)
    }
}

impl TryFrom<String> for KeyName {
    type Error = InvalidKeyName;

    fn try_from(raw: String) -> Result<Self, InvalidKeyName> {
        Self::parse(&raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("at most {MAX_KEYS_PER_USER} API keys per user; revoke one first")]
    TooMany,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for ApiKeyError {
    fn code(&self) -> ErrorCode {
        match self {
            // A well-formed request the account's state refuses: a
            // conflict, as for a subject's faces, not a broken field.
            ApiKeyError::TooMany => ErrorCode::LimitReached,
            ApiKeyError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiKeyError::TooMany => None,
            ApiKeyError::Db(e) => e.retry_after(),
        }
    }
}

impl From<mongodb::error::Error> for ApiKeyError {
    fn from(err: mongodb::error::Error) -> Self {
        ApiKeyError::Db(DbError::from_driver(err))
    }
}

#[derive(Clone)]
pub struct ApiKeys {
    keys: Collection<StoredApiKey>,
}

impl ApiKeys {
    pub fn new(db: &Database) -> Self {
        Self {
            keys: db.collection("api_keys"),
        }
    }

    pub async fn create(
        &self,
        user: UserId,
        name: KeyName,
        scope: KeyScope,
    ) -> Result<CreatedApiKey, ApiKeyError> {
        if self.keys.count_documents(doc! { "user_id": user.0 }).await? >= MAX_KEYS_PER_USER {
            return Err(ApiKeyError::TooMany);
        }
        let key = random_secret(KEY_PREFIX);
        let stored = StoredApiKey {
            id: ApiKeyId(ObjectId::new()),
            user_id: user,
            name: name.0,
            prefix: key[..SHOWN_PREFIX_LEN].to_owned(),
            key_digest: secret_digest(&key),
            scope,
            created_at: Utc::now(),
        };
        self.keys.insert_one(&stored).await?;
        Ok(CreatedApiKey {
            view: ApiKeyView::from(&stored),
            key,
        })
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<ApiKeyView>, ApiKeyError> {
        let keys: Vec<StoredApiKey> = self
            .keys
            .find(doc! { "user_id": user.0 })
            .sort(doc! { "created_at": -1 })
            .await?
            .try_collect()
            .await?;
        Ok(keys.iter().map(ApiKeyView::from).collect())
    }

    /// Deletes the key if `user` owns it. Someone else's key looks absent.
    pub async fn revoke(&self, user: UserId, id: ApiKeyId) -> Result<bool, ApiKeyError> {
        let result = self
            .keys
            .delete_one(doc! { "_id": id.0, "user_id": user.0 })
            .await?;
        Ok(result.deleted_count == 1)
    }

    /// Deletes every key of `user` (the account is being closed).
    pub async fn delete_all_of(&self, user: UserId, session: &mut ClientSession) -> Result<u64, ApiKeyError> {
        let result = self
            .keys
            .delete_many(doc! { "user_id": user.0 })
            .session(session)
            .await?;
        Ok(result.deleted_count)
    }

    pub async fn authenticate(&self, key: &str) -> Result<Option<StoredApiKey>, ApiKeyError> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Ok(None);
        }
        Ok(self
            .keys
            .find_one(doc! { "key_digest": secret_digest(key) })
            .await?)
    }
}
