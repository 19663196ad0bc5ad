//! Registration, login, token refresh and logout.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{JsonBody, RateLimitedIp};
use crate::auth::{AuthService, TokenPair};
use crate::users::fields::{Email, Password, UserName};
use crate::users::UserView;
use vigil_wire::ErrorBody;

/// A new account; each field is checked as it is read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters of A-Z, a-z, 0-9, `_`, `.`, `-`; unique regardless of case.
    pub user_name: UserName,
    pub email: Email,
    /// 8–128 characters.
    pub password: Password,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user_name or the email.
    #[schema(example = "alice")]
    pub login: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Creates an account. The first account ever registered is the admin.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 409, description = "`user_name_taken` or `email_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a field is invalid", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/register")]
pub async fn register(
    _: RateLimitedIp,
    auth: web::Data<AuthService>,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let RegisterRequest {
        user_name,
        email,
        password,
    } = body.0;
    let user = auth.register(&user_name, &email, password).await?;
    tracing::info!(user = %user.id, role = ?user.role, "registered");
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Exchanges a login and password for an access token and a refresh token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown login or wrong password (indistinguishable)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a field is missing or not a string", body = ErrorBody),
        (status = 429, description = "`login_throttled` after repeated failures, or `rate_limited`", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    ip: RateLimitedIp,
    auth: web::Data<AuthService>,
    body: JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let tokens = auth.login(&body.login, body.password, ip.0).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Spends a refresh token for a new pair. Presenting a spent token revokes the whole login.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is spent", body = TokenPair),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 401, description = "`invalid_token`: unknown, expired, revoked or reused", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `refresh_token` is missing or not a string", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    _: RateLimitedIp,
    auth: web::Data<AuthService>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = auth.refresh(&body.0.refresh_token).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Revokes the refresh token and every token of its login. Access tokens
/// already issued stay valid until they expire (at most their lifetime).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Logged out (also for an unknown token)"),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `refresh_token` is missing or not a string", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    _: RateLimitedIp,
    auth: web::Data<AuthService>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.logout(&body.0.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}
