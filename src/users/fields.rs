//! Account fields, parsed once at the edge: a value of these types is valid.
//! Request bodies deserialize straight into them (`serde(try_from)`), so a
//! handler never sees an unchecked name, address or password.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use vigil_wire::text;

use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    #[error("user_name must be 3-32 characters of A-Z, a-z, 0-9, '_', '.', '-'")]
    UserName,
    #[error("email is not a valid address")]
    Email,
    #[error("password must be 8-128 characters")]
    Password,
}

impl Coded for FieldError {
    fn code(&self) -> ErrorCode {
        ErrorCode::ValidationFailed
    }
}

/// `TryFrom<String>` for a type with a `parse(&str)`, for `serde(try_from)`.
macro_rules! parsed_from_string {
    ($type:ty) => {
        impl TryFrom<String> for $type {
            type Error = FieldError;

            fn try_from(raw: String) -> Result<Self, FieldError> {
                Self::parse(&raw)
            }
        }
    };
}

// Compared case-insensitively through `UserName::key`.
/// 3–32 characters of `A-Z a-z 0-9 _ . -`; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UserName(String);

parsed_from_string!(UserName);

impl PartialSchema for UserName {
    fn schema() -> RefOr<Schema> {
        text::string(
            "3–32 characters of `A-Z a-z 0-9 _ . -`; unique regardless of case.",
            Some(text::USER_NAME),
            Some((3, 32)),
            "alice",
        )
    }
}

impl ToSchema for UserName {}

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = (3..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        ok.then(|| Self(raw.to_owned())).ok_or(FieldError::UserName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: "Alice" and "alice" are one account.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

// The check is deliberately the practical one (one `@`, a dotted domain, no
// spaces): full RFC 5322 admits addresses that no mail system delivers, and
// only a sent mail proves an address anyway.
/// An email address (stored lower-cased); unique.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

parsed_from_string!(Email);

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        text::string(
            "An email address (stored lower-cased); unique.",
            Some(text::EMAIL),
            Some((5, 254)),
            "alice@example.org",
        )
    }
}

impl ToSchema for Email {}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        let (local, domain) = value.split_once('@').ok_or(FieldError::Email)?;
        let local_ok =
            !local.is_empty() && local.len() <= 64 && !local.starts_with('.') && !local.ends_with('.');
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-')
            })
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let chars_ok = value.len() <= 254
            && !value.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(
                        c,
                        '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']'
                    )
            })
            && value.matches('@').count() == 1;
        (local_ok && domain_ok && chars_ok)
            .then_some(Self(value))
            .ok_or(FieldError::Email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A plaintext password on its way to the hasher; never printed.
/// 8–128 characters.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        text::string(
            "8–128 characters.",
            None,
            Some((8, 128)),
            "correct horse battery staple",
        )
    }
}

impl ToSchema for Password {}

impl TryFrom<String> for Password {
    type Error = FieldError;

    fn try_from(raw: String) -> Result<Self, FieldError> {
        Self::parse(raw)
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if (8..=128).contains(&chars) {
            Ok(Self(raw))
        } else {
            Err(FieldError::Password)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// How many accepted uploads the account may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quota(pub u32);

// Any u32: wider than int32, so the schema says int64 with the real bounds.
impl PartialSchema for Quota {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .description(Some("How many accepted uploads the account may make."))
            .minimum(Some(0))
            .maximum(Some(u32::MAX))
            .examples([100])
            .into()
    }
}

impl ToSchema for Quota {}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Addresses [`Email::parse`] refuses; the OpenAPI pattern's test refuses them too.
#[cfg(test)]
pub(crate) const NOT_EMAILS: &[&str] = &[
    "",
    "plain",
    "@example.com",
    "a@",
    "a@b",
    "a@@b.com",
    "a b@c.com",
    "a@-b.com",
    "a@b..com",
    ".a@b.com",
    "a.@b.com",
    "a<b>@c.com",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in ["bob", "Alice_1", "a.b-c", &"x".repeat(32)] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "has space",
            "émile",
            "a/b",
            &"x".repeat(33),
            "semi;colon",
        ] {
            assert_eq!(UserName::parse(bad), Err(FieldError::UserName), "{bad}");
        }
        assert_eq!(UserName::parse("Alice").unwrap().key(), "alice");
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Bob@Example.ORG ").unwrap().as_str(),
            "bob@example.org"
        );
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in NOT_EMAILS {
            assert_eq!(Email::parse(bad), Err(FieldError::Email), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("seven77".into()).is_err());
        assert!(Password::parse("eight888".into()).is_ok());
        assert!(
            Password::parse("é".repeat(128)).is_ok(),
            "128 characters, 256 bytes"
        );
        assert!(Password::parse("x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw".into()).unwrap()),
            "Password(<redacted>)"
        );
    }
}
