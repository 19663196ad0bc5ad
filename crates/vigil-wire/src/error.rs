//! The one vocabulary of error codes, for HTTP answers, WebSocket `error`
//! messages and the client alike: `{"error": {"code": "…", "message": "…"}}`
//! over HTTP, `{"type": "error", "code": "…", …}` on the WebSocket.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident => ($status:literal, $name:literal)),+ $(,)?) => {
        /// Stable, machine-readable error codes. Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode { $(#[serde(rename = $name)] $variant),+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name),+ }
            }

            /// The HTTP status an answer with this code has. Codes that only
            /// the WebSocket sends have the status they would have over HTTP.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status),+ }
            }
        }
    };
}

error_codes! {
    BadRequest => (400, "bad_request"),
    InvalidJson => (400, "invalid_json"),
    InvalidQuery => (400, "invalid_query"),
    InvalidPath => (400, "invalid_path"),
    MissingType => (400, "missing_type"),
    UnknownType => (400, "unknown_type"),
    InvalidMessage => (400, "invalid_message"),
    BinaryNotSupported => (400, "binary_not_supported"),
    ValidationFailed => (422, "validation_failed"),
    InvalidReading => (400, "invalid_reading"),
    InvalidFibN => (422, "invalid_fib_n"),
    InvalidValue => (422, "invalid_value"),
    NoFace => (422, "no_face"),
    FaceTooSmall => (422, "face_too_small"),
    NoEmbedding => (422, "no_embedding"),
    Unauthenticated => (401, "unauthenticated"),
    InvalidCredentials => (401, "invalid_credentials"),
    InvalidToken => (401, "invalid_token"),
    Forbidden => (403, "forbidden"),
    InvalidSignature => (403, "invalid_signature"),
    DeviceTaken => (403, "device_taken"),
    ScopeForbidden => (403, "scope_forbidden"),
    NotFound => (404, "not_found"),
    MethodNotAllowed => (405, "method_not_allowed"),
    UserNameTaken => (409, "user_name_taken"),
    EmailTaken => (409, "email_taken"),
    CameraExists => (409, "camera_exists"),
    RuleExists => (409, "rule_exists"),
    AlreadyAuthenticated => (409, "already_authenticated"),
    SubjectNameTaken => (409, "subject_name_taken"),
    LimitReached => (409, "limit_reached"),
    JobFinished => (409, "job_finished"),
    PayloadTooLarge => (413, "payload_too_large"),
    ImageTooLarge => (413, "image_too_large"),
    UnsupportedMediaType => (415, "unsupported_media_type"),
    InvalidImage => (422, "invalid_image"),
    InvalidVideo => (422, "invalid_video"),
    WebhookUrlRefused => (422, "webhook_url_refused"),
    RateLimited => (429, "rate_limited"),
    QuotaExhausted => (429, "quota_exhausted"),
    LoginThrottled => (429, "login_throttled"),
    Internal => (500, "internal"),
    InsufficientStorage => (507, "insufficient_storage"),
    DatabaseUnavailable => (503, "database_unavailable"),
    NotReady => (503, "not_ready"),
    QueueFull => (503, "queue_full"),
    // Images: the pixels being decoded at once (`--decode-budget-mpx`) stayed
    // spent for `--decode-wait-secs`.
    Busy => (503, "busy"),
    // Only in a webhook delivery's job error: the receiver did not answer 2xx.
    WebhookDeliveryFailed => (502, "webhook_delivery_failed"),
}

impl ErrorCode {
    /// A fault of the server (or of what it depends on), not of the request:
    /// worth retrying as it is.
    pub fn is_server_side(self) -> bool {
        self.status() >= 500
    }
}

/// A string enum of every code, as clients see them.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Stable, machine-readable error code. Never renamed: clients match on it.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, UnknownCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

/// The JSON error body of every failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no detection with this id"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `quota_exhausted`.
    pub code: ErrorCode,
    /// Human-readable explanation; may change between versions.
    pub message: String,
    /// Each field of the request that broke a rule, when the code is about
    /// fields (`invalid_reading`): all of them, not only the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// One field of a request body and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field's name as sent, e.g. `latitude` (`items[3].x` in a batch).
    #[schema(example = "latitude")]
    pub field: String,
    #[schema(example = "must be between -90 and 90")]
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not snake_case"
            );
            assert!((400..600).contains(&code.status()), "{name}");
            assert_eq!(name.parse::<ErrorCode>(), Ok(code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                name,
                "serde and as_str agree"
            );
        }
        assert!("no_such_code".parse::<ErrorCode>().is_err());
    }
}
