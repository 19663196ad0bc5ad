//! Query parameters shared by the list endpoints.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::paging::PageRequest;
use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only items at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only items at or before this time (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        PageRequest::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.limit,
            self.cursor.as_deref(),
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))
    }
}

/// One page of a newest-first listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn parse_object_id(raw: &str, what: &str) -> Result<mongodb::bson::oid::ObjectId, ApiError> {
    mongodb::bson::oid::ObjectId::parse_str(raw)
        .map_err(|_| ApiError::new(ErrorCode::NotFound, format!("no {what} with this id")))
}
