//! Newest-first keyset paging with a time range, shared by every listing.
//!
//! The cursor is the (time, id) of the last item returned. Paging by keyset
//! rather than by offset stays stable while new documents arrive and costs
//! the same on page 1000 as on page 1.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::Collection;
use serde::de::DeserializeOwned;

pub use vigil_wire::paging::{DEFAULT_LIMIT, MAX_LIMIT};

use super::DbError;
use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("`{0}` must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")]
    BadTime(&'static str),
    #[error("`limit` must be between 1 and {MAX_LIMIT}")]
    BadLimit,
    #[error("`cursor` is not one this server handed out")]
    BadCursor,
    #[error("`from` must not be after `to`")]
    EmptyRange,
}

impl Coded for PageError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidQuery
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub at_millis: i64,
    pub id: ObjectId,
}

impl PageCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.at_millis, self.id.to_hex()))
    }

    pub fn decode(raw: &str) -> Result<Self, PageError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| PageError::BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| PageError::BadCursor)?;
        let (millis, hex) = text.split_once(':').ok_or(PageError::BadCursor)?;
        Ok(Self {
            at_millis: millis.parse().map_err(|_| PageError::BadCursor)?,
            id: ObjectId::parse_str(hex).map_err(|_| PageError::BadCursor)?,
        })
    }
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub cursor: Option<PageCursor>,
}

impl PageRequest {
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, PageError> {
        let time = |raw: Option<&str>, name| {
            raw.map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| PageError::BadTime(name))
            })
            .transpose()
        };
        let from = time(from, "from")?;
        let to = time(to, "to")?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(PageError::EmptyRange);
            }
        }
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::BadLimit);
        }
        let cursor = cursor
            .filter(|c| !c.is_empty())
            .map(PageCursor::decode)
            .transpose()?;
        Ok(Self {
            from,
            to,
            limit,
            cursor,
        })
    }

    /// Adds the range and the cursor position on `time_field` to `base`.
    pub fn filter(&self, time_field: &str, mut base: Document) -> Document {
        let mut range = Document::new();
        if let Some(from) = self.from {
            range.insert("$gte", BsonDateTime::from_chrono(from));
        }
        if let Some(to) = self.to {
            range.insert("$lte", BsonDateTime::from_chrono(to));
        }
        if !range.is_empty() {
            base.insert(time_field, range);
        }
        if let Some(c) = self.cursor {
            let at = BsonDateTime::from_millis(c.at_millis);
            base.insert(
                "$or",
                vec![
                    doc! { time_field: { "$lt": at } },
                    doc! { time_field: at, "_id": { "$lt": c.id } },
                ],
            );
        }
        base
    }
}

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Runs a newest-first page query; `key` gives an item's (time, id).
pub async fn find_page<T>(
    collection: &Collection<T>,
    base: Document,
    time_field: &str,
    page: &PageRequest,
    key: impl Fn(&T) -> (DateTime<Utc>, ObjectId),
) -> Result<Page<T>, DbError>
where
    T: DeserializeOwned + Send + Sync,
{
    let mut items: Vec<T> = collection
        .find(page.filter(time_field, base))
        .sort(doc! { time_field: -1, "_id": -1 })
        .limit(i64::from(page.limit) + 1)
        .await
        .map_err(DbError::from_driver)?
        .try_collect()
        .await
        .map_err(DbError::from_driver)?;
    let more = items.len() > page.limit as usize;
    items.truncate(page.limit as usize);
    let next_cursor = more.then(|| items.last().map(&key)).flatten().map(|(at, id)| {
        PageCursor {
            at_millis: at.timestamp_millis(),
            id,
        }
        .encode()
    });
    Ok(Page { items, next_cursor })
}

/// Millisecond precision, as BSON stores it: compare like with like.
pub fn bson_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = PageCursor {
            at_millis: 1_767_225_600_123,
            id: ObjectId::new(),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Ok(c));
        assert_eq!(PageCursor::decode("!!!"), Err(PageError::BadCursor));
        assert_eq!(
            PageCursor::decode(&URL_SAFE_NO_PAD.encode("12:zz")),
            Err(PageError::BadCursor)
        );
    }

    #[test]
    fn requests_are_validated() {
        assert_eq!(
            PageRequest::parse(None, None, None, None).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            PageRequest::parse(None, None, Some(0), None),
            Err(PageError::BadLimit)
        );
        assert_eq!(
            PageRequest::parse(None, None, Some(201), None),
            Err(PageError::BadLimit)
        );
        assert_eq!(
            PageRequest::parse(Some("yesterday"), None, None, None),
            Err(PageError::BadTime("from"))
        );
        assert_eq!(
            PageRequest::parse(
                Some("2026-02-01T00:00:00Z"),
                Some("2026-01-01T00:00:00Z"),
                None,
                None
            ),
            Err(PageError::EmptyRange)
        );
        let ok = PageRequest::parse(Some("2026-01-01T00:00:00+02:00"), None, Some(200), None).unwrap();
        assert_eq!(ok.from.unwrap().to_rfc3339(), "2025-12-31T22:00:00+00:00");
    }
}
