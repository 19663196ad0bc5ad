//! Signing deliveries: `X-Vigil-Signature: sha256=<hex>` is the
//! HMAC-SHA256, keyed with the webhook's secret, of `<timestamp>.<body>`,
//! where `<timestamp>` is the `X-Vigil-Timestamp` header (Unix seconds).
//! Covering the timestamp lets a receiver refuse a replayed delivery by its
//! age without trusting an unsigned header.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of randomness in a generated secret.
const SECRET_BYTES: usize = 32;
/// What a generated secret starts with, so that it is recognised in a config file.
const SECRET_PREFIX: &str = "whsec_";

/// The `X-Vigil-Signature` value of `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A secret for a webhook created without one.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign("secret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(
            sign("secret", 1_700_000_001, b"x"),
            sign("secret", 1_700_000_000, b"x")
        );
        assert_ne!(
            sign("other", 1_700_000_000, b"x"),
            sign("secret", 1_700_000_000, b"x")
        );
    }

    #[test]
    fn generated_secrets_are_long_and_different() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 2 * SECRET_BYTES);
    }
}
