//! User accounts: the domain types, the stored document, the repository.

pub mod directory;
pub mod fields;
mod repository;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use directory::{AccountDirectory, DirectorySync};
pub use fields::Quota;
pub use repository::{QuotaUse, UserError, Users};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

/// A user's id: a MongoDB ObjectId, shown to clients as 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub ObjectId);

impl UserId {
    pub fn parse(raw: &str) -> Option<Self> {
        ObjectId::parse_str(raw).ok().map(Self)
    }
}

impl std::str::FromStr for UserId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// The stored user document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub user_name: String,
    pub user_name_key: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub api_request_quota: Quota,
    pub api_requests_used: u32,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

/// A user as the API shows it: never a hash or a secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "alice")]
    pub user_name: String,
    #[schema(example = "alice@example.org")]
    pub email: String,
    pub role: Role,
    pub api_request_quota: Quota,
    #[schema(example = 3)]
    pub api_requests_used: u32,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            user_name: user.user_name.clone(),
            email: user.email.clone(),
            role: user.role,
            api_request_quota: user.api_request_quota,
            api_requests_used: user.api_requests_used,
            created_at: user.created_at,
        }
    }
}
