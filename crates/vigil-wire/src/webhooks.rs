//! Webhooks: an account's HTTP endpoints that vigil POSTs its alarms to,
//! signed, retried for up to an hour, each attempt in a delivery log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::alarms::AlarmView;

/// Header with the Unix time (seconds) the delivery was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Vigil-Timestamp";
/// Header with `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature";
/// Header with the event's name (`alarm`).
pub const EVENT_HEADER: &str = "X-Vigil-Event";
/// Header with the delivery's id: the same on every attempt of one delivery.
pub const DELIVERY_HEADER: &str = "X-Vigil-Delivery";

/// What a webhook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// An alarm of the account (admins: also the cameras' alarms).
    Alarm,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Alarm => "alarm",
        }
    }
}

/// A webhook as the API shows it: never with its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    /// The owner.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b9")]
    pub user_id: String,
    #[schema(example = "https://hooks.example.org/vigil")]
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: DateTime<Utc>,
}

/// The answer to `POST /api/v1/webhooks`: the webhook and its secret, shown
/// this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The key every delivery is signed with (the one sent, or one made
    /// for it). Never shown again: keep it now.
    #[schema(example = "whsec_3f0c9a…")]
    pub secret: String,
}

/// How one attempt of a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt follows.
    Retry,
    /// It failed and was the last: the delivery is given up.
    GaveUp,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry => "retry",
            DeliveryOutcome::GaveUp => "gave_up",
        }
    }
}

/// One attempt to deliver an event to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c0")]
    pub id: String,
    /// The delivery (`X-Vigil-Delivery`): the same on every attempt of it.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c1")]
    pub delivery_id: String,
    pub event: WebhookEvent,
    /// The alarm delivered.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub alarm_id: String,
    /// 1 for the first attempt of the delivery.
    #[schema(example = 1)]
    pub attempt: u32,
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// Milliseconds from the request's start to its answer or its failure.
    #[schema(example = 42.5)]
    pub duration_ms: f64,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 503)]
    pub status: Option<u16>,
    /// Why the attempt failed without an answer (refused address, timeout,
    /// connection refused…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "error sending request: connection refused")]
    pub error: Option<String>,
    pub outcome: DeliveryOutcome,
}

/// The body POSTed to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookPayload {
    pub event: WebhookEvent,
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub webhook_id: String,
    /// The same on every attempt of this delivery: receivers may drop a
    /// delivery they have already processed.
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c1")]
    pub delivery_id: String,
    /// The alarm, as `GET /api/v1/alarms/{id}` shows it.
    pub alarm: AlarmView,
}
