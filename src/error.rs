//! The one place where errors become HTTP responses.
//!
//! Every layer has its own `thiserror` enum; each maps itself to an
//! [`ErrorCode`] once (via `From<LayerError> for ApiError`). The code decides
//! the status, and its snake_case name is a stable contract with clients:
//! `{"error": {"code": "…", "message": "…"}}`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $name:literal)),+ $(,)?) => {
        /// Stable, machine-readable error codes. Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant),+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name),+ }
            }

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status),+ }
            }
        }
    };
}

error_codes! {
    BadRequest => (BAD_REQUEST, "bad_request"),
    InvalidJson => (BAD_REQUEST, "invalid_json"),
    InvalidQuery => (BAD_REQUEST, "invalid_query"),
    InvalidPath => (BAD_REQUEST, "invalid_path"),
    ValidationFailed => (UNPROCESSABLE_ENTITY, "validation_failed"),
    Unauthenticated => (UNAUTHORIZED, "unauthenticated"),
    InvalidCredentials => (UNAUTHORIZED, "invalid_credentials"),
    InvalidToken => (UNAUTHORIZED, "invalid_token"),
    Forbidden => (FORBIDDEN, "forbidden"),
    InvalidSignature => (FORBIDDEN, "invalid_signature"),
    NotFound => (NOT_FOUND, "not_found"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed"),
    UserNameTaken => (CONFLICT, "user_name_taken"),
    EmailTaken => (CONFLICT, "email_taken"),
    CameraExists => (CONFLICT, "camera_exists"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large"),
    ImageTooLarge => (PAYLOAD_TOO_LARGE, "image_too_large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    InvalidImage => (UNPROCESSABLE_ENTITY, "invalid_image"),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited"),
    QuotaExhausted => (TOO_MANY_REQUESTS, "quota_exhausted"),
    LoginThrottled => (TOO_MANY_REQUESTS, "login_throttled"),
    DatabaseUnavailable => (SERVICE_UNAVAILABLE, "database_unavailable"),
    NotReady => (SERVICE_UNAVAILABLE, "not_ready"),
    Internal => (INTERNAL_SERVER_ERROR, "internal"),
}

/// The JSON error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no detection with this id"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `quota_exhausted`.
    pub code: String,
    /// Human-readable explanation; may change between versions.
    pub message: String,
}

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for the `Retry-After` header of 429 and 503 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Logs the real cause and hides it from the client: internals are not API.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal server error")
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not snake_case"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal("password=hunter2 in a log line");
        assert_eq!(err.code, ErrorCode::Internal);
        assert!(!err.message.contains("hunter2"));
    }

    #[test]
    fn retry_after_becomes_a_header() {
        let response = ApiError::new(ErrorCode::RateLimited, "slow down")
            .with_retry_after(2)
            .error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}
