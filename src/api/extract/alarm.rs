//! Reading an alarm an agent sends: multipart `image`, `date`, `source`,
//! and optional `message` and `faces` (JSON). Every field that breaks its
//! rule is named in one answer.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::upload::collect;
use super::{declared_length, essence};
use crate::agents::{check_message, IncomingAlarm, IngestError, MAX_FACES};
use crate::api::error::ApiError;
use crate::detections::Source;
use crate::error::{ErrorCode, FieldError};
use crate::vision::Face;

/// Largest `date`, `source` or `message` field.
const MAX_TEXT: usize = 4 * 1024;
/// Largest `faces` field: [`MAX_FACES`] faces of JSON with room to spare.
const MAX_FACES_JSON: usize = MAX_FACES * 512;

pub struct AlarmBody;

fn field(name: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        problem: problem.into(),
    }
}

fn text(raw: Vec<u8>, name: &str, problems: &mut Vec<FieldError>) -> Option<String> {
    match String::from_utf8(raw) {
        Ok(text) => Some(text),
        Err(_) => {
            problems.push(field(name, "must be UTF-8 text"));
            None
        }
    }
}

impl AlarmBody {
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        max: usize,
    ) -> Result<IncomingAlarm, ApiError> {
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the image is larger than {max} bytes"),
            )
        };
        if declared_length(req).is_some_and(|len| len > max + MAX_FACES_JSON + 4 * MAX_TEXT) {
            return Err(too_large());
        }
        let essence = essence(req);
        if essence != "multipart/form-data" {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("send the alarm as multipart/form-data (fields image, date, source, message, faces); got {essence:?}"),
            ));
        }
        let bad = |e: actix_multipart::MultipartError| {
            ApiError::new(ErrorCode::BadRequest, format!("malformed multipart body: {e}"))
        };
        let long = |name: &'static str| {
            move || ApiError::from(IngestError::Invalid(vec![field(name, "is too long")]))
        };
        let mut multipart = Multipart::new(req.headers(), payload);
        let (mut image, mut date, mut source, mut message, mut faces) = (None, None, None, None, None);
        let mut problems = Vec::new();
        while let Some(part) = multipart.try_next().await.map_err(bad)? {
            match part.name() {
                Some("image") if image.is_none() => image = Some(collect(part, max, too_large).await?),
                Some("date") if date.is_none() => {
                    date = text(
                        collect(part, MAX_TEXT, long("date")).await?,
                        "date",
                        &mut problems,
                    )
                }
                Some("source") if source.is_none() => {
                    source = text(
                        collect(part, MAX_TEXT, long("source")).await?,
                        "source",
                        &mut problems,
                    )
                }
                Some("message") if message.is_none() => {
                    message = text(
                        collect(part, MAX_TEXT, long("message")).await?,
                        "message",
                        &mut problems,
                    )
                }
                Some("faces") if faces.is_none() => {
                    faces = text(
                        collect(part, MAX_FACES_JSON, long("faces")).await?,
                        "faces",
                        &mut problems,
                    )
                }
                // Anything else is drained and ignored, within a small limit.
                _ => drop(collect(part, MAX_TEXT, long("unknown")).await?),
            }
        }
        let image = image
            .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "the multipart body has no `image` field"))?;
        let date = match date.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push(field("date", "is required: the moment of capture, RFC 3339"));
                None
            }
            Some(raw) => match DateTime::parse_from_rfc3339(raw) {
                Ok(date) => Some(date.with_timezone(&Utc)),
                Err(_) => {
                    problems.push(field(
                        "date",
                        "must be an RFC 3339 date-time, e.g. 2026-12-07T09:00:00Z",
                    ));
                    None
                }
            },
        };
        let source = match source.as_deref() {
            None => {
                problems.push(field(
                    "source",
                    "is required: the agent's name or camera, 1-64 characters",
                ));
                None
            }
            Some(raw) => match Source::parse(raw) {
                Ok(source) => Some(source),
                Err(err) => {
                    problems.push(field("source", err.to_string().trim_start_matches("`source` ")));
                    None
                }
            },
        };
        let message = match message.as_deref() {
            None => None,
            Some(raw) => match check_message(raw) {
                Ok(message) => Some(message),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
        };
        let faces = match faces.as_deref() {
            None => None,
            Some(raw) => match serde_json::from_str::<Vec<Face>>(raw) {
                Ok(faces) => Some(faces),
                Err(err) => {
                    problems.push(field("faces", format!("must be a JSON array of faces: {err}")));
                    None
                }
            },
        };
        match (date, source) {
            (Some(date), Some(source)) if problems.is_empty() => Ok(IncomingAlarm {
                image,
                date,
                source,
                message,
                faces,
            }),
            _ => Err(IngestError::Invalid(problems).into()),
        }
    }
}
