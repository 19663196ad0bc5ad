//! Uploading images for detection and reading the results back.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{OptionalIdempotencyKey, PathId, UploadBody, UploadMode};
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::detections::{DetectionId, DetectionScope, DetectionView, Recorder, UploadService};
use crate::jobs::{JobService, JobView};
use crate::media::signed::UrlSigner;
use crate::vision::ImageLimits;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

/// Detects faces in an image, stores the result and raises an alarm when faces are found.
///
/// Send the image as `multipart/form-data` (field `image`, optional field
/// `source`) or as the raw body with an `image/*` content type. The format
/// is recognised from the content, not from the header. One unit of quota
/// is taken with the stored detection; an image refused with 413/415/422,
/// or a request that fails, costs nothing.
///
/// With `?mode=async` the image is checked and stored, its unit taken, and
/// the answer is **202** with a job (`Location: /api/v1/jobs/{id}`) that
/// records exactly the detection and alarm a synchronous upload would (a
/// job that fails for good gives the unit back).
///
/// `Idempotency-Key` (1–255 visible ASCII characters): the same key from
/// the same account within 24 hours answers with what the first request
/// made (its detection, or its job) instead of making another, at no cost.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(
        super::extract::UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first one's result"),
    ),
    request_body(
        description = "The image: multipart field `image`, or a raw JPEG/PNG/WebP/BMP/GIF body",
        content(
            ("multipart/form-data"),
            ("image/jpeg"),
            ("image/png"),
            ("image/webp"),
            ("image/bmp"),
            ("image/gif"),
        )
    ),
    responses(
        (status = 201, description = "Detected and stored", body = DetectionView),
        (status = 202, description = "`mode=async`: accepted; the job detects it", body = JobView,
            headers(("Location" = String, description = "The job: /api/v1/jobs/{id}"))),
        (status = 400, description = "`bad_request`: a malformed multipart body, or one without an `image` field; `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (bytes) or `image_too_large` (pixels)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_image`: not a decodable JPEG/PNG/WebP/BMP/GIF; `validation_failed`: bad `source`", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` or `rate_limited`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`; `queue_full` (`mode=async`, with `Retry-After`); `busy`: the images being decoded at once fill `--decode-budget-mpx` (with `Retry-After`)", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below `--min-free-disk-mb`; nothing was stored or charged", body = ErrorBody),
    )
)]
#[post("/api/v1/detections")]
#[allow(clippy::too_many_arguments)]
pub async fn create(
    principal: Principal,
    key: OptionalIdempotencyKey,
    uploads: web::Data<UploadService>,
    jobs: web::Data<JobService>,
    limits: web::Data<ImageLimits>,
    signer: web::Data<UrlSigner>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = UploadBody::read(&req, payload, limits.max_bytes).await?;
    let claim = key.claim(principal.user_id);
    match upload.mode {
        UploadMode::Sync => {
            let detection = uploads
                .detect(principal.user_id, upload.bytes, upload.source, claim)
                .await?;
            tracing::info!(detection = %detection.id, faces = detection.face_count, "detection stored");
            Ok(HttpResponse::Created().json(detection.view(&signer)))
        }
        UploadMode::Async => {
            let job = jobs
                .submit_detect(principal.user_id, upload.bytes, upload.source, claim)
                .await?;
            Ok(super::jobs::accepted(&job))
        }
    }
}

/// The caller's detections, newest first.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<DetectionView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/detections")]
pub async fn list(
    principal: Principal,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = recorder
        .detections
        .list(DetectionScope(principal.user_id), &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|d| d.view(&signer)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's detections.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Detection id")),
    responses(
        (status = 200, description = "The detection", body = DetectionView),
        (status = 404, description = "`not_found` (also for other users' detections)", body = ErrorBody),
    )
)]
#[get("/api/v1/detections/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<DetectionId>,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
) -> Result<HttpResponse, ApiError> {
    let record = recorder
        .detections
        .get(DetectionScope(principal.user_id), id.0)
        .await?
        .ok_or_else(PathId::<DetectionId>::not_found)?;
    Ok(HttpResponse::Ok().json(record.view(&signer)))
}

/// Deletes one of the caller's detections, its alarm and its images.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Detection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: nothing was deleted", body = ErrorBody),
    )
)]
#[delete("/api/v1/detections/{id}")]
pub async fn remove(
    principal: Principal,
    id: PathId<DetectionId>,
    recorder: web::Data<Recorder>,
) -> Result<HttpResponse, ApiError> {
    if recorder.delete(DetectionScope(principal.user_id), id.0).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(PathId::<DetectionId>::not_found())
    }
}
