//! The caller's profile and admin quota management.

use actix_web::{get, patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::principal::Principal;
use crate::auth::AuthError;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use crate::users::{UserId, UserView};

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
pub async fn me(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let user = state
        .auth
        .users
        .find(principal.user_id)
        .await?
        .ok_or_else(|| ApiError::from(AuthError::InvalidToken("the account no longer exists")))?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    #[schema(example = 1000)]
    pub api_request_quota: u32,
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
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<QuotaUpdate>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let id = UserId::parse(&id).ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    let user = state.auth.users.set_quota(id, body.api_request_quota).await?;
    tracing::info!(user = %id, quota = body.api_request_quota, "quota set");
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
