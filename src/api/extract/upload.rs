//! Reading an image upload: multipart (`image` and optional `source` fields)
//! or a raw `image/*` body, never more than the configured number of bytes.
//! Read by the handler after the caller is authenticated, so nobody can make
//! the server take in a body without credentials.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{declared_length, essence};
use crate::api::error::ApiError;
use crate::detections::{InvalidSource, Source};
use crate::error::ErrorCode;
use crate::media::ImageKind;

/// The query of an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Label stored with the result (1–64 characters, default `upload`);
    /// a multipart `source` field takes precedence.
    pub source: Option<String>,
    /// `sync` (default): detect now, answer 201 with the detection. `async`:
    /// store the image, answer 202 with a job that detects it.
    #[param(inline)]
    pub mode: Option<UploadMode>,
}

/// When an upload is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    #[default]
    Sync,
    Async,
}

/// An upload as received: the image bytes (not yet looked at), its label
/// and when to detect it.
pub struct Upload {
    pub bytes: Vec<u8>,
    pub source: Source,
    pub mode: UploadMode,
}

/// How an upload body is read.
pub struct UploadBody;

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the upload is larger than {max} bytes"),
    )
}

/// Collects a body stream, refusing as soon as it passes `max` bytes.
pub(super) async fn collect<S, B, E>(
    mut stream: S,
    max: usize,
    over: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError>
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

impl UploadBody {
    /// Reads the body (at most `max` bytes of image) and the label, from the
    /// multipart `source` field or else `?source=`.
    pub async fn read(req: &HttpRequest, payload: web::Payload, max: usize) -> Result<Upload, ApiError> {
        // The query first: a bad `mode` is refused before the body is read.
        let query = web::Query::<UploadQuery>::from_query(req.query_string())
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("invalid query string: {e}")))?;
        let (bytes, field) = read_image(req, payload, max).await?;
        let source = Source::given(field.as_deref().or(query.source.as_deref()))?;
        Ok(Upload {
            bytes,
            source,
            mode: query.mode.unwrap_or_default(),
        })
    }
}

/// The image bytes and the multipart `source` field, when there is one.
async fn read_image(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let declared_length = declared_length(req);
    // Multipart framing adds a little; the image field itself is held to `max`.
    if declared_length.is_some_and(|len| len > max + 64 * 1024) {
        return Err(too_large(max));
    }
    let essence = essence(req);
    let essence = essence.as_str();

    if essence == "multipart/form-data" {
        return read_multipart(req, payload, max).await;
    }
    if ImageKind::from_content_type(essence).is_some() {
        if declared_length.is_some_and(|len| len > max) {
            return Err(too_large(max));
        }
        let bytes = collect(payload, max, || too_large(max)).await?;
        return Ok((bytes, None));
    }
    let accepted: Vec<_> = ImageKind::ALL.iter().map(|k| k.content_type()).collect();
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "send the image as multipart/form-data (field `image`) or as a raw body of type {}; got {:?}",
            accepted.join(", "),
            essence
        ),
    ))
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
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
                // A label of more bytes than the longest valid one cannot be valid.
                let raw = collect(field, Source::MAX_BYTES, || InvalidSource.into()).await?;
                source = Some(String::from_utf8(raw).map_err(|_| InvalidSource)?);
            }
            // Unknown or repeated fields are drained and ignored, within the same limit.
            _ => drop(collect(field, max, || too_large(max)).await?),
        }
    }
    let bytes = image
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "the multipart body has no `image` field"))?;
    Ok((bytes, source))
}
