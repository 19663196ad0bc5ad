//! What the HTTP-level tests share, one file per concern:
//! - `app`: a server in this process ([`spawn_app`]), its options (the
//!   `vigil serve` flags, shared with the child processes), the HTTP API as
//!   the tests speak it ([`Api`]: users, tokens, API keys, uploads) and its
//!   error bodies;
//! - `bodies`: typed response bodies that vigil-wire has no type for;
//! - `child`: the `vigil` binary as a child process, `vigil serve` included
//!   ([`spawn_child`]), signals, reading a child's output;
//! - `database_server`: a database server of the test's own, to kill and
//!   restart;
//! - `cameras`: a camera's status, and waiting for a state;
//! - `mosquitto`: an MQTT broker of the test's own, to stop and restart,
//!   and a subscriber that sees everything published on it;
//! - `jobs`: videos and asynchronous uploads submitted, jobs waited for;
//! - `ws`: the WebSocket hub's client side;
//! - `assets`: photos fetched by `make models`, images, clips and files made
//!   on the spot.

mod app;
mod assets;
mod bodies;
mod cameras;
mod child;
mod database_server;
mod jobs;
mod mosquitto;
mod ws;

pub use app::*;
pub use assets::*;
pub use bodies::*;
pub use child::*;
pub use database_server::*;
pub use jobs::*;
pub use mosquitto::*;
pub use ws::*;
