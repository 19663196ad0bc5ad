//! Where the next page of a search starts: after the last match returned,
//! in the order the matches come (nearest first, or newest first).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mongodb::bson::oid::ObjectId;

use vigil_wire::search::SearchOrder;

use crate::db::paging::{PageCursor, PageError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchCursor {
    /// After the match at this distance (then id, for equal distances).
    Best { distance: f32, id: ObjectId },
    /// After the match stored at this time (then id, for equal times).
    Newest(PageCursor),
}

impl SearchCursor {
    pub fn encode(&self) -> String {
        let text = match self {
            SearchCursor::Best { distance, id } => format!("b:{}:{}", distance.to_bits(), id.to_hex()),
            SearchCursor::Newest(c) => format!("n:{}:{}", c.at_millis, c.id.to_hex()),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// A cursor handed out for `order`; one of the other order is refused.
    pub fn decode(raw: &str, order: SearchOrder) -> Result<Self, PageError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| PageError::BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| PageError::BadCursor)?;
        let mut parts = text.splitn(3, ':');
        let (Some(kind), Some(key), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(PageError::BadCursor);
        };
        let id = ObjectId::parse_str(hex).map_err(|_| PageError::BadCursor)?;
        match (kind, order) {
            ("b", SearchOrder::Best) => {
                let distance = f32::from_bits(key.parse().map_err(|_| PageError::BadCursor)?);
                if !distance.is_finite() {
                    return Err(PageError::BadCursor);
                }
                Ok(SearchCursor::Best { distance, id })
            }
            ("n", SearchOrder::Newest) => Ok(SearchCursor::Newest(PageCursor {
                at_millis: key.parse().map_err(|_| PageError::BadCursor)?,
                id,
            })),
            _ => Err(PageError::BadCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_only_in_its_own_order() {
        let id = ObjectId::new();
        let best = SearchCursor::Best { distance: 0.4321, id };
        assert_eq!(SearchCursor::decode(&best.encode(), SearchOrder::Best), Ok(best));
        assert_eq!(
            SearchCursor::decode(&best.encode(), SearchOrder::Newest),
            Err(PageError::BadCursor)
        );
        let newest = SearchCursor::Newest(PageCursor {
            at_millis: 1_700_000_000_123,
            id,
        });
        assert_eq!(
            SearchCursor::decode(&newest.encode(), SearchOrder::Newest),
            Ok(newest)
        );
        for bad in ["", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("b:NaN:00")] {
            assert!(SearchCursor::decode(bad, SearchOrder::Best).is_err(), "{bad}");
        }
        let nan = URL_SAFE_NO_PAD.encode(format!("b:{}:{}", f32::NAN.to_bits(), id.to_hex()));
        assert!(SearchCursor::decode(&nan, SearchOrder::Best).is_err());
    }
}
