//! Implementations of the `vigil` subcommands that are not `serve`
//! (`vigil client …` is the `vigil-client` crate).
pub mod backup;
pub mod detect;
pub mod embed;
pub mod erase;
pub mod eval_detector;
pub mod eval_recognizer;
pub mod media_args;
pub mod reindex;
pub mod restore;
pub mod user;
pub mod watch;
