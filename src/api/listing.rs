//! Query parameters shared by the list endpoints.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::db::paging::{PageError, PageRequest};

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
    pub fn page(&self) -> Result<PageRequest, PageError> {
        PageRequest::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.limit,
            self.cursor.as_deref(),
        )
    }
}
