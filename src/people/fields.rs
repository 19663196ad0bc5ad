//! A subject's fields, parsed once at the edge: request bodies deserialize
//! straight into these types, so the service never sees an unchecked name.

use serde::Deserialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use vigil_wire::text;

use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubjectFieldError {
    #[error("name must be 1-64 characters, not only spaces, without control characters")]
    Name,
    #[error("note must be at most 500 characters, without control characters other than newlines")]
    Note,
}

impl Coded for SubjectFieldError {
    fn code(&self) -> ErrorCode {
        ErrorCode::ValidationFailed
    }
}

/// A person's name as the user wrote it (surrounding spaces trimmed): 1–64
/// characters, unique per owner regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SubjectName(String);

impl PartialSchema for SubjectName {
    fn schema() -> RefOr<Schema> {
        text::string(
            "A person's name: 1–64 characters once surrounding white space is trimmed, \
             no control characters; unique per owner regardless of case.",
            Some(text::NAME_64),
            None,
            "Alice",
        )
    }
}

impl ToSchema for SubjectName {}

impl SubjectName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, SubjectFieldError> {
        let name = raw.trim();
        let chars = name.chars().count();
        let ok = (1..=Self::MAX_CHARS).contains(&chars) && !name.chars().any(char::is_control);
        ok.then(|| Self(name.to_owned())).ok_or(SubjectFieldError::Name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: "Alice" and "ALICE" are one subject.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for SubjectName {
    type Error = SubjectFieldError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

/// A free-text note, at most 500 characters; empty means none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SubjectNote(Option<String>);

impl PartialSchema for SubjectNote {
    fn schema() -> RefOr<Schema> {
        text::string(
            "A free-text note: at most 500 characters once surrounding white space is \
             trimmed, no control characters but newlines; empty means none.",
            Some(text::NOTE_500),
            None,
            "my sister",
        )
    }
}

impl ToSchema for SubjectNote {}

impl SubjectNote {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, SubjectFieldError> {
        let note = raw.trim();
        if note.chars().count() > Self::MAX_CHARS || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(SubjectFieldError::Note);
        }
        Ok(Self((!note.is_empty()).then(|| note.to_owned())))
    }

    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

impl TryFrom<String> for SubjectNote {
    type Error = SubjectFieldError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

/// `POST /api/v1/subjects`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubject {
    pub name: SubjectName,
    #[serde(default)]
    pub note: Option<SubjectNote>,
}

/// `PATCH /api/v1/subjects/{id}`: what is given changes; an empty `note` removes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectPatch {
    #[serde(default)]
    pub name: Option<SubjectName>,
    #[serde(default)]
    pub note: Option<SubjectNote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_keyed_without_case() {
        let name = SubjectName::parse("  Élodie Martin ").unwrap();
        assert_eq!(name.as_str(), "Élodie Martin");
        assert_eq!(name.key(), "élodie martin");
        assert!(SubjectName::parse(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", "a\u{0}b", "line\nbreak"] {
            assert_eq!(SubjectName::parse(bad), Err(SubjectFieldError::Name), "{bad:?}");
        }
        assert!(SubjectName::parse(&"é".repeat(65)).is_err());
    }

    #[test]
    fn notes_may_be_empty_or_multiline_but_not_long() {
        assert_eq!(SubjectNote::parse("  ").unwrap().into_inner(), None);
        assert_eq!(
            SubjectNote::parse("two\nlines").unwrap().into_inner().as_deref(),
            Some("two\nlines")
        );
        assert!(SubjectNote::parse(&"x".repeat(501)).is_err());
        assert!(SubjectNote::parse("bell\u{7}").is_err());
    }
}
