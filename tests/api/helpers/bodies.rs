//! Response bodies the tests read that vigil-wire has no type for: the
//! server's own views, as a client would declare them. Every field the API
//! documents is here, so a body that lacks one does not pass, whether a test
//! reads that field or not.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A user as the API shows it (`GET /api/v1/users/me`, registration).
#[derive(Debug, Deserialize)]
#[allow(
    dead_code,
    reason = "parsed to check the body; not every test reads every field"
)]
pub struct User {
    pub id: String,
    pub user_name: String,
    pub email: String,
    pub role: Role,
    pub api_request_quota: u32,
    pub api_requests_used: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

/// A newly created API key: the only time `key` is shown.
#[derive(Debug, Deserialize)]
#[allow(
    dead_code,
    reason = "parsed to check the body; not every test reads every field"
)]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Sent as `X-API-Key`.
    pub key: String,
}

/// A camera as `GET /api/v1/cameras` shows it.
#[derive(Debug, Clone, Deserialize)]
#[allow(
    dead_code,
    reason = "parsed to check the body; not every test reads every field"
)]
pub struct Camera {
    pub id: String,
    pub source: String,
    pub fps: f64,
    pub cooldown_secs: f64,
    #[serde(rename = "loop")]
    pub looping: bool,
    pub status: CameraState,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub last_alarm_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub retry_at: Option<DateTime<Utc>>,
    /// The instance running the camera (null when none does).
    pub instance_id: Option<String>,
    pub frames_captured: u64,
    pub frames_processed: u64,
    pub frames_dropped: u64,
    pub alarms_raised: u64,
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Starting,
    Running,
    Backoff,
    Finished,
    Failed,
    Stopped,
    Standby,
}

/// `GET /api/v1/clients`: the WebSocket sessions connected now.
#[derive(Debug, Deserialize)]
pub struct ClientList {
    pub count: u64,
    pub items: Vec<ConnectedClient>,
}

#[derive(Debug, Deserialize)]
#[allow(
    dead_code,
    reason = "parsed to check the body; not every test reads every field"
)]
pub struct ConnectedClient {
    pub session_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub instance_id: String,
    pub connected_at: DateTime<Utc>,
    pub remote_addr: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Deserialize)]
pub struct Health {
    pub status: String,
}
