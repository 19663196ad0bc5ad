//! `vigil watch --forward URL`: the edge agent. The capture pipeline is
//! `vigil watch`'s (the library); each alarm is encoded as JPEG and queued
//! on disk by the client crate's forwarder, which sends it to the central
//! server's `POST /api/v1/alarms` and keeps it while that server is away.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use vigil::capture::CameraAlarm;
use vigil::cli::watch::{self, parse_agent_name, Forward, WatchArgs, MAX_AGENT_NAME};
use vigil_client::forward::{ForwardOptions, ForwardState, ForwardStatus, Forwarder, OutgoingAlarm};

/// How long the agent tries to send what is queued once capture has stopped.
const FLUSH_WITHIN: Duration = Duration::from_secs(5);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `vigil watch` with `--forward`.
pub async fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let server = args.forward.clone().context("--forward is not set")?;
    let api_key = args
        .api_key
        .clone()
        .filter(|key| !key.trim().is_empty())
        .context("--forward needs --api-key (or VIGIL_API_KEY): a key of the central server's, e.g. one made with the scope alarms:write")?;
    let agent = match &args.agent_name {
        Some(name) => name.clone(),
        None => default_agent_name(),
    };
    let options = ForwardOptions {
        ca_cert: args.ca_cert.clone(),
        queue_max: args.queue_max as usize,
        ..ForwardOptions::new(&server, &api_key, args.queue_dir.clone())
    };
    let forwarder = Forwarder::start(options)?;
    let queue = forwarder.queue();
    eprintln!(
        "forwarding alarms to {} as {agent}; queue {} ({} waiting, at most {})",
        forwarder.server().key(),
        queue.dir().display(),
        queue.len(),
        queue.max()
    );
    let printer = tokio::spawn(print_changes(forwarder.subscribe()));
    let agent = Arc::new(Agent {
        forwarder,
        agent,
        printer: Mutex::new(Some(printer)),
    });
    watch::watch(args, Some(agent.clone())).await
}

/// The host's name as an agent name (cut to fit, `/` replaced), or `vigil-agent`.
fn default_agent_name() -> String {
    let raw = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '/' { '-' } else { c })
        .take(MAX_AGENT_NAME)
        .collect();
    parse_agent_name(&name).unwrap_or_else(|_| "vigil-agent".to_owned())
}

/// `forward sent=… queued=…` on stdout now and whenever it changes, and the
/// reason on stderr when forwarding stops.
async fn print_changes(mut status: tokio::sync::watch::Receiver<ForwardStatus>) {
    let mut stopped = false;
    loop {
        let now = status.borrow_and_update().clone();
        println!("forward {}", now.fields());
        if now.state == ForwardState::Stopped && !stopped {
            stopped = true;
            if let Some(error) = &now.last_error {
                eprintln!("error: {error}");
            }
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

struct Agent {
    forwarder: Forwarder,
    agent: String,
    printer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Agent {
    fn outgoing(&self, alarm: &CameraAlarm, jpeg: Vec<u8>) -> OutgoingAlarm {
        let source = format!("{}/{}", self.agent, alarm.camera_id);
        let faces: Vec<_> = alarm
            .detection
            .faces
            .iter()
            // The server takes only boxes with an area; a face clamped to
            // nothing at the frame's edge says nothing anyway.
            .filter(|f| f.bbox.width > 0.0 && f.bbox.height > 0.0)
            .copied()
            .collect();
        let message = match faces.len() {
            1 => format!("1 face at {source}"),
            n => format!("{n} faces at {source}"),
        };
        OutgoingAlarm {
            date: alarm.captured_at,
            source,
            message: Some(message),
            faces: Some(faces),
            jpeg,
        }
    }
}

impl Forward for Agent {
    fn alarm<'a>(&'a self, alarm: &'a CameraAlarm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let image = alarm.image.clone();
            let jpeg = tokio::task::spawn_blocking(move || vigil::vision::encode_jpeg(&image))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            // A full queue drops the alarm; the `forward` line counts it.
            self.forwarder
                .push(self.outgoing(alarm, jpeg))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn finish(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let waiting = self.forwarder.status().queued;
            if waiting > 0 && self.forwarder.status().state != ForwardState::Stopped {
                eprintln!(
                    "sending {waiting} queued alarms (for up to {} s; Ctrl-C again to stop now)",
                    FLUSH_WITHIN.as_secs()
                );
            }
            let within = async {
                // A second Ctrl-C ends the wait (the first stopped capture).
                tokio::select! {
                    status = self.forwarder.close(FLUSH_WITHIN) => status,
                    _ = tokio::signal::ctrl_c() => self.forwarder.close(Duration::ZERO).await,
                }
            };
            let status = within.await;
            let printer = self.printer.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(printer) = printer {
                printer.abort();
                let _ = printer.await;
            }
            println!("summary forward {}", status.fields());
            if status.queued > 0 {
                eprintln!(
                    "{} alarms stay queued in {}; the next `vigil watch --forward` with this --queue-dir sends them first",
                    status.queued,
                    self.forwarder.queue().dir().display()
                );
            }
            status.state != ForwardState::Stopped
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_a_valid_agent_name() {
        let name = default_agent_name();
        assert!(parse_agent_name(&name).is_ok(), "{name}");
    }
}
