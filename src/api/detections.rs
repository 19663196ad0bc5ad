//! Uploading images for detection and reading the results back.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::listing::{parse_object_id, ListQuery, PageOf};
use super::upload_body::read_upload;
use crate::auth::principal::Principal;
use crate::detections::{parse_source, DetectionScope, DetectionView};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// Label stored with the result (1–64 characters, default `upload`);
    /// a multipart `source` field takes precedence.
    pub source: Option<String>,
}

/// Detects faces in an image, stores the result and raises an alarm when faces are found.
///
/// Send the image as `multipart/form-data` (field `image`, optional field
/// `source`) or as the raw body with an `image/*` content type. The format
/// is recognised from the content, not from the header. Consumes one unit of
/// quota once the image is accepted; an image refused with 413/415/422 costs
/// nothing, and a server-side failure gives the unit back.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(UploadQuery),
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
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (bytes) or `image_too_large` (pixels)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_image`: not a decodable JPEG/PNG/WebP/BMP/GIF", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` or `rate_limited`", body = ErrorBody),
    )
)]
#[post("/api/v1/detections")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = read_upload(&req, payload, state.config.uploads.max_upload_bytes).await?;
    let source = parse_source(upload.source.as_deref().or(query.source.as_deref())).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "`source` must be 1-64 printable characters",
        )
    })?;
    let recorded = state
        .uploads
        .detect(principal.user_id, upload.bytes, source)
        .await?;
    tracing::info!(detection = %recorded.detection.id, faces = recorded.detection.face_count, "detection stored");
    Ok(HttpResponse::Created().json(DetectionView::new(&recorded.detection, &state.signer)))
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
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .recorder
        .detections
        .list(DetectionScope(principal.user_id), &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page
            .items
            .iter()
            .map(|d| DetectionView::new(d, &state.signer))
            .collect(),
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
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_object_id(&id, "detection")?;
    let record = state
        .recorder
        .detections
        .get(DetectionScope(principal.user_id), id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no detection with this id"))?;
    Ok(HttpResponse::Ok().json(DetectionView::new(&record, &state.signer)))
}

/// Deletes one of the caller's detections, its alarm and its images.
#[utoipa::path(
    tag = "detections",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Detection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/detections/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_object_id(&id, "detection")?;
    let record = state
        .recorder
        .detections
        .take(DetectionScope(principal.user_id), id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no detection with this id"))?;
    state.recorder.forget(&record).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::NoContent().finish())
}
