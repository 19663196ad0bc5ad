//! The audit log: who searched by face or exported a person, and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// `POST /api/v1/faces/search`.
    FaceSearch,
    /// `GET /api/v1/subjects/{id}/export`.
    SubjectExport,
}

/// One audited access to biometric data. Entries are never changed nor
/// deleted through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c9")]
    pub id: String,
    pub at: DateTime<Utc>,
    /// The account that did it.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b1")]
    pub actor_id: String,
    pub action: AuditAction,
    /// What was looked for or exported.
    #[schema(example = "subject 6650f1c2a4b1c2d3e4f5a6b8")]
    pub target: String,
    /// Matches returned (a search) or faces exported.
    #[schema(example = 12)]
    pub results: u64,
}
