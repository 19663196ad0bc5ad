//! Who is calling: the extractors every handler uses.
//!
//! [`Principal`] authenticates (JWT or API key) and draws from the caller's
//! rate-limit bucket; [`ClientIp`] draws from the client address's bucket for
//! routes without credentials. A handler that takes either cannot forget to
//! authenticate or to rate-limit.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use mongodb::bson::oid::ObjectId;

use super::rate_limit::RateKey;
use super::tokens::TokenError;
use super::AuthError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::users::{Role, UserId};

pub const API_KEY_HEADER: &str = "x-api-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    AccessToken,
    ApiKey(ObjectId),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// API keys get their own bucket: a busy machine client must not starve
    /// its owner's interactive use.
    pub fn rate_key(&self) -> RateKey {
        match self.credential {
            Credential::AccessToken => RateKey::User(self.user_id),
            Credential::ApiKey(id) => RateKey::ApiKey(id),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidToken("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(AuthError::InvalidToken("Authorization must be `Bearer <token>`")),
    }
}

fn api_key(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    headers
        .get(API_KEY_HEADER)
        .map(|v| v.to_str().map(|s| s.trim().to_owned()))
        .transpose()
        .map_err(|_| AuthError::InvalidToken("malformed X-API-Key header"))
}

/// Resolves credentials to a principal; shared with the WebSocket handshake.
pub async fn authenticate(
    state: &AppState,
    bearer_token: Option<&str>,
    api_key: Option<&str>,
) -> Result<Principal, AuthError> {
    if let Some(token) = bearer_token {
        let claims = state.auth.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => AuthError::InvalidToken("access token expired; refresh it"),
            TokenError::Invalid => AuthError::InvalidToken("access token invalid"),
        })?;
        let user_id = UserId::parse(&claims.sub).ok_or(AuthError::InvalidToken("access token invalid"))?;
        return Ok(Principal {
            user_id,
            role: claims.role,
            credential: Credential::AccessToken,
        });
    }
    if let Some(key) = api_key {
        let stored = state
            .auth
            .api_keys
            .authenticate(key)
            .await?
            .ok_or(AuthError::InvalidToken("API key invalid or revoked"))?;
        let user = state
            .auth
            .users
            .find(stored.user_id)
            .await?
            .ok_or(AuthError::InvalidToken("API key invalid or revoked"))?;
        return Ok(Principal {
            user_id: user.id,
            role: user.role,
            credential: Credential::ApiKey(stored.id),
        });
    }
    Err(AuthError::Unauthenticated)
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState missing from the app"))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let credentials = bearer(req.headers()).and_then(|b| Ok((b, api_key(req.headers())?)));
        Box::pin(async move {
            let state = state?;
            let (bearer, key) = credentials?;
            let principal = authenticate(&state, bearer.as_deref(), key.as_deref()).await?;
            state
                .auth
                .limiter
                .check(principal.rate_key())
                .map_err(AuthError::RateLimited)?;
            tracing::Span::current().record("user", tracing::field::display(principal.user_id));
            Ok(principal)
        })
    }
}

/// The client's address (the TCP peer; proxies are not trusted), rate-limited.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ip = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let result = app_state(req).and_then(|state| {
            state
                .auth
                .limiter
                .check(RateKey::Ip(ip))
                .map_err(|wait| AuthError::RateLimited(wait).into())
        });
        std::future::ready(result.map(|()| ClientIp(ip)))
    }
}
