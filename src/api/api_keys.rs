//! API keys of the caller.

use actix_web::{delete, get, post, web, HttpResponse};
use mongodb::bson::oid::ObjectId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::api_keys::{ApiKeyView, CreatedApiKey, KeyName};
use crate::auth::principal::Principal;
use crate::auth::AuthError;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// 1–64 characters saying what the key is for.
    #[schema(example = "camera-uploader")]
    pub name: String,
}

/// Creates an API key. The key is in this answer only.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; store `key` now", body = CreatedApiKey),
        (status = 422, description = "`validation_failed`: bad name or too many keys", body = ErrorBody),
    )
)]
#[post("/api/v1/api-keys")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let name = KeyName::parse(&body.name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "name must be 1-64 printable characters",
        )
    })?;
    let created = state
        .auth
        .api_keys
        .create(principal.user_id, name)
        .await
        .map_err(AuthError::from)?;
    tracing::info!(key = %created.view.id, "API key created");
    Ok(HttpResponse::Created().json(created))
}

/// Lists the caller's API keys, without key material.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Newest first", body = [ApiKeyView]))
)]
#[get("/api/v1/api-keys")]
pub async fn list(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let keys = state
        .auth
        .api_keys
        .list(principal.user_id)
        .await
        .map_err(AuthError::from)?;
    Ok(HttpResponse::Ok().json(keys))
}

/// Revokes one of the caller's API keys.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`not_found`: no such key of the caller's", body = ErrorBody),
    )
)]
#[delete("/api/v1/api-keys/{id}")]
pub async fn revoke(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such API key");
    let id = ObjectId::parse_str(id.as_str()).map_err(|_| not_found())?;
    if state
        .auth
        .api_keys
        .revoke(principal.user_id, id)
        .await
        .map_err(AuthError::from)?
    {
        tracing::info!(key = %id, "API key revoked");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
