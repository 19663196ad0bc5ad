//! The label stored with a detection: `upload`, a client's own label, or a
//! camera id.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Coded, ErrorCode};

/// 1–64 printable characters, surrounding spaces trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Source(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`source` must be 1-64 printable characters")]
pub struct InvalidSource;

impl Coded for InvalidSource {
    fn code(&self) -> ErrorCode {
        ErrorCode::ValidationFailed
    }
}

impl Source {
    /// Longest label in characters.
    pub const MAX_CHARS: usize = 64;
    /// Longest label in UTF-8 bytes: readers may stop there.
    pub const MAX_BYTES: usize = Self::MAX_CHARS * 4;

    pub fn parse(raw: &str) -> Result<Self, InvalidSource> {
        let label = raw.trim();
        let ok = !label.is_empty()
            && label.chars().count() <= Self::MAX_CHARS
            && !label.chars().any(char::is_control);
        ok.then(|| Self(label.to_owned())).ok_or(InvalidSource)
    }

    /// The label of an upload that gave none (or only spaces).
    pub fn upload() -> Self {
        Self("upload".to_owned())
    }

    /// A label the client may have sent: none, or a blank one, is `upload`.
    pub fn given(raw: Option<&str>) -> Result<Self, InvalidSource> {
        match raw.map(str::trim) {
            None | Some("") => Ok(Self::upload()),
            Some(label) => Self::parse(label),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Source {
    type Error = InvalidSource;

    fn try_from(raw: String) -> Result<Self, InvalidSource> {
        Self::parse(&raw)
    }
}

impl From<Source> for String {
    fn from(source: Source) -> Self {
        source.0
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_1_to_64_printable_characters() {
        assert_eq!(Source::given(None).unwrap().as_str(), "upload");
        assert_eq!(Source::given(Some("  ")).unwrap().as_str(), "upload");
        assert_eq!(Source::given(Some(" door ")).unwrap().as_str(), "door");
        assert!(
            Source::given(Some(&"é".repeat(64))).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(Source::given(Some(&"x".repeat(65))), Err(InvalidSource));
        assert_eq!(Source::given(Some("a\nb")), Err(InvalidSource));
        assert!("é".repeat(64).len() <= Source::MAX_BYTES);
    }
}
