//! People: subjects and their enrolled faces.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{EnrolBody, JsonBody, PathId};
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::media::signed::UrlSigner;
use crate::people::{
    NewSubject, People, SubjectFaceId, SubjectFaceView, SubjectId, SubjectPatch, SubjectView,
};
use crate::vision::ImageLimits;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

/// Creates a subject: a person you want recognised. Enrol faces next.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewSubject,
    responses(
        (status = 201, description = "Created", body = SubjectView),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 409, description = "`subject_name_taken` (names are compared without case) or `limit_reached`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: name 1–64 characters, note at most 500", body = ErrorBody),
    )
)]
#[post("/api/v1/subjects")]
pub async fn create(
    principal: Principal,
    people: web::Data<People>,
    signer: web::Data<UrlSigner>,
    body: JsonBody<NewSubject>,
) -> Result<HttpResponse, ApiError> {
    let subject = people.create(principal.user_id, body.0).await?;
    Ok(HttpResponse::Created().json(subject.view(&signer)))
}

/// Your subjects, newest first.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<SubjectView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/subjects")]
pub async fn list(
    principal: Principal,
    people: web::Data<People>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = people.list(principal.user_id, &query.page()?).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|s| s.view(&signer)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One of your subjects.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The subject", body = SubjectView),
        (status = 404, description = "`not_found` (also for other users' subjects)", body = ErrorBody),
    )
)]
#[get("/api/v1/subjects/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
    signer: web::Data<UrlSigner>,
) -> Result<HttpResponse, ApiError> {
    let subject = people.get(principal.user_id, id.0).await?;
    Ok(HttpResponse::Ok().json(subject.view(&signer)))
}

/// Renames a subject or changes its note; faces recognised from now on carry the new name.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    request_body = SubjectPatch,
    responses(
        (status = 200, description = "Changed", body = SubjectView),
        (status = 400, description = "`invalid_json`: not a JSON object", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`subject_name_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
#[patch("/api/v1/subjects/{id}")]
pub async fn update(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
    signer: web::Data<UrlSigner>,
    body: JsonBody<SubjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let subject = people.update(principal.user_id, id.0, body.0).await?;
    Ok(HttpResponse::Ok().json(subject.view(&signer)))
}

/// Deletes a subject with every enrolled face, embedding and crop, on every instance.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: nothing was deleted", body = ErrorBody),
    )
)]
#[delete("/api/v1/subjects/{id}")]
pub async fn remove(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
) -> Result<HttpResponse, ApiError> {
    people.delete(principal.user_id, id.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Enrols a face: the largest face of an image, or a face of one of your detections.
///
/// Send an image exactly as for `POST /api/v1/detections` (multipart field
/// `image`, or a raw `image/*` body; same size limits and format sniffing),
/// or `application/json` `{"detection_id", "face_index"}`. The face counts
/// at once, on every instance: there is no training step. Enrolment costs
/// no quota; it is rate-limited like every authenticated call.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    request_body(
        description = "An image (multipart field `image`, or raw), or a face of a detection",
        content(
            (super::extract::EnrolDetectionFace = "application/json"),
            ("multipart/form-data"),
            ("image/jpeg"),
            ("image/png"),
            ("image/webp"),
            ("image/bmp"),
            ("image/gif"),
        )
    ),
    responses(
        (status = 201, description = "Enrolled", body = SubjectFaceView),
        (status = 400, description = "`invalid_json`; `bad_request`: a malformed multipart body, or one without an `image` field", body = ErrorBody),
        (status = 404, description = "`not_found`: no such subject, or no such detection of yours", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the subject has as many faces as it may", body = ErrorBody),
        (status = 413, description = "`payload_too_large` or `image_too_large`", body = ErrorBody),
        (status = 503, description = "`busy`: the images being decoded at once fill `--decode-budget-mpx` (with `Retry-After`)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`no_face`, `face_too_small`, `no_embedding` (the face cannot be aligned: profile, cut off), `invalid_image`, `validation_failed` (face_index out of range)", body = ErrorBody),
    )
)]
#[post("/api/v1/subjects/{id}/faces")]
pub async fn enrol(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
    limits: web::Data<ImageLimits>,
    signer: web::Data<UrlSigner>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The subject is checked first: nobody uploads to a subject they cannot see.
    let subject = people.get(principal.user_id, id.0).await?;
    let from = EnrolBody::read(&req, payload, limits.max_bytes).await?;
    let face = people.enrol(&subject, from).await?;
    Ok(HttpResponse::Created().json(face.view(&signer)))
}

/// A subject's enrolled faces, oldest first (at most 100: one page).
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "Every face of the subject", body = PageOf<SubjectFaceView>),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/subjects/{id}/faces")]
pub async fn faces(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
    signer: web::Data<UrlSigner>,
) -> Result<HttpResponse, ApiError> {
    let faces = people.faces(principal.user_id, id.0).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: faces.iter().map(|f| f.view(&signer)).collect(),
        next_cursor: None,
    }))
}

/// Removes one enrolled face, its embedding and its crop.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("id" = String, Path, description = "Subject id"),
        ("face_id" = String, Path, description = "Enrolled face id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/subjects/{id}/faces/{face_id}")]
pub async fn remove_face(
    principal: Principal,
    id: PathId<SubjectId>,
    face: PathId<SubjectFaceId>,
    people: web::Data<People>,
) -> Result<HttpResponse, ApiError> {
    people.delete_face(principal.user_id, id.0, face.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Everything stored about a subject, as a zip: `subject.json` (the subject,
/// each enrolled face with its embedding, every detection and alarm naming
/// them, how many detected faces' embeddings are kept as theirs) and
/// `faces/ID.jpg`, each enrolled face's crop. What a person may ask to see
/// (GDPR art. 15); each export is written to the audit log.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The zip", content_type = "application/zip"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/subjects/{id}/export")]
pub async fn export(
    principal: Principal,
    id: PathId<SubjectId>,
    people: web::Data<People>,
) -> Result<HttpResponse, ApiError> {
    let zip = people.export(principal.user_id, id.0).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"subject-{}.zip\"", id.0),
        ))
        .body(zip))
}
