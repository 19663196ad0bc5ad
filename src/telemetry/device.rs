//! A device's id: a MAC address, normalised to one spelling, or any other
//! short printable id the fleet already uses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `AA:BB:CC:DD:EE:FF` for a MAC address (however it was written: colons
/// or dashes, any case), else 1–64 characters of `A-Z a-z 0-9 . _ - :`
/// kept as sent (case-sensitive). Nothing else: ids appear in URLs, logs
/// and topic names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a MAC address (AA:BB:CC:DD:EE:FF) or 1-64 characters of A-Z a-z 0-9 . _ - :")]
pub struct InvalidDeviceId;

impl DeviceId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidDeviceId> {
        if let Some(mac) = normalised_mac(raw) {
            return Ok(Self(mac));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':');
        if (1..=Self::MAX_LEN).contains(&raw.len()) && raw.chars().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidDeviceId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Six pairs of hex digits separated by one kind of separator.
fn normalised_mac(raw: &str) -> Option<String> {
    let separator = [':', '-'].into_iter().find(|&s| raw.contains(s))?;
    let pairs: Vec<&str> = raw.split(separator).collect();
    let is_pair = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit());
    (pairs.len() == 6 && pairs.iter().all(is_pair)).then(|| pairs.join(":").to_ascii_uppercase())
}

impl TryFrom<String> for DeviceId {
    type Error = InvalidDeviceId;

    fn try_from(raw: String) -> Result<Self, InvalidDeviceId> {
        Self::parse(&raw)
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0
    }
}

impl std::str::FromStr for DeviceId {
    type Err = InvalidDeviceId;

    fn from_str(raw: &str) -> Result<Self, InvalidDeviceId> {
        Self::parse(raw)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_have_one_spelling() {
        for raw in ["aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "Aa:bB:cc:DD:ee:Ff"] {
            assert_eq!(
                DeviceId::parse(raw).unwrap().as_str(),
                "AA:BB:CC:DD:EE:FF",
                "{raw}"
            );
        }
    }

    #[test]
    fn other_ids_are_kept_as_sent() {
        assert_eq!(DeviceId::parse("truck-17").unwrap().as_str(), "truck-17");
        assert_eq!(
            DeviceId::parse("aa:bb:cc").unwrap().as_str(),
            "aa:bb:cc",
            "not a MAC: kept"
        );
        assert_eq!(DeviceId::parse(&"x".repeat(64)).unwrap().as_str().len(), 64);
    }

    #[test]
    fn bad_ids_are_refused() {
        for raw in ["", " ", "truck 17", "a/b", "é", "x\n", &"x".repeat(65)] {
            assert_eq!(DeviceId::parse(raw), Err(InvalidDeviceId), "{raw:?}");
        }
    }
}
