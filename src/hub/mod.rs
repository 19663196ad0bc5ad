//! The WebSocket hub behind `GET /ws`: sessions, topics and fan-out, the
//! clock, Fibonacci, the even/odd counter protocol, alarms sent by edge
//! agents, presence and the message log. docs/websocket.md is the client-facing description.
//!
//! Sessions run on the HTTP workers (actix-ws streams are tied to them);
//! the hub's own tasks (clock, alarm feeds, heartbeat, log writer) run on
//! the main runtime. They meet only through bounded queues and the
//! [`Registry`], never by waiting on each other.

pub mod alarm_feed;
mod batch;
pub mod clock;
pub mod counters;
pub mod fib;
pub mod ingest;
pub mod message_log;
pub mod numbers;
pub mod presence;
pub mod protocol;
pub mod rate;
pub mod session;
pub mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use self::alarm_feed::{AlarmFeed, AlarmStream};
use self::batch::Foreground;
use self::counters::Counters;
use self::fib::FibService;
use self::message_log::{LogSettings, LogWriter, MessageLog};
use self::presence::Presence;
use self::rate::MessageLimit;
use self::topics::{Closing, Registry};
use crate::agents::AlarmIngest;
use crate::alarms::AlarmBus;
use crate::auth::AuthService;
use crate::db::Database;
use crate::media::signed::UrlSigner;

/// The hub's settings, in the units the code uses.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub allow_anonymous: bool,
    pub queue: usize,
    pub heartbeat: Duration,
    pub client_timeout: Duration,
    /// How many messages a session may send (a token bucket per session).
    pub message_limit: MessageLimit,
    pub fib_max_n: u64,
    pub log_clock: bool,
    pub log_ttl_days: u32,
    pub log_buffer: usize,
    /// Where message log entries wait on disk while the database falls behind.
    pub log_spill_dir: std::path::PathBuf,
    pub instance_heartbeat: Duration,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    config: HubConfig,
    instance_id: String,
    registry: Registry,
    presence: Presence,
    counters: Counters,
    log: MessageLog,
    log_writer: Mutex<Option<LogWriter>>,
    log_task: Mutex<Option<JoinHandle<()>>>,
    fib: FibService,
    feed: AlarmFeed,
    signer: UrlSigner,
    /// Checks the credentials of `?token=` and `auth` messages.
    auth: AuthService,
    /// Stores the `alarm` messages of edge agents, as `POST /api/v1/alarms` does.
    ingest: AlarmIngest,
    /// The main runtime: session clean-up that must outlive an HTTP worker goes here.
    runtime: tokio::runtime::Handle,
    heartbeat_ok: AtomicBool,
}

impl Hub {
    /// Must be called inside the main tokio runtime.
    pub fn new(
        db: &Database,
        config: HubConfig,
        instance_id: &str,
        signer: UrlSigner,
        auth: AuthService,
        ingest: AlarmIngest,
    ) -> Self {
        // What connecting clients wait for goes before the message log.
        let foreground = Foreground::default();
        let (log, writer) = MessageLog::new(
            db,
            LogSettings {
                instance_id,
                buffer: config.log_buffer,
                ttl_days: config.log_ttl_days,
                log_clock: config.log_clock,
                spill_dir: config.log_spill_dir.clone(),
                foreground: foreground.clone(),
            },
        );
        Self {
            inner: Arc::new(Inner {
                presence: Presence::new(db, instance_id, config.instance_heartbeat, foreground.clone()),
                counters: Counters::new(db, foreground),
                fib: FibService::new(config.fib_max_n),
                feed: AlarmFeed::new(db),
                log,
                log_writer: Mutex::new(Some(writer)),
                log_task: Mutex::new(None),
                registry: Registry::default(),
                instance_id: instance_id.to_owned(),
                signer,
                auth,
                ingest,
                runtime: tokio::runtime::Handle::current(),
                heartbeat_ok: AtomicBool::new(false),
                config,
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn presence(&self) -> &Presence {
        &self.inner.presence
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn log(&self) -> &MessageLog {
        &self.inner.log
    }

    pub fn fib(&self) -> &FibService {
        &self.inner.fib
    }

    pub fn alarm_feed(&self) -> &AlarmFeed {
        &self.inner.feed
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.inner.signer
    }

    pub fn auth(&self) -> &AuthService {
        &self.inner.auth
    }

    pub fn ingest(&self) -> &AlarmIngest {
        &self.inner.ingest
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// With a reachable database: announces this instance and opens the
    /// alarm change stream before the server accepts anyone, so that the
    /// first subscriber already gets alarms inserted elsewhere.
    pub async fn prepare(&self) -> Option<AlarmStream> {
        match self.presence().beat().await {
            Ok(_) => self.inner.heartbeat_ok.store(true, Ordering::Relaxed),
            Err(err) => {
                tracing::warn!(error = %err, "first instance heartbeat failed; retrying in the background")
            }
        }
        match self.alarm_feed().open().await {
            Ok(stream) => Some(stream),
            Err(err) => {
                tracing::warn!(error = %err, "alarm change stream not open yet; retrying in the background");
                None
            }
        }
    }

    /// Starts the hub's tasks; the caller stops them with the server.
    pub fn start(&self, bus: AlarmBus, first_stream: Option<AlarmStream>) -> Vec<JoinHandle<()>> {
        if let Some(writer) = self.inner.log_writer.lock().expect("log writer lock").take() {
            *self.inner.log_task.lock().expect("log task lock") = Some(tokio::spawn(writer.write_forever()));
        }
        vec![
            tokio::spawn(clock::tick_forever(self.clone())),
            tokio::spawn(alarm_feed::follow_bus(self.clone(), bus)),
            tokio::spawn(alarm_feed::follow_change_stream(self.clone(), first_stream)),
            tokio::spawn(self.clone().heartbeat_forever()),
            tokio::spawn(self.clone().close_sessions_on_signal()),
        ]
    }

    #[tracing::instrument(name = "instance_heartbeat", skip_all, fields(instance = %self.inner.instance_id))]
    async fn heartbeat_forever(self) {
        loop {
            tokio::time::sleep(self.presence().heartbeat).await;
            match self.presence().beat().await {
                Ok(created) => {
                    let was_ok = self.inner.heartbeat_ok.swap(true, Ordering::Relaxed);
                    if created && was_ok {
                        // Another instance gave us up for dead and removed our rows.
                        let rows: Vec<_> = self
                            .registry()
                            .snapshot()
                            .iter()
                            .map(|s| self.presence().row(s))
                            .collect();
                        tracing::warn!(
                            sessions = rows.len(),
                            "this instance had been declared dead; restoring its clients"
                        );
                        if let Err(err) = self.presence().restore(&rows).await {
                            tracing::warn!(error = %err, "could not restore the client list");
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "instance heartbeat failed");
                    continue;
                }
            }
            if let Err(err) = self.presence().reap().await {
                tracing::warn!(error = %err, "could not remove the clients of dead instances");
            }
        }
    }

    /// Long-lived sessions would hold the graceful shutdown for its whole
    /// timeout; closing them with 1001 on SIGTERM/SIGINT lets it finish now
    /// (clients reconnect to another instance).
    async fn close_sessions_on_signal(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!(
            sessions = self.registry().len(),
            "shutting down: closing WebSocket sessions"
        );
        self.registry().close_all(Closing::GoingAway);
    }

    /// After the server stopped: sessions closed, log flushed, this instance
    /// and its clients removed from the database.
    pub async fn shutdown(&self) {
        self.registry().close_all(Closing::GoingAway);
        self.log().stop();
        let task = self.inner.log_task.lock().expect("log task lock").take();
        if let Some(task) = task {
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                tracing::warn!("message log not flushed within 5 s");
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), self.presence().leave()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "could not remove this instance's clients"),
            Err(_) => tracing::warn!("removing this instance's clients timed out; other instances will"),
        }
    }
}
