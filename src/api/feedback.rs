//! Corrections on detected faces: "this is not X", "this is X", and undo.

use std::str::FromStr;

use actix_web::{delete, post, web, HttpResponse};

use super::error::ApiError;
use super::extract::{JsonBody, Named, PathId};
use crate::auth::Principal;
use crate::detections::DetectionId;
use crate::error::ErrorCode;
use crate::people::{Correction, People, PeopleError, SubjectFaceId, SubjectId};
use vigil_wire::people::{FeedbackRequest, FeedbackView};
use vigil_wire::ErrorBody;

/// `{index}`: which face of the detection, as its `faces` array orders them.
#[derive(Debug, Clone, Copy)]
pub struct FaceIndex(u32);

impl FromStr for FaceIndex {
    type Err = std::num::ParseIntError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        raw.parse().map(FaceIndex)
    }
}

impl Named for FaceIndex {
    const WHAT: &'static str = "face";
    const PARAM: &'static str = "index";
}

/// A correction's id (the face it stored).
#[derive(Debug, Clone, Copy)]
pub struct FeedbackId(SubjectFaceId);

impl FromStr for FeedbackId {
    type Err = <SubjectFaceId as FromStr>::Err;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        raw.parse().map(FeedbackId)
    }
}

impl Named for FeedbackId {
    const WHAT: &'static str = "correction";
}

/// The correction the body asks for. An id that is not a subject id names
/// no subject of the caller's: 404, as an unknown one.
impl TryFrom<FeedbackRequest> for Correction {
    type Error = ApiError;

    fn try_from(request: FeedbackRequest) -> Result<Self, ApiError> {
        let (raw, correction): (String, fn(SubjectId) -> Correction) = match request {
            FeedbackRequest::Not(raw) => (raw, Correction::Not),
            FeedbackRequest::Is(raw) => (raw, Correction::Is),
        };
        raw.parse()
            .map(correction)
            .map_err(|_| PathId::<SubjectId>::not_found())
    }
}

/// Corrects who a detected face is. `not` stores the face as "not this
/// subject": from now on, on every instance, a face nearer to it than to
/// the subject's own faces is not given the subject's name. `is` enrols the
/// face as the subject. The detection keeps the identity it was stored with.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("id" = String, Path, description = "Detection id"),
        ("index" = u32, Path, description = "The face's position in the detection's `faces`"),
    ),
    request_body = FeedbackRequest,
    responses(
        (status = 201, description = "Recorded; its id undoes it", body = FeedbackView),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such detection of yours, no such face in it, or no such subject of yours", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the subject has as many faces (or corrections) as it may", body = ErrorBody),
        (status = 422, description = "`validation_failed` (not exactly one of `not` and `is`), `face_too_small` or `no_embedding` (the face cannot be compared)", body = ErrorBody),
    )
)]
#[post("/api/v1/detections/{id}/faces/{index}/feedback")]
pub async fn give(
    principal: Principal,
    detection: PathId<DetectionId>,
    index: PathId<FaceIndex>,
    body: JsonBody<FeedbackRequest>,
    people: web::Data<People>,
) -> Result<HttpResponse, ApiError> {
    let correction = Correction::try_from(body.0)?;
    let face = people
        .correct(principal.user_id, detection.0, index.0 .0, correction)
        .await
        .map_err(|err| match err {
            PeopleError::NoSuchFace { .. } => ApiError::new(ErrorCode::NotFound, err.to_string()),
            other => other.into(),
        })?;
    let view = face
        .feedback_view()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "a correction without its detection"))?;
    Ok(HttpResponse::Created().json(view))
}

/// Undoes a correction: the face it stored is deleted, everywhere, and
/// answers are as they were before it.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The correction's id")),
    responses(
        (status = 204, description = "Undone"),
        (status = 404, description = "`not_found`: no such correction of yours", body = ErrorBody),
    )
)]
#[delete("/api/v1/feedback/{id}")]
pub async fn undo(
    principal: Principal,
    id: PathId<FeedbackId>,
    people: web::Data<People>,
) -> Result<HttpResponse, ApiError> {
    people.undo_correction(principal.user_id, id.0 .0).await?;
    Ok(HttpResponse::NoContent().finish())
}
