//! One queued alarm to the central server: `POST /api/v1/alarms` as a
//! multipart form, and what its answer means for the queue.

use std::path::Path;
use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::RETRY_AFTER;
use reqwest::multipart::{Form, Part};
use reqwest::{StatusCode, Url};

use super::queue::Entry;
use crate::api::{error_chain, Server};
use crate::error::{ApiFailure, ClientError};

/// The path below the server's base URL.
pub const ALARMS_PATH: &str = "api/v1/alarms";
/// The most faces one alarm may carry; the detector lists the best first.
pub const MAX_FACES: usize = 100;
/// Largest answer body kept (error bodies are tiny; a proxy page is not worth more).
const MAX_ANSWER: usize = 64 * 1024;
/// A `Retry-After` beyond this is taken as this (a quota that renews
/// tomorrow is checked again within the hour).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What became of one attempt.
#[derive(Debug)]
pub enum Outcome {
    /// The server stored it (or had already, for a retried key).
    Sent,
    /// Bad input the server will never take: move it aside with `answer`.
    Rejected {
        failure: ApiFailure,
        answer: serde_json::Value,
    },
    /// The key is not (or no longer) good for this: stop until someone acts.
    Refused(ApiFailure),
    /// The server is away or busy: try again after `after` (the server's
    /// `Retry-After`) or a backoff.
    Retry { after: Option<Duration>, error: String },
}

/// Sends alarms to one server with one API key.
pub struct Sender {
    http: reqwest::Client,
    url: Url,
    api_key: String,
}

impl Sender {
    pub fn new(
        server: &Server,
        api_key: &str,
        ca_cert: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let tls = crate::tls::client_config(ca_cert)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            // A redirected POST would come back as a GET without its body:
            // a redirect is reported (retried) instead, so that the URL gets fixed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigil-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(error_chain(&e)))?;
        Ok(Self {
            http,
            url: server.url(ALARMS_PATH),
            api_key: api_key.trim().to_owned(),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One attempt; the same entry may be sent again (same idempotency key)
    /// whatever came of it.
    pub async fn send(&self, entry: &Entry) -> Outcome {
        let response = self
            .http
            .post(self.url.clone())
            .header("X-API-Key", &self.api_key)
            .header("Idempotency-Key", &entry.meta.idempotency_key)
            .multipart(form(entry))
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                return Outcome::Retry {
                    after: None,
                    error: format!("cannot reach {}: {}", self.url, error_chain(&err.without_url())),
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response).await;
        classify(status, retry_after, location.as_deref(), &body)
    }
}

/// The request body. Dates go with milliseconds, as the server keeps them.
fn form(entry: &Entry) -> Form {
    let meta = &entry.meta;
    let image = Part::bytes(entry.jpeg.clone())
        .file_name("frame.jpg")
        .mime_str("image/jpeg")
        .expect("a valid MIME type");
    let mut form = Form::new()
        .part("image", image)
        .text("date", meta.date.to_rfc3339_opts(SecondsFormat::Millis, true))
        .text("source", meta.source.clone());
    if let Some(message) = &meta.message {
        form = form.text("message", message.clone());
    }
    if let Some(faces) = &meta.faces {
        let faces = &faces[..faces.len().min(MAX_FACES)];
        let json = serde_json::to_string(faces).expect("faces serialise");
        let part = Part::text(json)
            .mime_str("application/json")
            .expect("a valid MIME type");
        form = form.part("faces", part);
    }
    form
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ANSWER {
            body.truncate(MAX_ANSWER);
            break;
        }
    }
    body
}

/// What a refusal means for the queue.
pub fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    location: Option<&str>,
    body: &[u8],
) -> Outcome {
    let failure = ApiFailure::from_body(status.as_u16(), retry_after, body);
    match status.as_u16() {
        401 | 403 => Outcome::Refused(failure),
        408 | 429 => Outcome::Retry {
            after: retry_after,
            error: failure.to_string(),
        },
        300..=399 => Outcome::Retry {
            after: None,
            error: format!(
                "{status} redirect{}: give --forward the server's own URL",
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            ),
        },
        400..=499 => {
            let body = serde_json::from_slice::<serde_json::Value>(body)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
            let answer = serde_json::json!({
                "status": status.as_u16(),
                "body": body,
                "refused_at": chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            Outcome::Rejected { failure, answer }
        }
        // 5xx, and whatever else a proxy may make up.
        _ => Outcome::Retry {
            after: retry_after,
            error: failure.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn answers_sort_into_retry_reject_and_stop() {
        let body = br#"{"error":{"code":"invalid_input","message":"date: too old"}}"#;
        match classify(status(422), None, None, body) {
            Outcome::Rejected { failure, answer } => {
                assert_eq!(failure.to_string(), "422 invalid_input: date: too old");
                assert_eq!(answer["status"], 422);
                assert_eq!(answer["body"]["error"]["message"], "date: too old");
            }
            other => panic!("{other:?}"),
        }
        for code in [400, 404, 409, 413, 415] {
            assert!(
                matches!(classify(status(code), None, None, b"x"), Outcome::Rejected { .. }),
                "{code}"
            );
        }
        for code in [401, 403] {
            assert!(
                matches!(classify(status(code), None, None, b""), Outcome::Refused(_)),
                "{code}"
            );
        }
        let quota = br#"{"error":{"code":"quota_exhausted","message":"used up"}}"#;
        match classify(status(429), Some(Duration::from_secs(7)), None, quota) {
            Outcome::Retry { after, error } => {
                assert_eq!(after, Some(Duration::from_secs(7)));
                assert!(error.contains("quota_exhausted"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        for code in [408, 500, 502, 503, 504] {
            assert!(
                matches!(
                    classify(status(code), None, None, b"<html>"),
                    Outcome::Retry { .. }
                ),
                "{code}"
            );
        }
        match classify(status(308), None, Some("https://central/api/v1/alarms"), b"") {
            Outcome::Retry { error, .. } => assert!(error.contains("https://central"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
