//! Access tokens (JWT) and the random secrets behind refresh tokens and API keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::users::{Role, UserId};

/// The HMAC algorithms an access token may be signed with; no other is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("access token invalid")]
    Invalid,
}

#[derive(Clone)]
pub struct TokenIssuer {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], algorithm: JwtAlgorithm, ttl: std::time::Duration) -> Self {
        let algorithm = match algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
        };
        Self {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: UserId, role: Role) -> String {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user.to_string(),
            iat: now,
            exp: now + self.ttl_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            role,
        };
        encode(&Header::new(self.algorithm), &claims, &self.encoding).expect("HMAC signing cannot fail")
    }

    /// Accepts only the configured algorithm: `alg: none` and algorithm
    /// confusion are refused by construction.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        decode::<AccessClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// A fresh 256-bit secret, URL-safe, with a prefix saying what it is for.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How secrets are stored: a database leak must not hand out working tokens.
/// SHA-256 suffices (no salt, no stretching) because the input is 256 random bits.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS_900: std::time::Duration = std::time::Duration::from_secs(900);

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&[7u8; 32], JwtAlgorithm::Hs256, SECS_900)
    }

    fn user() -> UserId {
        UserId(mongodb::bson::oid::ObjectId::new())
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let id = user();
        let claims = issuer().verify(&issuer().issue(id, Role::Admin)).unwrap();
        assert_eq!(claims.sub, id.to_string());
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.jti.len(), 32);
    }

    #[test]
    fn another_secret_or_algorithm_is_refused() {
        let token = issuer().issue(user(), Role::User);
        let other_secret = TokenIssuer::new(&[8u8; 32], JwtAlgorithm::Hs256, SECS_900);
        assert!(matches!(other_secret.verify(&token), Err(TokenError::Invalid)));
        let other_alg = TokenIssuer::new(&[7u8; 32], JwtAlgorithm::Hs512, SECS_900);
        assert!(matches!(other_alg.verify(&token), Err(TokenError::Invalid)));
    }

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let a = random_secret("vgl_");
        assert!(a.starts_with("vgl_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, random_secret("vgl_"));
        assert_eq!(secret_digest("abc"), secret_digest("abc"));
        assert_eq!(secret_digest("abc").len(), 64);
    }
}
