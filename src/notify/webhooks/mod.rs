//! Webhooks: an account's HTTP endpoints that vigil POSTs its alarms to.
//!
//! Each alarm raised on this instance ([`dispatch`]) becomes, for every
//! webhook of its owner that wants alarms (a camera's alarm: every admin's),
//! one job in the shared queue: durable, run by any instance, retried with
//! backoff for up to an hour (`jobs::RetryPolicy`), queued once per
//! (alarm, webhook) by a unique key. Each attempt ([`delivery`]) checks the
//! address again ([`address`]), signs the body ([`signature`]) and is
//! written to the webhook's delivery log ([`repository`]).

pub mod address;
pub mod delivery;
pub mod dispatch;
pub mod repository;
pub mod service;
pub mod signature;

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

pub use delivery::WebhookDeliveries;
pub use dispatch::Dispatcher;
pub use repository::{DeliveryLog, DeliveryRecord, WebhookScope, Webhooks};
pub use service::WebhookService;
pub use vigil_wire::webhooks::{DeliveryAttempt, DeliveryOutcome, WebhookEvent, WebhookView};

use crate::db::DbError;
use crate::error::{Coded, ErrorCode};
use crate::users::UserId;

/// How long one delivery may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Operator settings (`--webhook-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookSettings {
    /// Let webhooks reach loopback, private, link-local and CGNAT addresses.
    pub allow_private: bool,
}

/// What an account may have.
#[derive(Debug, Clone, Copy)]
pub struct WebhookLimits {
    pub per_user: u64,
    /// Attempts kept in each webhook's delivery log (the newest).
    pub log_entries: u64,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            per_user: 10,
            log_entries: 200,
        }
    }
}

/// Shortest and longest secret a client may choose, in bytes.
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// A webhook's id: 24 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookId(pub ObjectId);

impl std::str::FromStr for WebhookId {
    type Err = mongodb::bson::oid::Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(raw).map(Self)
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// The stored webhook. The secret is kept as given: the server needs it to
/// sign, so it cannot be hashed like a password or an API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    #[serde(rename = "_id")]
    pub id: WebhookId,
    pub user_id: UserId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub secret: String,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn view(&self) -> WebhookView {
        WebhookView {
            id: self.id.to_string(),
            user_id: self.user_id.to_string(),
            url: self.url.clone(),
            events: self.events.clone(),
            created_at: self.created_at,
        }
    }
}

/// A webhook to create, its fields checked ([`NewWebhook::parse`]); the
/// address is checked when it is created.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: reqwest::Url,
    pub events: Vec<WebhookEvent>,
    /// `None`: one is generated.
    pub secret: Option<String>,
}

impl NewWebhook {
    pub fn parse(url: &str, events: Vec<WebhookEvent>, secret: Option<String>) -> Result<Self, WebhookError> {
        let url = address::parse_url(url)?;
        if events.is_empty() {
            return Err(WebhookError::Invalid(
                "`events` must name at least one event (`alarm`)".into(),
            ));
        }
        let mut unique = Vec::new();
        for event in events {
            if !unique.contains(&event) {
                unique.push(event);
            }
        }
        if let Some(secret) = &secret {
            let printable = secret.chars().all(|c| c.is_ascii_graphic());
            if !SECRET_BYTES.contains(&secret.len()) || !printable {
                return Err(WebhookError::Invalid(format!(
                    "`secret` must be {} to {} printable ASCII characters without spaces",
                    SECRET_BYTES.start(),
                    SECRET_BYTES.end()
                )));
            }
        }
        Ok(Self {
            url,
            events: unique,
            secret,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error("the webhook URL is refused: {0}")]
    Refused(String),
    #[error("an account may have at most {0} webhooks; delete one first")]
    TooMany(u64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for WebhookError {
    fn code(&self) -> ErrorCode {
        match self {
            WebhookError::Invalid(_) => ErrorCode::ValidationFailed,
            WebhookError::Refused(_) => ErrorCode::WebhookUrlRefused,
            WebhookError::TooMany(_) => ErrorCode::LimitReached,
            WebhookError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            WebhookError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_webhooks_need_an_event_and_a_fair_secret() {
        let ok = NewWebhook::parse(
            "https://example.org/h",
            vec![WebhookEvent::Alarm, WebhookEvent::Alarm],
            None,
        )
        .unwrap();
        assert_eq!(ok.events, [WebhookEvent::Alarm]);
        assert!(matches!(
            NewWebhook::parse("https://example.org/h", vec![], None),
            Err(WebhookError::Invalid(_))
        ));
        for secret in ["short", "has spaces in it, sixteen+", "x".repeat(257).as_str()] {
            assert!(
                matches!(
                    NewWebhook::parse(
                        "https://example.org/h",
                        vec![WebhookEvent::Alarm],
                        Some(secret.into())
                    ),
                    Err(WebhookError::Invalid(_))
                ),
                "{secret}"
            );
        }
        assert_eq!(
            WebhookError::Refused("x".into()).code(),
            ErrorCode::WebhookUrlRefused
        );
    }
}
