//! Reading a video upload: multipart (`video`, and optional `fps` and
//! `source` fields) or a raw `video/*` or `application/octet-stream` body
//! with `?fps=&source=`. The video is streamed into the video store's
//! receiving file as it arrives, never held in memory, and refused as soon
//! as it passes the limit.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use vigil_ffmpeg::sampling::parse_fps;

use super::upload::collect;
use super::{declared_length, essence};
use crate::api::error::ApiError;
use crate::detections::{InvalidSource, Source};
use crate::error::ErrorCode;
use crate::jobs::videos::Incoming;
use crate::jobs::{JobService, VideoUpload};

/// The query of a video upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VideoQuery {
    /// Frames per second analysed: the first frame of every 1/fps seconds
    /// (above 0, at most 120; default 1). A multipart `fps` field takes precedence.
    pub fps: Option<String>,
    /// Label of the video (1–64 characters; default: the multipart file
    /// name, else `video`); each frame's detection gets `label@m:ss.s`.
    pub source: Option<String>,
}

pub struct VideoBody;

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the video is larger than {max} bytes (--max-video-bytes)"),
    )
}

fn fps_of(raw: Option<&str>) -> Result<f64, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(1.0),
        Some(raw) => {
            parse_fps(raw).map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("`fps` {e}")))
        }
    }
}

/// Writes a body stream into `file`, refusing past `max` bytes.
async fn stream_into<S, B, E>(mut stream: S, file: &mut Incoming, max: u64) -> Result<(), ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("reading the upload failed: {e}")))?;
        let chunk = chunk.as_ref();
        if file.bytes() + chunk.len() as u64 > max {
            return Err(too_large(max));
        }
        file.write(chunk)
            .await
            .map_err(|e| ApiError::internal(format!("cannot write the video: {e}")))?;
    }
    Ok(())
}

impl VideoBody {
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        jobs: &JobService,
    ) -> Result<VideoUpload, ApiError> {
        let max = jobs.queue.settings.max_video_bytes;
        if declared_length(req).is_some_and(|len| len as u64 > max.saturating_add(64 * 1024)) {
            return Err(too_large(max));
        }
        let query = web::Query::<VideoQuery>::from_query(req.query_string())
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("invalid query string: {e}")))?;
        let essence = essence(req);
        let mut file = jobs.receive_video().await?;
        let (fps, source, name) = if essence == "multipart/form-data" {
            read_multipart(req, payload, &mut file, max).await?
        } else if essence.starts_with("video/") || essence == "application/octet-stream" {
            stream_into(payload, &mut file, max).await?;
            (None, None, None)
        } else {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "send the video as multipart/form-data (field `video`) or as a raw body of type video/* or application/octet-stream; got {essence:?}"
                ),
            ));
        };
        if file.bytes() == 0 {
            return Err(ApiError::new(ErrorCode::BadRequest, "the video is empty"));
        }
        let fps = fps_of(fps.as_deref().or(query.fps.as_deref()))?;
        let label = source.or_else(|| query.source.clone());
        let source = match label.as_deref().map(str::trim) {
            Some(label) if !label.is_empty() => Source::parse(label)?,
            _ => name
                .as_deref()
                .and_then(|n| Source::parse(&n.chars().take(Source::MAX_CHARS).collect::<String>()).ok())
                .unwrap_or_else(|| Source::parse("video").expect("a valid label")),
        };
        Ok(VideoUpload { file, source, fps })
    }
}

/// The `fps` and `source` fields and the video's file name, the video
/// itself written into `file`.
async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    file: &mut Incoming,
    max: u64,
) -> Result<(Option<String>, Option<String>, Option<String>), ApiError> {
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::new(ErrorCode::BadRequest, format!("malformed multipart body: {e}"))
    };
    let mut multipart = Multipart::new(req.headers(), payload);
    let (mut fps, mut source, mut name, mut seen_video) = (None, None, None, false);
    let text = |raw: Vec<u8>| String::from_utf8(raw).map_err(|_| ApiError::from(InvalidSource));
    while let Some(field) = multipart.try_next().await.map_err(bad)? {
        match field.name() {
            Some("video") if !seen_video => {
                seen_video = true;
                name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned());
                stream_into(field, file, max).await?;
            }
            Some("fps") if fps.is_none() => {
                let raw = collect(field, 64, || {
                    ApiError::new(ErrorCode::ValidationFailed, "`fps` must be a number")
                })
                .await?;
                fps = Some(String::from_utf8_lossy(&raw).into_owned());
            }
            Some("source") if source.is_none() => {
                source = Some(text(
                    collect(field, Source::MAX_BYTES, || InvalidSource.into()).await?,
                )?);
            }
            // Anything else is drained and ignored, within a small limit.
            _ => drop(collect(field, 64 * 1024, || too_large(max)).await?),
        }
    }
    if !seen_video {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the multipart body has no `video` field",
        ));
    }
    Ok((fps, source, name))
}
