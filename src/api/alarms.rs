//! Alarms: received from edge agents, and read. Users see their own;
//! admins see all, cameras included.

use actix_web::{get, post, web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{AlarmBody, AlarmSender, OptionalIdempotencyKey, PathId};
use super::listing::ListQuery;
use crate::agents::AlarmIngest;
use crate::alarms::{AlarmId, AlarmScope, AlarmView};
use crate::auth::api_keys::KeyScope;
use crate::auth::Principal;
use crate::detections::Recorder;
use crate::media::signed::UrlSigner;
use crate::vision::ImageLimits;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

/// Alarms, newest first.
#[utoipa::path(
    tag = "alarms",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<AlarmView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/alarms")]
pub async fn list(
    principal: Principal,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = recorder
        .alarms
        .list(AlarmScope::of(&principal), &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|a| a.view(&signer)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One alarm.
#[utoipa::path(
    tag = "alarms",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Alarm id")),
    responses(
        (status = 200, description = "The alarm", body = AlarmView),
        (status = 404, description = "`not_found` (also for alarms the caller may not see)", body = ErrorBody),
    )
)]
#[get("/api/v1/alarms/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<AlarmId>,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
) -> Result<HttpResponse, ApiError> {
    let alarm = recorder
        .alarms
        .get(AlarmScope::of(&principal), id.0)
        .await?
        .ok_or_else(PathId::<AlarmId>::not_found)?;
    Ok(HttpResponse::Ok().json(alarm.view(&signer)))
}

/// Receives an alarm raised elsewhere: an edge agent (`vigil watch
/// --forward`), another site, another product's detector.
///
/// `multipart/form-data` with `image` (the frame; the upload limits and
/// formats), `date` (RFC 3339, the moment of capture: at most
/// `--alarm-max-skew-secs` ahead of this server's clock, at most 7 days
/// old), `source` (1–64 characters: the agent's name and camera), and
/// optionally `message` (1–256 characters; default: vigil's own, e.g. "1
/// face detected on door-pi/cam1") and `faces` (a JSON array of the faces
/// the agent found, in image pixels, as detections show them; at most 100;
/// each inside the image). Without `faces` the server detects them itself
/// (`--agent-redetect`). The frame, a detection and the alarm are stored
/// and the alarm is pushed to WebSocket subscribers like any other. One
/// unit of quota per alarm. Takes API keys of scope `alarms:write`; such a
/// key is answered with only `id`, `detection_id`, `date`, `face_count`
/// and `source` (it reads nothing: no names, no image).
/// `Idempotency-Key`: an agent retrying after a lost answer gets the first
/// alarm back, and nothing is raised twice.
#[utoipa::path(
    tag = "alarms",
    security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request return the first one's alarm")),
    request_body(description = "The alarm: `image`, `date`, `source`, optional `message` and `faces` (JSON)", content(("multipart/form-data"))),
    responses(
        (status = 201, description = "Stored and pushed", body = AlarmView),
        (status = 400, description = "`bad_request`: a malformed multipart body, or one without `image`", body = ErrorBody),
        (status = 403, description = "`scope_forbidden`: a key restricted to something else", body = ErrorBody),
        (status = 413, description = "`payload_too_large` or `image_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not multipart", body = ErrorBody),
        (status = 422, description = "`validation_failed` (each bad field named: `date`, `source`, `message`, `faces[i].box`…); `invalid_image`", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` or `rate_limited`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`; `busy`: the images being decoded at once fill `--decode-budget-mpx` (with `Retry-After`)", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below `--min-free-disk-mb`; nothing was stored or charged", body = ErrorBody),
    )
)]
#[post("/api/v1/alarms")]
pub async fn create(
    sender: AlarmSender,
    key: OptionalIdempotencyKey,
    ingest: web::Data<AlarmIngest>,
    limits: web::Data<ImageLimits>,
    signer: web::Data<UrlSigner>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let user = sender.0.user_id;
    let incoming = AlarmBody::read(&req, payload, limits.max_bytes).await?;
    let received = ingest.receive(user, incoming, key.claim(user)).await?;
    let view = received.alarm.view(&signer);
    // A key that may only raise alarms reads nothing: not who was
    // recognised, not the image (a leaked agent key is no recognition oracle).
    if sender.0.scope() != KeyScope::Full {
        return Ok(HttpResponse::Created().json(serde_json::json!({
            "id": view.id,
            "detection_id": view.detection_id,
            "date": view.date,
            "face_count": view.face_count,
            "source": view.source,
        })));
    }
    Ok(HttpResponse::Created().json(view))
}
