//! The rules of the API's free-text fields as JSON Schema, so that the
//! OpenAPI document refuses exactly what the server refuses.
//!
//! The server trims a name before checking it (`str::trim`: Unicode
//! `White_Space`) and refuses control characters (`char::is_control`:
//! category Cc). A length limit on the trimmed text is not a `maxLength`
//! (`"x"` followed by 100 spaces is a valid one-character name), so the
//! patterns carry the lengths themselves: optional white space, then the
//! name, whose first and last characters are neither white space nor
//! control characters, then optional white space.

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// Unicode `White_Space`, the characters `str::trim` removes.
macro_rules! white_space {
    () => {
        r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// Neither white space nor a control character: what a trimmed name starts and ends with.
macro_rules! edge {
    () => {
        r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// Not a control character.
macro_rules! printable {
    () => {
        r"[^\x00-\x1f\x7f-\x9f]"
    };
}

/// 1–64 characters once trimmed, none of them a control character: API key
/// names, subject names.
pub const NAME_64: &str = concat!(
    "^",
    white_space!(),
    "*",
    edge!(),
    "(?:",
    printable!(),
    "{0,62}",
    edge!(),
    ")?",
    white_space!(),
    "*$"
);

/// At most 500 characters once trimmed (empty too), no control character
/// but the newline: subject notes.
pub const NOTE_500: &str = concat!(
    "^",
    white_space!(),
    "*(?:",
    edge!(),
    "(?:",
    r"[^\x00-\x09\x0b-\x1f\x7f-\x9f]",
    "{0,498}",
    edge!(),
    ")?)?",
    white_space!(),
    "*$"
);

/// A user name: 3–32 of `A-Z a-z 0-9 _ . -`, nothing trimmed.
pub const USER_NAME: &str = r"^[A-Za-z0-9_.-]{3,32}$";

/// The email addresses the document promises to take: an ASCII local part
/// of at most 64 characters that neither starts nor ends with a dot, and a
/// domain of at least two DNS labels. The server takes a little more (it
/// trims, and allows non-ASCII letters in the domain); what it refuses never
/// matches this.
pub const EMAIL: &str = concat!(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-](?:[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{0,62}[A-Za-z0-9!#$%&'*+/=?^_`{|}~-])?",
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
);

/// A string schema with a pattern and length limits (JSON Schema counts
/// characters, as the server does).
pub fn string(
    description: &str,
    pattern: Option<&str>,
    lengths: Option<(usize, usize)>,
    example: &str,
) -> RefOr<Schema> {
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples([serde_json::Value::from(example)]);
    if let Some((min, max)) = lengths {
        schema = schema.min_length(Some(min)).max_length(Some(max));
    }
    schema.into()
}
