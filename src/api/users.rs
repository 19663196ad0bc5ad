//! The caller's profile and admin quota management.

use actix_web::{get, patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Admin, JsonBody, PathId};
use crate::auth::{AuthError, AuthService, Principal};
use crate::users::{Quota, UserId, UserView};
use vigil_wire::ErrorBody;

/// The caller's account, with quota and usage.
#[utoipa::path(
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
#[get("/api/v1/users/me")]
pub async fn me(principal: Principal, auth: web::Data<AuthService>) -> Result<HttpResponse, ApiError> {
    let user = auth
        .users
        .find(principal.user_id)
        .await?
        .ok_or(AuthError::InvalidToken("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    #[serde(deserialize_with = "whole_number")]
    pub api_request_quota: Quota,
}

/// A quota as JSON Schema's `integer` means it: `100.0` is the integer 100.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Quota, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => u32::try_from(n).ok(),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => Some(f as u32),
        _ => None,
    };
    whole.map(Quota).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "api_request_quota must be a whole number from 0 to {}",
            u32::MAX
        ))
    })
}

/// Sets a user's API request quota (admins only).
#[utoipa::path(
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = QuotaUpdate,
    responses(
        (status = 200, description = "Updated user", body = UserView),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin; `scope_forbidden`: an API key restricted to telemetry", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `api_request_quota` is missing or not an integer in 0–4294967295", body = ErrorBody),
    )
)]
#[patch("/api/v1/users/{id}/quota")]
pub async fn set_quota(
    _: Admin,
    id: PathId<UserId>,
    auth: web::Data<AuthService>,
    body: JsonBody<QuotaUpdate>,
) -> Result<HttpResponse, ApiError> {
    let quota = body.0.api_request_quota;
    let user = auth.users.set_quota(id.0, quota).await?;
    tracing::info!(user = %id.0, %quota, "quota set");
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
