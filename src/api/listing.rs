//! Query parameters shared by the list endpoints.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::db::paging::{PageError, PageRequest};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only items at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only items at or before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page asked for. A range that ends before it starts is empty, not
    /// an error: the document cannot say "`from` before `to`", and an empty
    /// page is the truthful answer to it.
    pub fn page(&self) -> Result<PageRequest, PageError> {
        let mut request = PageRequest::parse(self.from.as_deref(), None, self.limit, self.cursor.as_deref())?;
        request.to = PageRequest::parse(None, self.to.as_deref(), None, None)?.to;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str) -> ListQuery {
        ListQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            limit: Some(10),
            cursor: None,
        }
    }

    #[test]
    fn an_inverted_range_is_an_empty_page_request_and_bad_values_still_fail() {
        let page = query("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z")
            .page()
            .unwrap();
        assert!(page.from > page.to);
        assert_eq!(page.limit, 10);
        assert_eq!(
            query("yesterday", "2026-01-01T00:00:00Z").page(),
            Err(PageError::BadTime("from"))
        );
        assert_eq!(
            query("2026-01-01T00:00:00Z", "soon").page(),
            Err(PageError::BadTime("to"))
        );
    }
}
