//! Extractors: what a handler takes in its signature is what it may do.
//! A handler that takes a [`Principal`] cannot forget to authenticate or to
//! draw from the caller's rate limit; one that takes [`Admin`] cannot forget
//! the role check; one without credentials takes [`RateLimitedIp`].

mod alarm;
mod client_ip;
mod enrol;
mod idempotency;
mod json;
mod path_id;
mod principal;
pub mod telemetry;
mod upload;
mod video;

pub use alarm::AlarmBody;
pub use client_ip::RateLimitedIp;
pub use enrol::{EnrolBody, EnrolDetectionFace};
pub use idempotency::{OptionalIdempotencyKey, IDEMPOTENCY_KEY_HEADER};
pub use json::JsonBody;
pub use path_id::{Named, PathId};
pub use principal::{Admin, AlarmSender, TelemetrySender, API_KEY_HEADER};
pub use upload::{Upload, UploadBody, UploadMode, UploadQuery};
pub use video::{VideoBody, VideoQuery};

use actix_web::{web, HttpRequest};

use super::error::ApiError;

/// A service registered as app data (see `api::Services`).
fn service<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, ApiError> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("{} missing from the app", std::any::type_name::<T>())))
}
