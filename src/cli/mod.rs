//! Implementations of the `vigil` subcommands (`vigil client …` is the
//! `vigil-client` crate).
//!
//! Every entry point the binary calls is synchronous: an async one runs on a
//! runtime of its own ([`block_on`]). rustc never shares a coroutine's code
//! between crates in an optimised build, so a binary that awaited
//! `Application::build` compiled the whole server a second time (69 s of a
//! 12-minute cold release build); the binary now only calls functions.
pub mod backup;
pub mod detect;
pub mod embed;
pub mod erase;
pub mod eval_detector;
pub mod eval_recognizer;
pub mod media_args;
pub mod migrate;
pub mod reindex;
pub mod restore;
pub mod serve;
pub mod user;
pub mod watch;

/// Runs a subcommand's future to completion on a new multi-threaded runtime.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
