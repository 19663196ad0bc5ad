//! The caller's profile and admin quota management.

use actix_web::{get, patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Admin, PathId};
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
    pub api_request_quota: Quota,
}

/// Sets a user's API request quota (admins only).
#[utoipa::path(
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = QuotaUpdate,
    responses(
        (status = 200, description = "Updated user", body = UserView),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[patch("/api/v1/users/{id}/quota")]
pub async fn set_quota(
    _: Admin,
    id: PathId<UserId>,
    auth: web::Data<AuthService>,
    body: web::Json<QuotaUpdate>,
) -> Result<HttpResponse, ApiError> {
    let quota = body.api_request_quota;
    let user = auth.users.set_quota(id.0, quota).await?;
    tracing::info!(user = %id.0, %quota, "quota set");
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
