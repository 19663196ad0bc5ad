//! Implementations of the `vigil` subcommands that are not `serve`.
pub mod detect;
pub mod eval_detector;
pub mod user;
pub mod watch;
