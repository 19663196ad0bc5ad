//! The contract between vigil and its clients: the error codes, the HTTP
//! bodies a client reads, the WebSocket protocol, and the image kinds an
//! upload may be. The server (`vigil`) serialises these types and the
//! command-line client (`vigil-client`) deserialises the same ones, so the
//! two cannot drift apart; the OpenAPI document is generated from them too.
//!
//! Nothing here knows about HTTP frameworks, databases or models.

pub mod alarm_rules;
pub mod alarms;
pub mod audit;
pub mod auth;
pub mod detections;
pub mod error;
pub mod faces;
pub mod hub;
pub mod jobs;
pub mod media;
pub mod paging;
pub mod people;
pub mod search;
pub mod telemetry;
pub mod text;
pub mod visitors;
pub mod webhooks;

pub use error::{ErrorBody, ErrorCode, ErrorDetail, FieldError};

/// Images are kept unless a body says otherwise (`image_kept`): bodies sent
/// before the field existed had theirs.
fn kept() -> bool {
    true
}
