//! Recurring strangers: unknown faces grouped as they arrive, per owner,
//! into persistent anonymous visitors ("Visitor 17") with their first and
//! last sighting, count and sources, so that "the same stranger, the fourth
//! time this week" shows on the alarm.
//!
//! - [`grouping`]: which visitor a new unknown face is.
//! - [`repository`]: the `visitors` collection.
//! - [`service`]: what the API does with them: list, name, merge, erase.

pub mod grouping;
pub mod repository;
mod service;

pub use grouping::Grouping;
pub use repository::{Prototype, VisitorRecord, VisitorScope, Visitors};
pub use service::{NameAs, VisitorError, VisitorService, VisitorSighting};

crate::object_id!(
    /// A visitor's id.
    VisitorId
);
