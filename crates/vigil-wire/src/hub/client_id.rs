//! The id a WebSocket client gives itself (`?client_id=`). It becomes part
//! of database keys on the server, so only a narrow alphabet is accepted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// 1–64 of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

/// What a client id may be, for error messages.
pub const CLIENT_ID_RULE: &str = "1–64 characters of A-Z a-z 0-9 . _ : -";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client id is {CLIENT_ID_RULE}")]
pub struct InvalidClientId;

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, InvalidClientId> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidClientId)
        }
    }

    /// A fresh id for a client that gave none.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = InvalidClientId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for ClientId {
    type Error = InvalidClientId;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> Self {
        id.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrow_alphabet_of_1_to_64() {
        for good in ["dashboard-1", "a.b_c:d", "x", &"x".repeat(64)] {
            assert_eq!(ClientId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", &"x".repeat(65), "has space", "$where", "é"] {
            assert_eq!(ClientId::parse(bad), Err(InvalidClientId), "{bad}");
        }
        assert!(ClientId::parse(ClientId::generate().as_str()).is_ok());
        assert!(serde_json::from_str::<ClientId>(r#""a b""#).is_err());
    }
}
