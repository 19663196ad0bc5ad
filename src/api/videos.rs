//! Whole videos analysed on the server, as a job.

use actix_web::{post, web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{OptionalIdempotencyKey, VideoBody, VideoQuery};
use crate::auth::Principal;
use crate::jobs::{JobService, JobView};
use vigil_wire::ErrorBody;

/// Accepts a video; a job samples its frames (the first of every 1/fps
/// seconds, scaled to at most 1920 pixels), detects and records each as a
/// detection with source `label@m:ss.s`, and raises alarms by a camera's
/// policy over the video's time (faces appear, more faces, still there
/// after 10 s).
///
/// Send `multipart/form-data` (field `video`, optional fields `fps` and
/// `source`) or the raw file as `video/*` or `application/octet-stream`
/// with `?fps=&source=`. The file is streamed to storage, checked with
/// ffprobe, and only then accepted. Quota: one unit per analysed frame,
/// checked before each; a job whose quota runs out ends `failed` with
/// `quota_exhausted`, its frames so far stored. Follow it at
/// `GET /api/v1/jobs/{id}` or on the WebSocket's `jobs` topic;
/// `Idempotency-Key` as for image uploads.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = []), ("api_key" = [])),
    params(
        VideoQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first one's job"),
    ),
    request_body(
        description = "The video: multipart field `video`, or the raw file",
        content(("multipart/form-data"), ("video/mp4"), ("application/octet-stream"))
    ),
    responses(
        (status = 202, description = "Accepted; the job analyses it", body = JobView,
            headers(("Location" = String, description = "The job: /api/v1/jobs/{id}"))),
        (status = 400, description = "`bad_request`: a malformed multipart body, one without `video`, an empty video; `invalid_query`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: more than `--max-video-bytes`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_video`: not a video ffmpeg reads; `validation_failed`: bad `fps` or `source`", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` (none left to analyse a frame) or `rate_limited`", body = ErrorBody),
        (status = 503, description = "`queue_full` (with `Retry-After`) or `database_unavailable`", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below `--min-free-disk-mb`; nothing was stored or charged", body = ErrorBody),
    )
)]
#[post("/api/v1/videos")]
pub async fn create(
    principal: Principal,
    key: OptionalIdempotencyKey,
    jobs: web::Data<JobService>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = VideoBody::read(&req, payload, &jobs).await?;
    let job = jobs
        .submit_video(principal.user_id, upload, key.claim(principal.user_id))
        .await?;
    Ok(super::jobs::accepted(&job))
}
