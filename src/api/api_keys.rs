//! API keys of the caller.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{JsonBody, PathId};
use crate::auth::api_keys::{ApiKeyId, ApiKeyView, CreatedApiKey, KeyName, KeyScope};
use crate::auth::{AuthError, AuthService, Principal};
use vigil_wire::{text, ErrorBody};

fn key_name_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    text::string(
        "What the key is for: 1–64 characters once surrounding white space is trimmed, \
         no control characters.",
        Some(text::NAME_64),
        None,
        "camera-uploader",
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(schema_with = key_name_schema)]
    pub name: KeyName,
    /// `full` (default), `telemetry` or `alarms:write`: a telemetry key may
    /// only send `POST /telemetry/…`, an `alarms:write` key (an edge agent's)
    /// only `POST /api/v1/alarms`; either gets 403 `scope_forbidden`
    /// anywhere else.
    #[serde(default)]
    pub scope: KeyScope,
}

/// Creates an API key. The key is in this answer only.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; store `key` now", body = CreatedApiKey),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the caller has as many keys as they may; revoke one first", body = ErrorBody),
        (status = 422, description = "`validation_failed`: bad name or scope", body = ErrorBody),
    )
)]
#[post("/api/v1/api-keys")]
pub async fn create(
    principal: Principal,
    auth: web::Data<AuthService>,
    body: JsonBody<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let created = auth
        .api_keys
        .create(principal.user_id, body.name, body.scope)
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
pub async fn list(principal: Principal, auth: web::Data<AuthService>) -> Result<HttpResponse, ApiError> {
    let keys = auth.api_keys.list(principal.user_id).await?;
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
    principal: Principal,
    id: PathId<ApiKeyId>,
    auth: web::Data<AuthService>,
) -> Result<HttpResponse, ApiError> {
    if auth.api_keys.revoke(principal.user_id, id.0).await? {
        tracing::info!(key = %id.0, "API key revoked");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(PathId::<ApiKeyId>::not_found())
    }
}
