//! Password hashing with Argon2id.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Coded, ErrorCode};
use crate::users::fields::Password;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl HashError {
    pub(crate) fn from_join(err: &tokio::task::JoinError) -> Self {
        HashError(format!("hashing task failed: {err}"))
    }
}

impl Coded for HashError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// Argon2id's cost parameters (OWASP's minimum by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A real hash of a random password: verifying against it when the user
    /// does not exist costs the same time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let Argon2Settings {
            memory_kib,
            iterations,
            parallelism,
        } = settings;
        let params =
            Params::new(memory_kib, iterations, parallelism, None).map_err(|e| HashError(e.to_string()))?;
        let mut hasher = Self {
            params,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash =
            hasher.hash(&Password::parse(uuid::Uuid::new_v4().to_string()).expect("36 chars"))?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$…`. CPU-heavy: call off the async runtime.
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Verifies with the parameters stored in the hash, so raising the cost
    /// later does not lock out existing users. `None` burns the same time.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let Ok(parsed) = PasswordHash::new(stored.unwrap_or(&self.dummy_hash)) else {
            return false;
        };
        let ok = self
            .argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_their_parameters() {
        let hasher = PasswordHasher::new(Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let hash = hasher
            .hash(&Password::parse("correct horse".into()).unwrap())
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", Some(&hash)));
        assert!(!hasher.verify("wrong horse", Some(&hash)));
        assert!(!hasher.verify("correct horse", None));
        assert!(!hasher.verify("correct horse", Some("not a hash")));
    }
}
