//! The WebSocket protocol of `/ws` (docs/websocket.md describes it for
//! client authors): JSON text frames, each an object with a `type`.

mod client_id;
mod messages;
mod values;

use serde::{Deserialize, Serialize};

pub use client_id::{ClientId, InvalidClientId, CLIENT_ID_RULE};
pub use messages::{ClientMessage, InlineAlarm, Refusal, ServerMessage, CLIENT_TYPES};
pub use values::{CounterValue, FibN, InvalidCounterValue, InvalidFibN, NumberView, Parity};

use crate::ErrorCode;

/// What a session can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Alarms,
    Clock,
    /// Readings the session's account stores (authenticated sessions only).
    Telemetry,
    /// Progress of the session's account's jobs (authenticated sessions only).
    Jobs,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Alarms, Topic::Clock, Topic::Telemetry, Topic::Jobs];
}

/// The codes an `error` message may carry.
pub const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode::InvalidJson,
    ErrorCode::MissingType,
    ErrorCode::UnknownType,
    ErrorCode::InvalidMessage,
    ErrorCode::BinaryNotSupported,
    ErrorCode::Unauthenticated,
    ErrorCode::AlreadyAuthenticated,
    ErrorCode::InvalidToken,
    ErrorCode::InvalidFibN,
    ErrorCode::InvalidValue,
    // An `alarm`: as `POST /api/v1/alarms` answers it.
    ErrorCode::ValidationFailed,
    ErrorCode::InvalidImage,
    ErrorCode::PayloadTooLarge,
    ErrorCode::ImageTooLarge,
    ErrorCode::QuotaExhausted,
    ErrorCode::ScopeForbidden,
    ErrorCode::RateLimited,
    ErrorCode::DatabaseUnavailable,
    ErrorCode::InsufficientStorage,
    ErrorCode::Internal,
];

/// Largest message, in bytes, a client may send: one frame, or the frames of
/// a fragmented message together. Every client message is far smaller.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Largest image an `alarm` may carry inline, in bytes once decoded
/// (11 KiB: 15020 characters of base64), leaving 1364 bytes of the
/// [`MAX_MESSAGE_BYTES`] for the rest of the message. Bigger frames go to
/// `POST /api/v1/alarms`.
pub const MAX_INLINE_IMAGE_BYTES: usize = 11 * 1024;

/// The close codes the server ends a session with.
pub mod close {
    /// The server is shutting down; reconnect (to another instance).
    pub const GOING_AWAY: u16 = 1001;
    /// Too many invalid messages in a row, a flood of messages over the rate
    /// limit, or no `auth` when one is required.
    pub const POLICY: u16 = 1008;
    /// A message over [`super::MAX_MESSAGE_BYTES`].
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client did not read fast enough: its queue filled up.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}
