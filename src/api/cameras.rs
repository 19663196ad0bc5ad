//! Runtime camera management (admins) and `/metrics`.
//!
//! Cameras added here run until removed or until the process stops; the
//! ones that must survive a restart belong in `--camera` / `VIGIL_CAMERAS`.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::principal::Principal;
use crate::capture::metrics::{render, ProcessFigures};
use crate::capture::{CameraSpec, CameraStatus, CamerasError};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

impl From<CamerasError> for ApiError {
    fn from(err: CamerasError) -> Self {
        let code = match err {
            CamerasError::Exists(_) => ErrorCode::CameraExists,
            CamerasError::NotFound(_) => ErrorCode::NotFound,
            CamerasError::ShuttingDown => ErrorCode::NotReady,
        };
        ApiError::new(code, err.to_string())
    }
}

/// A camera to start; the same fields as `--camera`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    /// 1-64 characters of A-Z a-z 0-9 _ - .
    #[schema(example = "front-door")]
    pub id: String,
    /// `v4l2:INDEX`, `ffmpeg:URL_OR_FILE` or `dir:PATH`.
    #[schema(example = "ffmpeg:rtsp://10.0.0.5/stream")]
    pub source: String,
    /// Frames per second searched for faces (default 5, at most 60).
    #[schema(example = 5.0)]
    pub fps: Option<f64>,
    /// While faces stay in view, at most one alarm per this many seconds (default 10).
    #[schema(example = 10.0)]
    pub cooldown_secs: Option<f64>,
    /// Replay a local file forever (ffmpeg files only).
    #[serde(rename = "loop")]
    pub r#loop: Option<bool>,
}

/// Lists cameras with their status and counters (admins only).
#[utoipa::path(
    tag = "cameras",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every camera, by id", body = [CameraStatus]),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
    )
)]
#[get("/api/v1/cameras")]
pub async fn list(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    Ok(HttpResponse::Ok().json(state.cameras.list()))
}

/// Starts watching a camera or feed (admins only). The answer comes at once;
/// a source that cannot be opened shows up in the camera's `status` and
/// `last_error`.
#[utoipa::path(
    tag = "cameras",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewCamera,
    responses(
        (status = 201, description = "Started", body = CameraStatus),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 409, description = "`camera_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`validation_failed`: bad id, source, fps or cooldown", body = ErrorBody),
    )
)]
#[post("/api/v1/cameras")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewCamera>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let spec = CameraSpec::from_parts(&body.id, &body.source, body.fps, body.cooldown_secs, body.r#loop)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
    let status = state.cameras.add(spec)?;
    tracing::info!(camera = %status.id, by = %principal.user_id, "camera added through the API");
    Ok(HttpResponse::Created().json(status))
}

/// Stops a camera and forgets it (admins only); its ffmpeg process is gone
/// when this answers.
#[utoipa::path(
    tag = "cameras",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Camera id")),
    responses(
        (status = 204, description = "Stopped and removed"),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/cameras/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    state.cameras.remove(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Prometheus metrics: per-camera counters and states, detector slots,
/// process memory, threads and file descriptors. Unauthenticated, like most
/// scrape targets: keep it on the internal network.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let figures = ProcessFigures {
        detector_slots: state.detector.max_concurrent(),
        detector_slots_free: state.detector.available_slots(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render(&state.cameras.list(), &figures))
}
