//! Liveness and readiness probes.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::db::health::{Readiness, ReadyState};
use crate::error::ErrorCode;
use vigil_wire::ErrorBody;

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up. Never touches the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process runs", body = Status)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers and the migrations are applied.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "Database down or migrations pending", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(readiness: web::Data<Readiness>) -> Result<HttpResponse, ApiError> {
    match readiness.current() {
        ReadyState::Ready => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        ReadyState::Starting => Err(ApiError::new(
            ErrorCode::NotReady,
            "starting: the first database check has not finished",
        )),
        ReadyState::DatabaseDown(reason) => Err(ApiError::new(
            ErrorCode::NotReady,
            format!("database unreachable: {reason}"),
        )),
        ReadyState::MigrationFailed(reason) => Err(ApiError::new(
            ErrorCode::NotReady,
            format!("migrations not applied: {reason}"),
        )),
    }
}
