//! The `{id}` of a path, parsed into the id type of what it names.

use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::api::error::ApiError;
use crate::error::ErrorCode;

/// What an id names, for the 404 message.
pub trait Named {
    const WHAT: &'static str;
    /// The path parameter that holds it.
    const PARAM: &'static str = "id";
}

/// `{id}` (or the parameter `T` names) as a `T`. A malformed id names nothing: 404, like an unknown one,
/// so a client cannot tell the two apart (nor probe another user's ids).
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

impl<T: Named> PathId<T> {
    pub fn not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("no {} with this id", T::WHAT))
    }
}

impl<T: FromStr + Named> FromRequest for PathId<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = req
            .match_info()
            .get(T::PARAM)
            .and_then(|raw| raw.parse().ok())
            .map(PathId)
            .ok_or_else(Self::not_found);
        std::future::ready(parsed)
    }
}

impl Named for crate::detections::DetectionId {
    const WHAT: &'static str = "detection";
}

impl Named for crate::alarms::AlarmId {
    const WHAT: &'static str = "alarm";
}

impl Named for crate::auth::api_keys::ApiKeyId {
    const WHAT: &'static str = "API key";
}

impl Named for crate::users::UserId {
    const WHAT: &'static str = "user";
}

impl Named for crate::capture::CameraId {
    const WHAT: &'static str = "camera";
}

impl Named for crate::people::SubjectId {
    const WHAT: &'static str = "subject";
}

impl Named for crate::people::SubjectFaceId {
    const WHAT: &'static str = "face";
    const PARAM: &'static str = "face_id";
}

impl Named for crate::telemetry::DeviceId {
    const WHAT: &'static str = "device";
}

impl Named for crate::jobs::JobId {
    const WHAT: &'static str = "job";
}
