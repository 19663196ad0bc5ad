//! Liveness and readiness probes.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::db::health::{Readiness, ReadyState};
use crate::disk::Storage;
use crate::error::ErrorCode;
use vigil_wire::ErrorBody;

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why the server is ready with a restriction (`storage_paused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up. Never touches the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process runs", body = Status)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        reason: None,
    })
}

/// The database answers and the migrations are applied.
///
/// While the disk guard has paused storing, the answer is still 200 (reads,
/// deletions and camera alarms go on, and taking a lone instance out of its
/// load balancer would stop the very requests that free space) with
/// `"status": "storage_paused"` and the reason.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve (`ready`), or ready but storing nothing new (`storage_paused`, with `reason`)", body = Status),
        (status = 503, description = "Database down or migrations pending", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(
    readiness: web::Data<Readiness>,
    storage: web::Data<Storage>,
) -> Result<HttpResponse, ApiError> {
    match readiness.current() {
        ReadyState::Ready => Ok(HttpResponse::Ok().json(match storage.pause_reason() {
            None => Status {
                status: "ready",
                reason: None,
            },
            Some(reason) => Status {
                status: "storage_paused",
                reason: Some(reason),
            },
        })),
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
