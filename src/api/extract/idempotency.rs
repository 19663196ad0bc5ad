//! The `Idempotency-Key` header, parsed once: a malformed one is refused
//! before the body is read.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::api::error::ApiError;
use crate::idempotency::{Claim, IdempotencyKey, InvalidKey};
use crate::users::UserId;

pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// The key, when the client sent one.
#[derive(Debug, Clone)]
pub struct OptionalIdempotencyKey(pub Option<IdempotencyKey>);

impl OptionalIdempotencyKey {
    /// The key as `user`'s claim.
    pub fn claim(self, user: UserId) -> Option<Claim> {
        self.0.map(|key| Claim { user, key })
    }
}

impl FromRequest for OptionalIdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(IDEMPOTENCY_KEY_HEADER) {
            None => Ok(Self(None)),
            Some(value) => value
                .to_str()
                .map_err(|_| InvalidKey)
                .and_then(IdempotencyKey::parse)
                .map(|key| Self(Some(key)))
                .map_err(ApiError::from),
        };
        std::future::ready(parsed)
    }
}
