//! The one place where errors become HTTP responses: any [`Coded`] error
//! converts into an [`ApiError`], whose code decides the status and the
//! `{"error": {"code", "message"}}` body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{Coded, ErrorCode, FieldError};
use vigil_wire::{ErrorBody, ErrorDetail};

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for the `Retry-After` header of 429 and 503 answers.
    pub retry_after: Option<u64>,
    pub fields: Vec<FieldError>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            fields: Vec::new(),
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
                code: self.code,
                message: self.message.clone(),
                fields: self.fields.clone(),
            },
        }
    }
}

impl<E: Coded> From<E> for ApiError {
    fn from(err: E) -> Self {
        let code = err.code();
        let api = match code {
            ErrorCode::Internal => return ApiError::internal(&err),
            ErrorCode::DatabaseUnavailable => {
                // The cause (which server, which timeout) is for operators.
                tracing::warn!(error = %err, "database unavailable");
                ApiError::new(code, "the database is unavailable, try again shortly")
            }
            _ => ApiError {
                fields: err.fields(),
                ..ApiError::new(code, err.to_string())
            },
        };
        match err.retry_after() {
            Some(seconds) => api.with_retry_after(seconds),
            None => api,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

    #[derive(Debug, thiserror::Error)]
    enum Layer {
        #[error("password=hunter2 in a log line")]
        Broken,
        #[error("slow down")]
        Busy,
    }

    impl Coded for Layer {
        fn code(&self) -> ErrorCode {
            match self {
                Layer::Broken => ErrorCode::Internal,
                Layer::Busy => ErrorCode::RateLimited,
            }
        }

        fn retry_after(&self) -> Option<u64> {
            matches!(self, Layer::Busy).then_some(2)
        }
    }

    #[test]
    fn every_code_has_a_valid_status() {
        for &code in ErrorCode::ALL {
            let status = ApiError::new(code, "x").status_code();
            assert_eq!(status.as_u16(), code.status(), "{code}");
            assert!(status.is_client_error() || status.is_server_error(), "{code}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::from(Layer::Broken);
        assert_eq!(err.code, ErrorCode::Internal);
        assert!(!err.message.contains("hunter2"));
    }

    #[test]
    fn a_layer_error_keeps_its_code_message_and_retry_after() {
        let response = ApiError::from(Layer::Busy).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}
