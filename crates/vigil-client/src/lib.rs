//! `vigil client`: a command-line client of a vigil server. It uploads
//! images and sampled video frames (or whole videos, analysed by the
//! server as jobs), prints alarms as they happen, and runs
//! the hub's counter protocol and Fibonacci command, over HTTP(S) and
//! WebSocket (ws:// or wss://). [`cli`] holds the subcommands' flags and
//! wires them; the `vigil` binary mounts them as `vigil client …`.
//!
//! It speaks to the server only through `vigil-wire`, the types both sides
//! share: nothing here depends on the server crate.

pub mod alarms;
pub mod api;
pub mod backoff;
pub mod cli;
pub mod counter;
pub mod error;
pub mod fib;
pub mod forward;
pub mod login;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod upload;
pub mod ws;

use std::future::Future;
use std::time::Duration;

pub use cli::{run, ClientArgs, ClientCommand};
pub use error::{ApiFailure, ClientError, FailureCode};

/// How `watch` and `counter` end when no error stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `--count` or `--duration` reached.
    Done,
    /// Ctrl-C.
    Interrupted,
}

/// Ctrl-C for a command that runs until stopped. Once tokio handles SIGINT
/// it handles it for the rest of the process, so a Ctrl-C that came while
/// nothing was waiting for it (during a reconnect, say) would be lost: one
/// task listens for the whole command, and every wait can give way to it.
#[derive(Clone)]
pub struct Interrupt(tokio::sync::watch::Receiver<bool>);

impl Interrupt {
    pub fn listen() -> Self {
        let (pressed, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = pressed.send(true);
            }
        });
        Self(rx)
    }

    /// Resolves once Ctrl-C has been pressed (at once if it was already).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|pressed| *pressed).await.is_err() {
            // No handler could be installed: SIGINT still ends the process.
            std::future::pending::<()>().await;
        }
    }

    /// `work`'s result, or `None` when Ctrl-C came first (`work` is dropped).
    pub async fn or<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.wait() => None,
            out = work => Some(out),
        }
    }
}

/// Prints one result line on stdout. When the reader has gone away
/// (`vigil client watch | head -1`) there is no one left to tell: exit
/// quietly instead of panicking on the broken pipe.
pub fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// `30s`, `2m`, `500ms`, `1h`, or plain seconds (`2.5`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(366 * 24 * 3600))
        .ok_or_else(|| format!("`{raw}` must be above zero and at most a year"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "0", "-1s", "5 parsecs", "1e999", "9999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
