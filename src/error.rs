//! Errors that say their own code.
//!
//! Every layer has its own `thiserror` enum and implements [`Coded`] beside
//! its definition: the code is part of what the error means, not something
//! the HTTP layer guesses. The API turns any `Coded` error into the JSON body
//! in one place (`api::error`), the WebSocket hub into an `error` message,
//! and both use the one vocabulary of [`ErrorCode`] that the client parses.

pub use vigil_wire::{ErrorCode, FieldError};

/// An error that knows which [`ErrorCode`] it answers to.
pub trait Coded: std::error::Error {
    fn code(&self) -> ErrorCode;

    /// Seconds a client should wait before trying again (429 and 503 answers).
    fn retry_after(&self) -> Option<u64> {
        None
    }

    /// The request's fields that broke a rule, for codes about fields.
    fn fields(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Seconds to wait for a database that is away: its health check runs every
/// few seconds, so sooner would mostly meet it still away.
pub const DATABASE_RETRY_AFTER: u64 = 5;
