//! `vigil client watch`: alarms as they happen, over the hub. (Not to be
//! confused with `vigil watch`, the server's local cameras.)
//!
//! When the connection drops it reconnects with backoff and then fetches,
//! over HTTP, the alarms raised while it was away: from the last clock tick
//! it saw (minus a margin, as an alarm and a tick may cross), skipping the
//! ones already printed.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use vigil_wire::alarms::AlarmView;
use vigil_wire::hub::{ClientId, ClientMessage, ServerMessage, Topic};

use super::api::ApiClient;
use super::backoff::Backoff;
use super::error::ClientError;
use super::ws::{Heard, HubSession, HubTarget};
use super::{Ending, Interrupt};

#[derive(Debug, clap::Args)]
pub struct AlarmsArgs {
    /// Print each alarm as a JSON line (the shape of GET /api/v1/alarms/{id}).
    #[arg(long)]
    pub json: bool,

    /// Exit after this many alarms.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Client id of this session (listed by GET /api/v1/clients); generated when absent.
    #[arg(long)]
    pub client_id: Option<ClientId>,
}

/// Alarms fetched after a reconnect start this long before the last sign of life.
const CATCH_UP_MARGIN: Duration = Duration::from_secs(10);
/// Most alarms fetched after one reconnect.
const CATCH_UP_LIMIT: usize = 1000;
/// Ids remembered to skip duplicates between the live feed and a catch-up.
const REMEMBERED: usize = 4096;

/// The last alarm ids printed, bounded.
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    fn new() -> Self {
        Self {
            order: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    /// `true` the first time an id is offered.
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.ids.insert(id.to_owned());
        true
    }
}

struct Watcher<'a> {
    api: &'a ApiClient,
    args: &'a AlarmsArgs,
    seen: Seen,
    printed: u64,
    /// The server's time at its last clock tick: alarms before it were
    /// delivered live. (Alarm dates are not used: another instance's clock
    /// may run ahead.)
    watermark: Option<DateTime<Utc>>,
}

impl Watcher<'_> {
    fn done(&self) -> bool {
        self.args.count.is_some_and(|n| self.printed >= n)
    }

    fn show(&mut self, alarm: &AlarmView) {
        if self.done() || !self.seen.first_time(&alarm.id) {
            return;
        }
        if self.args.json {
            super::emit(&serde_json::to_string(alarm).expect("alarms serialise"));
        } else {
            let faces = if alarm.face_count == 1 { "face" } else { "faces" };
            let camera = alarm
                .camera_id
                .as_deref()
                .map(|c| format!(" camera={c}"))
                .unwrap_or_default();
            super::emit(&format!(
                "{}  {}  ({} {faces}, source={}{camera})  {}",
                alarm.date.to_rfc3339_opts(SecondsFormat::Millis, true),
                alarm.message,
                alarm.face_count,
                alarm.source,
                self.api.server().absolute(&alarm.img),
            ));
        }
        self.printed += 1;
    }

    /// Connects and subscribes to alarms; the server's time from `hello`.
    async fn subscribe(&self) -> Result<(HubSession, Option<DateTime<Utc>>), ClientError> {
        let target = HubTarget {
            api: self.api,
            client_id: self.args.client_id.as_ref(),
        };
        let mut session = HubSession::connect(&target).await?;
        session
            .send(&ClientMessage::Subscribe {
                topics: vec![Topic::Alarms],
            })
            .await?;
        let mut server_time = None;
        loop {
            match session.next().await? {
                Heard::Message(ServerMessage::Hello { server_time: t, .. }) => server_time = Some(t),
                Heard::Message(ServerMessage::Subscribed { topics }) if topics.contains(&Topic::Alarms) => {
                    return Ok((session, server_time))
                }
                Heard::Error { code, message, .. } => return Err(ClientError::Refused { code, message }),
                _ => {}
            }
        }
    }

    /// The alarms raised while disconnected, printed once each.
    async fn catch_up(&mut self, mark: DateTime<Utc>) -> Result<(), ClientError> {
        eprintln!("watch: reconnected; fetching alarms raised meanwhile");
        let from = mark - chrono::Duration::from_std(CATCH_UP_MARGIN).expect("small");
        let recent = self.api.alarms_since(from, CATCH_UP_LIMIT).await?;
        if recent.left_out {
            eprintln!(
                "watch: more than {CATCH_UP_LIMIT} alarms were raised meanwhile; only the newest \
                 {CATCH_UP_LIMIT} are printed (GET /api/v1/alarms?from={} lists them all)",
                from.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        for alarm in &recent.alarms {
            self.show(alarm);
        }
        Ok(())
    }

    /// One session: subscribe, catch up after a reconnect, print until the
    /// end. `Ok` means stop watching; a transient error means reconnect.
    /// Ctrl-C ends it at any step.
    async fn session(&mut self, backoff: &mut Backoff, interrupt: &Interrupt) -> Result<Ending, ClientError> {
        let Some(subscribed) = interrupt.or(self.subscribe()).await else {
            return Ok(Ending::Interrupted);
        };
        let (mut session, server_time) = subscribed?;
        backoff.reset();
        match self.watermark {
            Some(mark) => {
                let Some(caught_up) = interrupt.or(self.catch_up(mark)).await else {
                    session.close().await;
                    return Ok(Ending::Interrupted);
                };
                caught_up?;
            }
            None => {
                eprintln!(
                    "watch: watching alarms on {} (Ctrl-C to stop)",
                    self.api.server().key()
                );
                self.watermark = server_time;
            }
        }
        while !self.done() {
            tokio::select! {
                event = session.next() => match event? {
                    Heard::Message(ServerMessage::Alarm(alarm)) => self.show(&alarm),
                    Heard::Message(ServerMessage::Clock { now }) => self.bump(now),
                    Heard::Error { code, message, .. } => {
                        eprintln!("watch: the server refused a message: {code}: {message}");
                    }
                    _ => {}
                },
                () = interrupt.wait() => {
                    session.close().await;
                    return Ok(Ending::Interrupted);
                }
            }
        }
        session.close().await;
        Ok(Ending::Done)
    }

    fn bump(&mut self, time: DateTime<Utc>) {
        if self.watermark.is_none_or(|mark| time > mark) {
            self.watermark = Some(time);
        }
    }
}

pub async fn run(api: &ApiClient, args: AlarmsArgs) -> Result<Ending, ClientError> {
    api.require_credentials()?;
    let interrupt = Interrupt::listen();
    let mut watcher = Watcher {
        api,
        args: &args,
        seen: Seen::new(),
        printed: 0,
        watermark: None,
    };
    let mut backoff = Backoff::default();
    loop {
        let error = match watcher.session(&mut backoff, &interrupt).await {
            Ok(ending) => return Ok(ending),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let wait = backoff.next_random();
        eprintln!("watch: {error}; reconnecting in {:.1} s", wait.as_secs_f64());
        if interrupt.or(tokio::time::sleep(wait)).await.is_none() {
            return Ok(Ending::Interrupted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_are_skipped_and_memory_is_bounded() {
        let mut seen = Seen::new();
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
        for i in 0..REMEMBERED {
            assert!(seen.first_time(&i.to_string()));
        }
        assert_eq!(seen.ids.len(), REMEMBERED);
        // "a" was the oldest and has been forgotten.
        assert!(seen.first_time("a"));
    }
}
