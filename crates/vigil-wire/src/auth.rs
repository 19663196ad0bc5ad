//! What logging in hands out.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Tokens handed out by login and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange at `/api/v1/auth/refresh`. Single use.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}
