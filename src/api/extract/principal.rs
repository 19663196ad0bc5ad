//! The caller, authenticated (JWT or API key) and rate-limited.

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::service;
use crate::api::error::ApiError;
use crate::auth::api_keys::KeyScope;
use crate::auth::{AuthError, AuthService, Principal};

pub const API_KEY_HEADER: &str = "x-api-key";

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

/// Which keys a route takes: full ones, and those restricted to `scope`.
fn authenticated(req: &HttpRequest, scope: KeyScope) -> LocalBoxFuture<'static, Result<Principal, ApiError>> {
    let auth = service::<AuthService>(req);
    let credentials = bearer(req.headers()).and_then(|b| Ok((b, api_key(req.headers())?)));
    Box::pin(async move {
        let auth = auth?;
        let (bearer, key) = credentials?;
        let (bearer, key) = (bearer.as_deref(), key.as_deref());
        let principal = auth.authenticate_for(bearer, key, scope).await?;
        auth.limiter
            .check(principal.rate_key())
            .map_err(AuthError::RateLimited)?;
        tracing::Span::current().record("user", tracing::field::display(principal.user_id));
        Ok(principal)
    })
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticated(req, KeyScope::Full)
    }
}

/// A caller sending telemetry: any credential of theirs, including API
/// keys restricted to telemetry (which every other route refuses).
#[derive(Debug, Clone)]
pub struct TelemetrySender(pub Principal);

impl FromRequest for TelemetrySender {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = authenticated(req, KeyScope::Telemetry);
        Box::pin(async move { principal.await.map(TelemetrySender) })
    }
}

/// A caller raising alarms from elsewhere (an edge agent): any credential
/// of theirs, including API keys restricted to `alarms:write` (which every
/// other route refuses).
#[derive(Debug, Clone)]
pub struct AlarmSender(pub Principal);

impl FromRequest for AlarmSender {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = authenticated(req, KeyScope::AlarmsWrite);
        Box::pin(async move { principal.await.map(AlarmSender) })
    }
}

/// A caller with the admin role (403 `forbidden` for everyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            let principal = principal.await?;
            if principal.is_admin() {
                Ok(Admin(principal))
            } else {
                Err(AuthError::Forbidden.into())
            }
        })
    }
}
