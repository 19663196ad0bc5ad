//! Bodies that carry either an image (as for uploads) or a JSON reference
//! to a face vigil already knows: enrolment and search by face.

use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::ToSchema;

use super::upload::{collect, UploadBody};
use crate::api::error::ApiError;
use crate::api::JSON_LIMIT;
use crate::detections::DetectionId;
use crate::error::ErrorCode;
use crate::people::{EnrolFrom, PeopleError};

/// An image's bytes, or the JSON body `T`.
pub enum ImageOrJson<T> {
    Image(Vec<u8>),
    Json(T),
}

impl<T: DeserializeOwned> ImageOrJson<T> {
    /// `application/json` is `T` (malformed: 400 `invalid_json`; the wrong
    /// shape: 422 `validation_failed`); any other body is an image, read
    /// as an upload's (multipart or raw, at most `max_image` bytes).
    pub async fn read(req: &HttpRequest, payload: web::Payload, max_image: usize) -> Result<Self, ApiError> {
        if super::essence(req) != "application/json" {
            return Ok(Self::Image(
                UploadBody::read(req, payload, max_image).await?.bytes,
            ));
        }
        let bytes = collect(payload, JSON_LIMIT, || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("JSON body larger than {JSON_LIMIT} bytes"),
            )
        })
        .await?;
        serde_json::from_slice(&bytes).map(Self::Json).map_err(|e| {
            let code = if e.is_data() {
                ErrorCode::ValidationFailed
            } else {
                ErrorCode::InvalidJson
            };
            ApiError::new(code, format!("invalid request body: {e}"))
        })
    }
}

/// A face of one of your detections.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolDetectionFace {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub detection_id: String,
    /// Position in the detection's `faces`, from 0.
    #[schema(example = 0)]
    pub face_index: u32,
}

/// The body of `POST /api/v1/subjects/{id}/faces`.
pub struct EnrolBody;

impl EnrolBody {
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        max_image: usize,
    ) -> Result<EnrolFrom, ApiError> {
        let body: EnrolDetectionFace = match ImageOrJson::read(req, payload, max_image).await? {
            ImageOrJson::Image(bytes) => return Ok(EnrolFrom::Image(bytes)),
            ImageOrJson::Json(body) => body,
        };
        // A malformed id names no detection, like an unknown one.
        let detection_id: DetectionId = body
            .detection_id
            .parse()
            .map_err(|_| ApiError::from(PeopleError::DetectionNotFound))?;
        Ok(EnrolFrom::Detection {
            detection_id,
            face_index: body.face_index,
        })
    }
}
