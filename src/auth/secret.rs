//! The server secret that signs access tokens and, through a derived key,
//! media URLs.

use rand::RngCore;

/// A signing secret long enough to resist brute force.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at least {min} bytes, got {got}")]
pub struct ShortSecret {
    pub min: usize,
    pub got: usize,
}

impl JwtSecret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ShortSecret> {
        if raw.len() < Self::MIN_LEN {
            return Err(ShortSecret {
                min: Self::MIN_LEN,
                got: raw.len(),
            });
        }
        Ok(Self(raw.as_bytes().to_vec()))
    }

    pub fn random() -> Self {
        let mut bytes = vec![0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}
