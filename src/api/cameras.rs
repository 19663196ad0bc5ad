//! Runtime camera management (admins).
//!
//! Cameras added here run until removed or until the process stops; the
//! ones that must survive a restart belong in `--camera` / `VIGIL_CAMERAS`.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Admin, JsonBody, PathId};
use crate::capture::{CameraId, CameraSpec, CameraStatus, Cameras};
use vigil_wire::ErrorBody;

/// A camera to start; the same fields as `--camera`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    /// 1-64 characters of A-Z a-z 0-9 _ - .
    #[schema(example = "front-door", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    /// `v4l2:INDEX`, `ffmpeg:URL_OR_FILE` or `dir:PATH`.
    // INDEX is a u32 (the pattern admits nine digits past leading zeros);
    // the others need something besides white space after the colon.
    #[schema(
        example = "ffmpeg:rtsp://10.0.0.5/stream",
        pattern = r"^(?:v4l2:[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?0*[0-9]{1,9}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?:ffmpeg|dir):[\s\S]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]*)$"
    )]
    pub source: String,
    /// Frames per second searched for faces: from 0.001 (one frame every
    /// 1000 s) to 60 (default 5).
    #[schema(example = 5.0, minimum = 0.001, maximum = 60.0)]
    pub fps: Option<f64>,
    /// While faces stay in view, at most one alarm per this many seconds:
    /// from 0 to 86400 (default 10).
    #[schema(example = 10.0, minimum = 0.0, maximum = 86400.0)]
    pub cooldown_secs: Option<f64>,
    /// Replay a local file forever (ffmpeg files only).
    #[serde(rename = "loop")]
    pub r#loop: Option<bool>,
}

impl TryFrom<NewCamera> for CameraSpec {
    type Error = crate::capture::SpecError;

    fn try_from(body: NewCamera) -> Result<Self, Self::Error> {
        CameraSpec::from_parts(&body.id, &body.source, body.fps, body.cooldown_secs, body.r#loop)
    }
}

/// Lists this instance's cameras with their status and counters (admins
/// only). When several instances share the database, each camera runs on
/// one of them: `instance_id` names it, and the others show the camera on
/// `standby`.
#[utoipa::path(
    tag = "cameras",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every camera, by id", body = [CameraStatus]),
        (status = 403, description = "`forbidden`: not an admin; `scope_forbidden`: an API key restricted to telemetry", body = ErrorBody),
    )
)]
#[get("/api/v1/cameras")]
pub async fn list(_: Admin, cameras: web::Data<Cameras>) -> HttpResponse {
    HttpResponse::Ok().json(cameras.list())
}

/// Starts watching a camera or feed (admins only). The answer comes at once;
/// a source that cannot be opened shows up in the camera's `status` and
/// `last_error`. With camera leases the camera starts on `standby` and
/// captures once this instance holds its lease (at once, unless another
/// instance runs a camera of the same id).
#[utoipa::path(
    tag = "cameras",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewCamera,
    responses(
        (status = 201, description = "Started", body = CameraStatus),
        (status = 403, description = "`forbidden`: not an admin; `scope_forbidden`: an API key restricted to telemetry", body = ErrorBody),
        (status = 409, description = "`camera_exists`: the id is taken", body = ErrorBody),
        (status = 400, description = "`invalid_json`: not JSON, or a number JSON cannot hold (NaN, 1e999)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: bad id or source, fps or cooldown not a number in range", body = ErrorBody),
    )
)]
#[post("/api/v1/cameras")]
pub async fn create(
    Admin(admin): Admin,
    cameras: web::Data<Cameras>,
    body: JsonBody<NewCamera>,
) -> Result<HttpResponse, ApiError> {
    let spec = CameraSpec::try_from(body.0)?;
    let status = cameras.add(spec)?;
    tracing::info!(camera = %status.id, by = %admin.user_id, "camera added through the API");
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
        (status = 403, description = "`forbidden`: not an admin; `scope_forbidden`: an API key restricted to telemetry", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/cameras/{id}")]
pub async fn remove(
    _: Admin,
    id: PathId<CameraId>,
    cameras: web::Data<Cameras>,
) -> Result<HttpResponse, ApiError> {
    cameras.remove(&id.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
