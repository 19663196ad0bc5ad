//! Extractors: what a handler takes in its signature is what it may do.
//! A handler that takes a [`Principal`] cannot forget to authenticate or to
//! draw from the caller's rate limit; one that takes [`Admin`] cannot forget
//! the role check; one without credentials takes [`RateLimitedIp`].

mod alarm;
mod client_ip;
mod idempotency;
mod image_or_json;
mod json;
mod path_id;
mod principal;
pub mod telemetry;
mod upload;
mod video;

pub use alarm::AlarmBody;
pub use client_ip::RateLimitedIp;
pub use idempotency::{OptionalIdempotencyKey, IDEMPOTENCY_KEY_HEADER};
pub use image_or_json::{EnrolBody, EnrolDetectionFace, ImageOrJson};
pub use json::JsonBody;
pub use path_id::{Named, PathId};
pub use principal::{Admin, AlarmSender, TelemetrySender, API_KEY_HEADER};
pub use upload::{Upload, UploadBody, UploadMode, UploadQuery};
pub use video::{VideoBody, VideoQuery};

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, HttpRequest};

use super::error::ApiError;

/// A service registered as app data (see `api::Services`).
fn service<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, ApiError> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("{} missing from the app", std::any::type_name::<T>())))
}

/// The body's media type without its parameters, lower-cased
/// (`multipart/form-data`, `image/png`…); empty when there is none.
fn essence(req: &HttpRequest) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The body's length as the client declared it, to refuse a body that is
/// too large before reading any of it.
fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}
