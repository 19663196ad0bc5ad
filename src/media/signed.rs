//! Signed media URLs: `/media/{id}?exp=<unix seconds>&sig=<HMAC>`.
//!
//! The signature covers the id and the expiry, so a URL grants exactly one
//! image for a bounded time, and works in `<img src>` where no header can go.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::MediaId;
use crate::error::{Coded, ErrorCode};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the media URL has expired")]
    Expired,
    #[error("the media URL signature is invalid")]
    Invalid,
}

impl Coded for SignatureError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidSignature
    }
}

#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    ttl_secs: i64,
}

impl UrlSigner {
    /// Derives its own key from the server secret, so a media signature can
    /// never double as a token signature.
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"vigil media url v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
            ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    fn mac(&self, id: &MediaId, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{id}:{expires}").as_bytes());
        mac
    }

    /// A path with query, e.g. `/media/…jpg?exp=…&sig=…`.
    pub fn url(&self, id: &MediaId) -> String {
        self.url_expiring_at(id, Utc::now().timestamp() + self.ttl_secs)
    }

    pub fn url_expiring_at(&self, id: &MediaId, expires: i64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(id, expires).finalize().into_bytes());
        format!("/media/{id}?exp={expires}&sig={sig}")
    }

    /// Checks in constant time; returns the seconds the URL has left.
    pub fn verify(&self, id: &MediaId, expires: i64, sig: &str) -> Result<i64, SignatureError> {
        let raw = URL_SAFE_NO_PAD.decode(sig).map_err(|_| SignatureError::Invalid)?;
        self.mac(id, expires)
            .verify_slice(&raw)
            .map_err(|_| SignatureError::Invalid)?;
        let left = expires - Utc::now().timestamp();
        if left <= 0 {
            return Err(SignatureError::Expired);
        }
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ImageKind;

    const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

    fn parts(url: &str) -> (i64, String) {
        let query = url.split_once('?').unwrap().1;
        let mut exp = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("exp", v) => exp = v.parse().unwrap(),
                ("sig", v) => sig = v.to_owned(),
                _ => {}
            }
        }
        (exp, sig)
    }

    #[test]
    fn signed_urls_verify_only_for_their_id_and_expiry() {
        let signer = UrlSigner::new(b"server secret of sufficient length!!", MINUTE);
        let id = MediaId::new(ImageKind::Jpeg);
        let (exp, sig) = parts(&signer.url(&id));
        assert!(signer.verify(&id, exp, &sig).unwrap() <= 60);
        assert_eq!(
            signer.verify(&MediaId::new(ImageKind::Jpeg), exp, &sig),
            Err(SignatureError::Invalid)
        );
        assert_eq!(signer.verify(&id, exp + 1, &sig), Err(SignatureError::Invalid));
        assert_eq!(signer.verify(&id, exp, "AAAA"), Err(SignatureError::Invalid));
        let other = UrlSigner::new(b"another secret of sufficient length!", MINUTE);
        assert_eq!(other.verify(&id, exp, &sig), Err(SignatureError::Invalid));
        let (old_exp, old_sig) = parts(&signer.url_expiring_at(&id, Utc::now().timestamp() - 1));
        assert_eq!(
            signer.verify(&id, old_exp, &old_sig),
            Err(SignatureError::Expired)
        );
    }
}
