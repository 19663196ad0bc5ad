//! What the HTTP-level tests share, one file per concern:
//! - `app`: a server in this process ([`spawn_app`]), its options, and the
//!   requests tests make to it (users, tokens, API keys, uploads, error
//!   bodies);
//! - `child`: the `vigil` binary as a child process, signals, reading a
//!   child's output;
//! - `ws`: the WebSocket hub's client side;
//! - `assets`: photos fetched by `make models`, images and clips made on the
//!   spot.

mod app;
mod assets;
mod child;
mod ws;

pub use app::*;
pub use assets::*;
pub use child::*;
pub use ws::*;
