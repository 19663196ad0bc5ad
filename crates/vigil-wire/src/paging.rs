//! Newest-first listings, one page at a time.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` a listing accepts.
pub const MAX_LIMIT: u32 = 200;

/// One page of a newest-first listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
