//! Search by face: the detections where a person appears.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::ImageOrJson;
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::media::signed::UrlSigner;
use crate::search::{FaceSearch, Probe, SearchQuery, Searcher};
use crate::vision::ImageLimits;
use vigil_wire::search::{FaceMatchView, FaceSearchProbe, FaceSearchResults, SearchOrder};
use vigil_wire::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// `best` (nearest first, the default) or `newest`.
    #[param(inline)]
    pub order: Option<SearchOrder>,
    /// Only faces seen at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only faces seen at or before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (same order).
    pub cursor: Option<String>,
    /// Largest distance returned, above 0 and at most 4 (default: the
    /// recognition threshold, `--recognition-threshold`).
    #[param(exclusive_minimum = 0, maximum = 4)]
    pub max_distance: Option<f32>,
}

impl SearchParams {
    fn query(&self) -> Result<SearchQuery, ApiError> {
        let window = ListQuery {
            from: self.from.clone(),
            to: self.to.clone(),
            limit: self.limit,
            cursor: None,
        }
        .page()?;
        Ok(SearchQuery::parse(
            window,
            self.order,
            self.cursor.as_deref(),
            self.max_distance,
        )?)
    }
}

/// Finds the stored faces nearest to a face: the detections where that
/// person appears.
///
/// The probe is an image (multipart field `image`, or a raw `image/*` body,
/// as for `POST /api/v1/detections`: its largest face), or
/// `application/json`: `{"detection_id", "face_index"}` (a face of a
/// detection you may see) or `{"subject_id"}` (one of your subjects: its
/// enrolled faces, distances averaged). Users search their own detections;
/// admins every detection, cameras' included. Every stored face of the
/// time range is compared with the probe (an exact scan, no index to
/// miss a match). Unknown faces' embeddings are kept for
/// `--unknown-face-retention-days` only, so older strangers are not found.
/// Each search is written to the audit log (`GET /api/v1/audit-log`).
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(SearchParams),
    request_body(
        description = "An image (multipart field `image`, or raw), or a face or subject to look for",
        content(
            (FaceSearchProbe = "application/json"),
            ("multipart/form-data"),
            ("image/jpeg"),
            ("image/png"),
            ("image/webp"),
            ("image/bmp"),
            ("image/gif"),
        )
    ),
    responses(
        (status = 200, description = "One page of matches", body = FaceSearchResults),
        (status = 400, description = "`invalid_query` (a bad time, limit, cursor or max_distance); `invalid_json`; `bad_request`: a malformed multipart body, or one without an `image` field", body = ErrorBody),
        (status = 404, description = "`not_found`: no such detection or subject of yours", body = ErrorBody),
        (status = 413, description = "`payload_too_large` or `image_too_large`", body = ErrorBody),
        (status = 503, description = "`busy`: the images being decoded at once fill `--decode-budget-mpx` (with `Retry-After`)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`no_face`, `face_too_small`, `no_embedding` (the face has no stored embedding, or the subject no face), `invalid_image`, `validation_failed`", body = ErrorBody),
    )
)]
#[post("/api/v1/faces/search")]
pub async fn search(
    principal: Principal,
    search: web::Data<FaceSearch>,
    limits: web::Data<ImageLimits>,
    signer: web::Data<UrlSigner>,
    params: web::Query<SearchParams>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = params.query()?;
    let probe = match ImageOrJson::<FaceSearchProbe>::read(&req, payload, limits.max_bytes).await? {
        ImageOrJson::Image(bytes) => Probe::Image(bytes),
        ImageOrJson::Json(probe) => Probe::from_wire(probe)?,
    };
    let searcher = Searcher {
        user: principal.user_id,
        admin: principal.is_admin(),
    };
    let page = search.search(searcher, probe, query).await?;
    Ok(HttpResponse::Ok().json(FaceSearchResults {
        items: page
            .matches
            .iter()
            .map(|m| FaceMatchView {
                detection: m.detection.view(&signer),
                face_index: m.face_index,
                distance: m.distance,
            })
            .collect(),
        next_cursor: page.next_cursor,
        scanned: page.scanned,
    }))
}
