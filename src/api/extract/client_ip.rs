//! The rate limit of routes without credentials, by client address.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::service;
use crate::api::error::ApiError;
use crate::auth::rate_limit::RateKey;
use crate::auth::{AuthError, AuthService};

/// The client's address (the TCP peer; proxies are not trusted), after one
/// request was drawn from its rate-limit bucket: a handler that takes it is
/// rate-limited even when it never looks at the address.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitedIp(pub IpAddr);

impl FromRequest for RateLimitedIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ip = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let result = service::<AuthService>(req).and_then(|auth| {
            auth.limiter
                .check(RateKey::Ip(ip))
                .map_err(|wait| AuthError::RateLimited(wait).into())
        });
        std::future::ready(result.map(|()| RateLimitedIp(ip)))
    }
}
