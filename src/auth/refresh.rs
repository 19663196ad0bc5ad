//! Refresh tokens: opaque, stored as digests, rotated on every use.
//!
//! Each login starts a *family*. Refreshing marks the presented token used and
//! issues the next one in the same family. A used token presented again means
//! it was copied: the whole family is revoked, which logs out the thief and
//! the victim alike (RFC 6819 §5.2.2.3, OAuth 2.0 Security BCP §4.14).

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::doc;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::tokens::{random_secret, secret_digest};
use crate::db::{Database, DbError};
use crate::error::{Coded, ErrorCode};
use crate::users::UserId;

#[derive(Debug, Serialize, Deserialize)]
struct StoredRefreshToken {
    /// SHA-256 of the token.
    #[serde(rename = "_id")]
    digest: String,
    user_id: UserId,
    family_id: String,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    created_at: DateTime<Utc>,
    /// The TTL index removes the document once this passes.
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    expires_at: DateTime<Utc>,
    used: bool,
    revoked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token unknown or expired")]
    Invalid,
    #[error("refresh token was already used; every session of this login is revoked")]
    Reused,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for RefreshError {
    fn code(&self) -> ErrorCode {
        match self {
            RefreshError::Invalid | RefreshError::Reused => ErrorCode::InvalidToken,
            RefreshError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            RefreshError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl From<mongodb::error::Error> for RefreshError {
    fn from(err: mongodb::error::Error) -> Self {
        RefreshError::Db(DbError::from_driver(err))
    }
}

#[derive(Clone)]
pub struct RefreshTokens {
    tokens: Collection<StoredRefreshToken>,
    ttl: Duration,
}

impl RefreshTokens {
    /// `ttl` is bounded where it is configured (at most ten years).
    pub fn new(db: &Database, ttl: std::time::Duration) -> Self {
        Self {
            tokens: db.collection("refresh_tokens"),
            ttl: Duration::from_std(ttl).unwrap_or(Duration::days(3650)),
        }
    }

    /// Starts a new family (a login) and returns its first token.
    pub async fn start_family(&self, user: UserId) -> Result<String, RefreshError> {
        self.issue(user, uuid::Uuid::new_v4().simple().to_string()).await
    }

    async fn issue(&self, user: UserId, family_id: String) -> Result<String, RefreshError> {
        let token = random_secret("vrt_");
        let now = Utc::now();
        self.tokens
            .insert_one(StoredRefreshToken {
                digest: secret_digest(&token),
                user_id: user,
                family_id,
                created_at: now,
                expires_at: now + self.ttl,
                used: false,
                revoked: false,
            })
            .await?;
        Ok(token)
    }

    /// Spends a token and returns its user and the next token of the family.
    pub async fn rotate(&self, token: &str) -> Result<(UserId, String), RefreshError> {
        let digest = secret_digest(token);
        // One atomic step decides the winner when the same token is raced.
        let spent = self
            .tokens
            .find_one_and_update(
                doc! { "_id": &digest, "used": false, "revoked": false },
                doc! { "$set": { "used": true } },
            )
            .await?;
        match spent {
            Some(stored) if stored.expires_at > Utc::now() => {
                let next = self.issue(stored.user_id, stored.family_id).await?;
                Ok((stored.user_id, next))
            }
            Some(_) => Err(RefreshError::Invalid),
            None => match self.tokens.find_one(doc! { "_id": &digest }).await? {
                Some(stored) => {
                    self.revoke_family(&stored.family_id).await?;
                    tracing::warn!(user = %stored.user_id, family = %stored.family_id, "refresh token reuse: family revoked");
                    Err(RefreshError::Reused)
                }
                None => Err(RefreshError::Invalid),
            },
        }
    }

    /// Ends the login the token belongs to; unknown tokens are ignored so
    /// logout is idempotent.
    pub async fn revoke(&self, token: &str) -> Result<(), RefreshError> {
        if let Some(stored) = self.tokens.find_one(doc! { "_id": secret_digest(token) }).await? {
            self.revoke_family(&stored.family_id).await?;
        }
        Ok(())
    }

    /// Deletes every refresh token of `user` (the account is being closed).
    pub async fn delete_all_of(
        &self,
        user: UserId,
        session: &mut ClientSession,
    ) -> Result<u64, RefreshError> {
        let result = self
            .tokens
            .delete_many(doc! { "user_id": user.0 })
            .session(session)
            .await?;
        Ok(result.deleted_count)
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), RefreshError> {
        self.tokens
            .update_many(
                doc! { "family_id": family_id },
                doc! { "$set": { "revoked": true } },
            )
            .await?;
        Ok(())
    }
}
