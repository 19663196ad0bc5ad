//! Reading an image upload: multipart (`image` and optional `source` fields)
//! or a raw `image/*` body, never more than the configured number of bytes.

use actix_multipart::Multipart;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt, TryStreamExt};

use crate::error::{ApiError, ErrorCode};

pub const RAW_IMAGE_TYPES: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif"];
const MAX_SOURCE_BYTES: usize = 256;

pub struct Upload {
    pub bytes: Vec<u8>,
    /// The multipart `source` field, when sent.
    pub source: Option<String>,
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the upload is larger than {max} bytes"),
    )
}

/// Collects a body stream, refusing as soon as it passes `max` bytes.
async fn collect<S, B, E>(mut stream: S, max: usize, over: impl Fn() -> ApiError) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("reading the upload failed: {e}")))?;
        if bytes.len() + chunk.as_ref().len() > max {
            return Err(over());
        }
        bytes.extend_from_slice(chunk.as_ref());
    }
    Ok(bytes)
}

pub async fn read_upload(req: &HttpRequest, payload: web::Payload, max: usize) -> Result<Upload, ApiError> {
    let declared_length = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Multipart framing adds a little; the image field itself is held to `max`.
    if declared_length.is_some_and(|len| len > max + 64 * 1024) {
        return Err(too_large(max));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();

    if essence == "multipart/form-data" {
        return read_multipart(req, payload, max).await;
    }
    if RAW_IMAGE_TYPES.contains(&essence) {
        if declared_length.is_some_and(|len| len > max) {
            return Err(too_large(max));
        }
        let bytes = collect(payload, max, || too_large(max)).await?;
        return Ok(Upload { bytes, source: None });
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "send the image as multipart/form-data (field `image`) or as a raw body of type {}; got {:?}",
            RAW_IMAGE_TYPES.join(", "),
            essence
        ),
    ))
}

async fn read_multipart(req: &HttpRequest, payload: web::Payload, max: usize) -> Result<Upload, ApiError> {
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::new(ErrorCode::BadRequest, format!("malformed multipart body: {e}"))
    };
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut image = None;
    let mut source = None;
    while let Some(field) = multipart.try_next().await.map_err(bad)? {
        match field.name() {
            Some("image") if image.is_none() => image = Some(collect(field, max, || too_large(max)).await?),
            Some("source") if source.is_none() => {
                let raw = collect(field, MAX_SOURCE_BYTES, || {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        "`source` is longer than 64 characters",
                    )
                })
                .await?;
                let text = String::from_utf8(raw)
                    .map_err(|_| ApiError::new(ErrorCode::ValidationFailed, "`source` must be UTF-8 text"))?;
                source = Some(text);
            }
            // Unknown or repeated fields are drained and ignored, within the same limit.
            _ => drop(collect(field, max, || too_large(max)).await?),
        }
    }
    let bytes = image
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "the multipart body has no `image` field"))?;
    Ok(Upload { bytes, source })
}
