//! Reading telemetry bodies: JSON (within a size limit of the route's own)
//! or, for a photo, multipart. Read after the sender is authenticated.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::TryStreamExt;
use serde_json::Value;

use super::upload::collect;
use super::{declared_length, essence};
use crate::api::error::ApiError;
use crate::error::ErrorCode;
use crate::telemetry::{photo_from_json, photo_from_parts, ParseContext, PhotoUpload};

/// Largest text field of a multipart photo (`device_id`, `timestamp`).
const MAX_TEXT_FIELD: usize = 256;
/// What a multipart photo may carry beside the image.
const MULTIPART_SLACK: usize = 64 * 1024;

fn is_json(essence: &str) -> bool {
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {max} bytes"),
    )
}

/// A JSON body of at most `max` bytes, not yet checked field by field.
pub async fn json_body(req: &HttpRequest, payload: web::Payload, max: usize) -> Result<Value, ApiError> {
    let essence = essence(req);
    if !is_json(&essence) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected Content-Type: application/json, got {essence:?}"),
        ));
    }
    read_json(req, payload, max).await
}

async fn read_json(req: &HttpRequest, payload: web::Payload, max: usize) -> Result<Value, ApiError> {
    if declared_length(req).is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let bytes = collect(payload, max, || too_large(max)).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the body is empty: send a JSON object",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON body: {e}")))
}

/// A photo: multipart (`device_id`, `timestamp`, file `photo`) or JSON with
/// the image as base64 in `photo`. `max_image` bounds the image's bytes.
pub async fn photo_body(
    req: &HttpRequest,
    payload: web::Payload,
    max_image: usize,
    cx: ParseContext,
) -> Result<PhotoUpload, ApiError> {
    let essence = essence(req);
    if essence == "multipart/form-data" {
        return read_multipart(req, payload, max_image, cx).await;
    }
    if is_json(&essence) {
        // Base64 takes 4 bytes for every 3, plus the other fields.
        let max = max_image / 3 * 4 + 4096;
        let body = read_json(req, payload, max).await?;
        return Ok(photo_from_json(&body, "", cx)?);
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "send the photo as multipart/form-data (fields device_id, timestamp, photo) \
             or as application/json with the image base64 in `photo`; got {essence:?}"
        ),
    ))
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    max_image: usize,
    cx: ParseContext,
) -> Result<PhotoUpload, ApiError> {
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::new(ErrorCode::BadRequest, format!("malformed multipart body: {e}"))
    };
    let text_too_long = |name: &'static str| {
        move || {
            ApiError::from(crate::telemetry::InvalidReading::one(
                name,
                format!("is longer than {MAX_TEXT_FIELD} bytes"),
            ))
        }
    };
    // The whole body, not only the photo, is bounded: the photo, its two
    // text fields and a little room for fields this server ignores.
    let max_body = max_image + MULTIPART_SLACK;
    if declared_length(req).is_some_and(|len| len > max_body) {
        return Err(too_large(max_body));
    }
    let mut left = max_body;
    let mut multipart = Multipart::new(req.headers(), payload);
    let (mut device, mut timestamp, mut photo) = (None, None, None);
    while let Some(field) = multipart.try_next().await.map_err(bad)? {
        let bytes = match field.name() {
            Some("photo") if photo.is_none() => {
                let bytes = collect(field, max_image.min(left), || too_large(max_image)).await?;
                left -= bytes.len();
                photo = Some(bytes);
                continue;
            }
            Some("device_id") if device.is_none() => {
                let raw = collect(field, MAX_TEXT_FIELD, text_too_long("device_id")).await?;
                device = Some(String::from_utf8_lossy(&raw).into_owned());
                raw.len()
            }
            Some("timestamp") if timestamp.is_none() => {
                let raw = collect(field, MAX_TEXT_FIELD, text_too_long("timestamp")).await?;
                timestamp = Some(String::from_utf8_lossy(&raw).trim().to_owned());
                raw.len()
            }
            // Other fields are ignored, as unknown JSON fields are.
            _ => collect(field, left, || too_large(max_body)).await?.len(),
        };
        left = left.checked_sub(bytes).ok_or_else(|| too_large(max_body))?;
    }
    Ok(photo_from_parts(device, timestamp, photo, cx)?)
}
