//! What can go wrong talking to a vigil server, in words a user can act on.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use vigil_wire::ErrorCode;

/// An error code as the server gave it: one of vigil's, or one this client
/// does not know (`http_502` made up for a proxy's error page, or a newer
/// server's code), kept as text so that it is still shown as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCode {
    Vigil(ErrorCode),
    Other(String),
}

impl FailureCode {
    pub fn parse(raw: &str) -> Self {
        raw.parse()
            .map_or_else(|_| FailureCode::Other(raw.to_owned()), FailureCode::Vigil)
    }

    pub fn as_str(&self) -> &str {
        match self {
            FailureCode::Vigil(code) => code.as_str(),
            FailureCode::Other(code) => code,
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `failure.code == ErrorCode::RateLimited`: an unknown code is none of vigil's.
impl PartialEq<ErrorCode> for FailureCode {
    fn eq(&self, other: &ErrorCode) -> bool {
        *self == FailureCode::Vigil(*other)
    }
}

/// A refusal from the server: its status and `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    /// The stable snake_case code (`http_<status>` when the body was not vigil's JSON,
    /// e.g. from a proxy).
    pub code: FailureCode,
    pub message: String,
    /// From `Retry-After` (whole seconds).
    pub retry_after: Option<Duration>,
}

impl ApiFailure {
    /// Parses an error answer; anything that is not vigil's error body keeps
    /// the first line of its text as the message.
    pub fn from_body(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        // `vigil_wire::ErrorBody` with the code as text: a code this client
        // does not know is still vigil's answer, not a proxy's page.
        #[derive(serde::Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(serde::Deserialize)]
        struct Detail {
            code: String,
            message: String,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(Body { error }) => Self {
                status,
                code: FailureCode::parse(&error.code),
                message: error.message,
                retry_after,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let line = text.lines().next().unwrap_or("").trim();
                Self {
                    status,
                    code: FailureCode::Other(format!("http_{status}")),
                    message: if line.is_empty() {
                        "no error details".into()
                    } else {
                        line.chars().take(200).collect()
                    },
                    retry_after,
                }
            }
        }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused: {0}")]
    Api(ApiFailure),
    /// A WebSocket message answered with `error`.
    #[error("the server refused: {code}: {message}")]
    Refused { code: FailureCode, message: String },
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        url: String,
        detail: String,
        /// The connection failed, so the request surely never reached the
        /// server and may be sent again without doing anything twice.
        not_sent: bool,
    },
    #[error("unexpected answer from {url}: {detail}")]
    BadAnswer { url: String, detail: String },
    #[error("not logged in to {server}: run `vigil client login`, or pass --api-key (VIGIL_API_KEY)")]
    NotLoggedIn { server: String },
    #[error("the login for {server} has expired or was revoked: run `vigil client login` again")]
    LoginExpired { server: String },
    /// Bad input on the command line or stdin.
    #[error("{0}")]
    Input(String),
    #[error("invalid --server `{0}`: give an http:// or https:// URL, e.g. http://127.0.0.1:8080")]
    BadServer(String),
    #[error(
        "--server must not hold a user name or password (user:password@): use `vigil client login` \
         or --api-key (VIGIL_API_KEY)"
    )]
    CredentialsInServer,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("token store {}: {detail}", path.display())]
    TokenStore { path: PathBuf, detail: String },
    #[error("the WebSocket closed{}", close_reason(*code, reason))]
    Closed { code: Option<u16>, reason: String },
    #[error("WebSocket: {0}")]
    WebSocket(String),
}

fn close_reason(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(code), true) => format!(" ({code})"),
        (Some(code), false) => format!(" ({code} {reason})"),
        (None, false) => format!(" ({reason})"),
        (None, true) => String::new(),
    }
}

impl ClientError {
    /// Worth another try later: the server is away or busy, not refusing.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Closed { .. } | ClientError::WebSocket(_) => true,
            ClientError::Api(failure) => failure.status >= 500 || failure.code == ErrorCode::RateLimited,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vigil_error_bodies_and_anything_else() {
        let failure = ApiFailure::from_body(
            429,
            Some(Duration::from_secs(2)),
            br#"{"error":{"code":"rate_limited","message":"slow down"}}"#,
        );
        assert_eq!(failure.code, ErrorCode::RateLimited);
        assert_eq!(failure.message, "slow down");
        assert_eq!(failure.to_string(), "429 rate_limited: slow down");

        // A newer server's code is kept and shown as it came.
        let failure = ApiFailure::from_body(
            429,
            None,
            br#"{"error":{"code":"too_many_faces","message":"pick one"}}"#,
        );
        assert_eq!(failure.code, FailureCode::Other("too_many_faces".into()));
        assert_eq!(failure.to_string(), "429 too_many_faces: pick one");
        assert!(!ClientError::Api(failure).is_transient());

        let failure = ApiFailure::from_body(502, None, b"<html>Bad Gateway</html>\nmore");
        assert_eq!(failure.code, FailureCode::Other("http_502".into()));
        assert_eq!(failure.code.as_str(), "http_502");
        assert_eq!(failure.message, "<html>Bad Gateway</html>");
        assert!(ClientError::Api(failure).is_transient());
        assert!(!ClientError::Api(ApiFailure::from_body(401, None, b"")).is_transient());
    }
}
