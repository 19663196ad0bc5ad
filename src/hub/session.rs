//! One WebSocket connection, from `hello` to close.
//!
//! Two tasks per connection: this one reads frames and answers them, the
//! writer moves queued frames to the socket. Replies and broadcasts alike go
//! through the bounded queue ([`SessionHandle::push`]), so a client that
//! stops reading fills its own queue and is closed with 1013, while the
//! reader keeps watching heartbeats and the rest of the process never waits.
//!
//! An `alarm` is stored on the main runtime ([`super::ingest`]), several
//! at a time, while the session reads on; its `ack` (or `error`) is queued
//! like any reply when the alarm is stored.
//!
//! The socket itself is the HTTP layer's business (`api::ws` adapts
//! actix-ws to [`Socket`] and [`ClientFrame`]): this module is the protocol.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use vigil_wire::hub::{
    close, ClientId, ClientMessage, CounterValue, FibN, InlineAlarm, Refusal, ServerMessage, Topic,
    MAX_MESSAGE_BYTES,
};
use vigil_wire::ErrorCode;

use super::fib::FibError;
use super::ingest;
use super::message_log::{Direction, LogPayload};
use super::protocol;
use super::rate::{MessageBudget, Verdict};
use super::topics::{Closing, Outgoing, SessionHandle, Viewer};
use super::Hub;
use crate::agents::IngestError;
use crate::auth::api_keys::KeyScope;
use crate::auth::Principal;
use crate::error::Coded;
use crate::observability::series;

/// Consecutive refused messages after which the server closes with 1008.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// `alarm` messages of one session being stored at once; one more is
/// refused with `rate_limited` until an `ack` comes.
pub const MAX_ALARMS_IN_FLIGHT: usize = 8;

/// What the handshake established.
pub struct SessionStart {
    pub client_id: ClientId,
    pub principal: Option<Principal>,
    pub remote_addr: Option<String>,
}

/// A frame from the client, as the socket hands it over.
#[derive(Debug)]
pub enum ClientFrame {
    Text(String),
    /// Binary frames are refused; only their size is logged.
    Binary(usize),
    Ping(Bytes),
    Pong,
    Close(Option<CloseFrame>),
}

/// Why the socket could not hand over the next frame.
#[derive(Debug)]
pub enum FrameError {
    /// A message over [`MAX_MESSAGE_BYTES`] (one frame, or fragments together).
    TooBig,
    /// Anything else that broke the connection: a protocol violation, I/O.
    Broken(String),
}

/// A close frame: its code, and the reason text when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: Option<String>,
}

/// The sending half of a WebSocket connection.
pub trait Socket: Clone + 'static {
    type Closed: std::fmt::Debug;

    fn text(&mut self, text: bytestring::ByteString) -> LocalBoxFuture<'_, Result<(), Self::Closed>>;
    fn ping(&mut self) -> LocalBoxFuture<'_, Result<(), Self::Closed>>;
    fn pong(&mut self, bytes: Bytes) -> LocalBoxFuture<'_, Result<(), Self::Closed>>;
    /// Sends the close frame (or none) and ends the connection.
    fn close(self, frame: Option<CloseFrame>) -> LocalBoxFuture<'static, ()>;
}

/// How a session ended.
#[derive(Debug)]
enum End {
    ClientClosed(Option<CloseFrame>),
    /// The TCP connection ended without a close frame.
    Vanished,
    /// The connection broke (a protocol violation at the WebSocket level).
    Broken(String),
    /// The client sent a message over [`MAX_MESSAGE_BYTES`].
    TooBig,
    /// Nothing at all (not even a pong) within the client timeout.
    TimedOut,
    Server(Closing),
}

type PendingFib = LocalBoxFuture<'static, (Value, u64, Result<String, FibError>)>;

/// An alarm being stored: the message's `id`, and the alarm's id or why not
/// (a task that ended without an answer: the runtime shutting down).
type PendingAlarm =
    LocalBoxFuture<'static, (Value, Result<Result<String, IngestError>, tokio::task::JoinError>)>;

struct Session {
    hub: Hub,
    handle: Arc<SessionHandle>,
    /// Who authenticated, and with which credential.
    principal: Option<Principal>,
    errors: u32,
    budget: MessageBudget,
    alarms: FuturesUnordered<PendingAlarm>,
}

/// A credential that may only send alarms (an edge agent's API key).
fn agent_only(principal: &Principal) -> bool {
    principal.scope() != KeyScope::Full
}

/// Counts the session in [`series::WS_SESSIONS`] for as long as it lives,
/// however its task ends.
struct OpenSession;

impl OpenSession {
    fn start() -> Self {
        ::metrics::gauge!(series::WS_SESSIONS).increment(1.0);
        OpenSession
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        ::metrics::gauge!(series::WS_SESSIONS).decrement(1.0);
    }
}

/// Removes the session from the registry and `ws_clients` even when the
/// task is dropped mid-way (its worker stopping).
struct Departure {
    hub: Hub,
    key: Option<u64>,
    session_id: String,
    done: bool,
}

impl Departure {
    async fn now(&mut self) {
        if let Some(key) = self.key.take() {
            self.hub.registry().remove(key);
        }
        // Written by the presence task on the main runtime, where the
        // database client lives; if the process is going away, the
        // instance's rows go anyway.
        if let Err(err) = self.hub.presence().disconnected(&self.session_id).await {
            tracing::warn!(error = %err, "could not remove the client from ws_clients; it goes with this instance's heartbeat");
        }
        self.done = true;
    }
}

impl Drop for Departure {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(key) = self.key.take() {
            self.hub.registry().remove(key);
        }
        let presence = self.hub.presence().clone();
        let session_id = std::mem::take(&mut self.session_id);
        self.hub.runtime().spawn(async move {
            let _ = presence.disconnected(&session_id).await;
        });
    }
}

#[tracing::instrument(name = "ws_session", skip_all, fields(session, client = %start.client_id, user))]
pub async fn run<K: Socket>(
    hub: Hub,
    socket: K,
    frames: impl Stream<Item = Result<ClientFrame, FrameError>> + Unpin,
    start: SessionStart,
) {
    let _open = OpenSession::start();
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::Span::current().record("session", session_id.as_str());
    let (handle, out_rx, closing) = SessionHandle::new(
        session_id.clone(),
        start.client_id,
        start.remote_addr,
        hub.config().queue,
    );
    if let Some(principal) = &start.principal {
        let _ = handle.viewer.set(Viewer::of(principal));
        tracing::Span::current().record("user", tracing::field::display(principal.user_id));
        if agent_only(principal) {
            // A channel for alarms: nothing is pushed, not even the clock.
            handle.unsubscribe(&Topic::ALL);
        }
    }
    let mut departure = Departure {
        hub: hub.clone(),
        key: None,
        session_id,
        done: false,
    };
    // Both round trips at once (each batched with other sessions').
    let greets = handle.viewer.get().is_some() || hub.config().allow_anonymous;
    let (recorded, value) = tokio::join!(hub.presence().connected(hub.presence().row(&handle)), async {
        match greets {
            true => Some(hub.counters().get(&handle.client_id, handle.user_id()).await),
            false => None,
        }
    });
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "could not record the client in ws_clients");
    }
    tracing::debug!("WebSocket session started");

    // The socket belongs to this connection's worker thread: a local task.
    let writer = tokio::task::spawn_local(write(socket.clone(), out_rx, closing.clone()));
    let mut session = Session {
        hub: hub.clone(),
        handle: handle.clone(),
        principal: start.principal,
        errors: 0,
        budget: MessageBudget::new(hub.config().message_limit, Instant::now()),
        alarms: FuturesUnordered::new(),
    };
    if let Some(value) = value {
        session.greet(value);
    }
    // Only now: `hello` is always the first message, before any broadcast.
    departure.key = Some(hub.registry().insert(handle.clone()));
    let end = session.read(frames, closing).await;

    departure.now().await;
    let server_close = |code, text: &str| {
        Some(CloseFrame {
            code,
            reason: Some(text.to_owned()),
        })
    };
    let (stop_writer, close) = match &end {
        End::ClientClosed(frame) => (Closing::GoingAway, Some((frame.clone(), Duration::from_secs(1)))),
        End::Vanished | End::Broken(_) => (Closing::GoingAway, None),
        // The message is dropped unhandled: a close frame tells the client
        // why, where a dropped connection would leave it guessing.
        End::TooBig => (
            Closing::GoingAway,
            Some((
                Some(CloseFrame {
                    code: close::MESSAGE_TOO_BIG,
                    reason: Some(format!("message too big: at most {MAX_MESSAGE_BYTES} bytes")),
                }),
                Duration::from_secs(1),
            )),
        ),
        End::TimedOut => (
            Closing::GoingAway,
            Some((
                Some(CloseFrame {
                    code: close::GOING_AWAY,
                    reason: None,
                }),
                Duration::from_millis(100),
            )),
        ),
        End::Server(why) => {
            let (text, grace) = match why {
                // The queue is full because the socket is: the close frame
                // waits behind it, for as long as a client may stay silent.
                Closing::TooSlow => ("too slow: messages were piling up", hub.config().client_timeout),
                Closing::Policy => ("too many invalid messages", Duration::from_secs(1)),
                Closing::Flood => ("too many messages: over the rate limit", Duration::from_secs(1)),
                Closing::GoingAway => ("server shutting down", Duration::from_secs(1)),
            };
            (*why, Some((server_close(why.close_code(), text), grace)))
        }
    };
    handle.close(stop_writer);
    // The writer flushes queued frames (the last error before a 1008, say) first.
    let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
    if let Some((frame, grace)) = close {
        let _ = tokio::time::timeout(grace, socket.close(frame)).await;
    }
    match end {
        End::TimedOut => tracing::info!("WebSocket client silent beyond the timeout; connection dropped"),
        End::Broken(err) => tracing::info!(error = %err, "WebSocket protocol error; connection dropped"),
        End::TooBig => tracing::info!(
            limit = MAX_MESSAGE_BYTES,
            "WebSocket client sent a message over the limit; closed with 1009"
        ),
        End::Server(Closing::Policy) => {
            tracing::info!("WebSocket client closed with 1008 after repeated invalid messages")
        }
        End::Server(Closing::Flood) => {
            tracing::info!("WebSocket client closed with 1008: messages kept coming over the rate limit")
        }
        other => tracing::debug!(end = ?other, "WebSocket session ended"),
    }
}

/// Moves queued frames to the socket until the session closes.
async fn write<K: Socket>(
    mut socket: K,
    mut frames: mpsc::Receiver<Outgoing>,
    mut closing: watch::Receiver<Option<Closing>>,
) {
    let too_slow = |c: &Option<Closing>| *c == Some(Closing::TooSlow);
    loop {
        let frame = tokio::select! {
            biased;
            _ = closing.wait_for(Option::is_some) => break,
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => return,
            },
        };
        let mut closing_slow = closing.clone();
        tokio::select! {
            biased;
            // Only a slow client loses the frame being written: its socket is stuck.
            _ = closing_slow.wait_for(too_slow) => return,
            sent = send(&mut socket, frame) => if sent.is_err() { return },
        }
    }
    if too_slow(&closing.borrow()) {
        return;
    }
    let flush = async {
        while let Ok(frame) = frames.try_recv() {
            if send(&mut socket, frame).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}

async fn send<K: Socket>(socket: &mut K, frame: Outgoing) -> Result<(), K::Closed> {
    match frame {
        Outgoing::Text(text) => socket.text(text).await,
        Outgoing::Ping => socket.ping().await,
        Outgoing::Pong(bytes) => socket.pong(bytes).await,
    }
}

impl Session {
    fn config(&self) -> &super::HubConfig {
        self.hub.config()
    }

    fn authenticated(&self) -> bool {
        self.handle.viewer.get().is_some()
    }

    async fn read(
        &mut self,
        mut frames: impl Stream<Item = Result<ClientFrame, FrameError>> + Unpin,
        mut closing: watch::Receiver<Option<Closing>>,
    ) -> End {
        let started = Instant::now();
        let mut last_seen = Instant::now();
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + self.config().heartbeat, self.config().heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Option<PendingFib> = None;
        loop {
            let computing = pending.is_some();
            tokio::select! {
                biased;
                why = closing.wait_for(Option::is_some) => {
                    let why = why.ok().and_then(|w| *w).unwrap_or(Closing::GoingAway);
                    return End::Server(why);
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() >= self.config().client_timeout {
                        return End::TimedOut;
                    }
                    if !self.authenticated()
                        && !self.config().allow_anonymous
                        && started.elapsed() >= self.config().client_timeout
                    {
                        self.refuse(Refusal::new(ErrorCode::Unauthenticated, "no auth message in time"), Value::Null);
                        self.handle.close(Closing::Policy);
                        continue;
                    }
                    self.handle.push(Outgoing::Ping);
                }
                done = async { pending.as_mut().expect("guarded by `computing`").await }, if computing => {
                    pending = None;
                    self.fib_done(done);
                }
                Some(done) = self.alarms.next(), if !self.alarms.is_empty() => self.alarm_done(done),
                // While a Fibonacci number is computed, further frames wait
                // in the socket: one client cannot queue unbounded work.
                frame = frames.next(), if !computing => {
                    last_seen = Instant::now();
                    match frame {
                        None => return End::Vanished,
                        Some(Err(FrameError::TooBig)) => return End::TooBig,
                        Some(Err(FrameError::Broken(err))) => return End::Broken(err),
                        Some(Ok(ClientFrame::Text(text))) => pending = self.on_text(&text).await,
                        Some(Ok(ClientFrame::Binary(len))) => {
                            self.log_in("binary", LogPayload::full(&serde_json::json!({ "bytes": len })));
                            if !self.over_budget(Value::Null) {
                                self.refuse(
                                    Refusal::new(ErrorCode::BinaryNotSupported, "messages are JSON text frames"),
                                    Value::Null,
                                );
                            }
                        }
                        Some(Ok(ClientFrame::Ping(bytes))) => {
                            self.handle.push(Outgoing::Pong(bytes));
                        }
                        Some(Ok(ClientFrame::Pong)) => {}
                        Some(Ok(ClientFrame::Close(frame))) => return End::ClientClosed(frame),
                    }
                }
            }
        }
    }

    fn log_in(&self, kind: &str, payload: LogPayload) {
        self.hub.log().record(
            &self.handle.session_id,
            &self.handle.client_id,
            self.handle.user_id(),
            Direction::In,
            kind,
            payload,
        );
    }

    fn send(&self, message: ServerMessage) {
        debug_assert!(
            !matches!(&message, ServerMessage::Error { code, .. } if !vigil_wire::hub::ERROR_CODES.contains(code)),
            "{message:?} is not in the WebSocket's list of error codes"
        );
        let text = message.text();
        let payload = LogPayload::of_frame(&text, || {
            mongodb::bson::to_bson(&message).unwrap_or(mongodb::bson::Bson::Null)
        });
        if self.handle.push(Outgoing::Text(text.into())) {
            self.hub.log().record(
                &self.handle.session_id,
                &self.handle.client_id,
                self.handle.user_id(),
                Direction::Out,
                message.kind(),
                payload,
            );
        }
    }

    /// Takes a token for a message from the client; without one, answers
    /// `rate_limited` (and closes a flood) and says the message is not to
    /// be handled. These refusals have a closing rule of their own
    /// ([`MessageBudget`]) instead of counting among the refusals in a row:
    /// at twice the rate every other message is handled, which would reset
    /// that count for ever.
    fn over_budget(&mut self, id: Value) -> bool {
        let verdict = self.budget.take(Instant::now());
        if verdict == Verdict::Handle {
            return false;
        }
        let limit = self.config().message_limit;
        self.send(ServerMessage::error(
            Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "over {} messages a second (bursts of {}): this one was not handled",
                    limit.per_second, limit.burst
                ),
            ),
            id,
        ));
        if verdict == Verdict::Close {
            self.handle.close(Closing::Flood);
        }
        true
    }

    /// An `error` to this client only; counts towards the 1008 limit.
    fn refuse(&mut self, refusal: Refusal, id: Value) {
        self.send(ServerMessage::error(refusal, id));
        self.errors += 1;
        if self.errors >= MAX_CONSECUTIVE_ERRORS {
            self.handle.close(Closing::Policy);
        }
    }

    /// An `error` that is the server's fault: not counted against the client.
    fn server_error(&self, error: &impl Coded, message: &str) {
        self.send(ServerMessage::Error {
            code: error.code(),
            message: message.to_owned(),
            id: Value::Null,
        });
    }

    async fn hello(&mut self) {
        let value = self
            .hub
            .counters()
            .get(&self.handle.client_id, self.handle.user_id())
            .await;
        self.greet(value);
    }

    fn greet(&mut self, value: Result<CounterValue, Arc<crate::db::DbError>>) {
        let user = self.handle.user_id();
        let value = match value {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the client's counter value");
                self.server_error(
                    &*err,
                    "the last counter value could not be read; hello.value is 0",
                );
                CounterValue::default()
            }
        };
        self.send(ServerMessage::Hello {
            client_id: self.handle.client_id.clone(),
            value,
            server_time: chrono::Utc::now(),
            authenticated: user.is_some(),
            user_id: user.map(|u| u.to_string()),
            topics: self.handle.topics(),
            heartbeat_secs: self.config().heartbeat.as_secs(),
        });
    }

    async fn on_text(&mut self, text: &str) -> Option<PendingFib> {
        let incoming = protocol::parse(text);
        self.log_in(&incoming.kind, incoming.payload);
        if self.over_budget(incoming.id.clone()) {
            return None;
        }
        let message = match incoming.message {
            Ok(message) => message,
            Err(refusal) => {
                self.refuse(refusal, incoming.id);
                return None;
            }
        };
        if !self.authenticated()
            && !self.config().allow_anonymous
            && !matches!(message, ClientMessage::Auth { .. } | ClientMessage::Ping { .. })
        {
            self.refuse(
                Refusal::new(
                    ErrorCode::Unauthenticated,
                    "this server needs credentials: connect with ?token= or send an auth message first",
                ),
                Value::Null,
            );
            return None;
        }
        if self.principal.as_ref().is_some_and(agent_only)
            && !matches!(message, ClientMessage::Alarm(_) | ClientMessage::Ping { .. })
        {
            self.refuse(
                Refusal::new(
                    ErrorCode::ScopeForbidden,
                    format!(
                        "this API key may only send `alarm` and `ping`; `{}` needs an access token or a key of full scope",
                        incoming.kind
                    ),
                ),
                incoming.id,
            );
            return None;
        }
        let accepted = match message {
            ClientMessage::Auth { token } => self.auth(&token).await,
            ClientMessage::Subscribe { topics } => self.subscribe(&topics, true),
            ClientMessage::Unsubscribe { topics } => self.subscribe(&topics, false),
            ClientMessage::Fib { id, n } => return self.fib(id, n),
            ClientMessage::Number { kind } => {
                let number = super::numbers::draw(kind);
                self.send(ServerMessage::Number {
                    kind: number.kind,
                    value: number.value,
                });
                Ok(())
            }
            ClientMessage::Value { value } => {
                self.keep_value(value).await;
                Ok(())
            }
            ClientMessage::Ping { id } => {
                self.send(ServerMessage::Pong { id });
                Ok(())
            }
            ClientMessage::Alarm(alarm) => {
                self.alarm(alarm);
                return None;
            }
        };
        match accepted {
            Ok(()) => self.errors = 0,
            Err(refusal) => self.refuse(refusal, Value::Null),
        }
        None
    }

    async fn auth(&mut self, token: &str) -> Result<(), Refusal> {
        if self.authenticated() {
            return Err(Refusal::new(
                ErrorCode::AlreadyAuthenticated,
                "this session is authenticated already; reconnect to change identity",
            ));
        }
        let principal = match self.hub.auth().authenticate_token(token).await {
            Ok(principal) => principal,
            Err(err) if err.code().is_server_side() => {
                tracing::warn!(error = %err, "could not check WebSocket credentials");
                self.server_error(&err, "credentials could not be checked; try again");
                return Ok(());
            }
            Err(err) => return Err(Refusal::new(ErrorCode::InvalidToken, err.to_string())),
        };
        let _ = self.handle.viewer.set(Viewer::of(&principal));
        tracing::Span::current().record("user", tracing::field::display(principal.user_id));
        if agent_only(&principal) {
            self.handle.unsubscribe(&Topic::ALL);
        }
        let user_id = principal.user_id;
        self.principal = Some(principal);
        if let Err(err) = self
            .hub
            .presence()
            .authenticated(&self.handle.session_id, user_id)
            .await
        {
            tracing::warn!(error = %err, "could not record the session's user in ws_clients");
        }
        // The client id now lives in the user's namespace: its value may differ.
        self.hello().await;
        Ok(())
    }

    fn subscribe(&mut self, topics: &[Topic], on: bool) -> Result<(), Refusal> {
        let private = topics
            .iter()
            .find(|t| matches!(t, Topic::Alarms | Topic::Telemetry | Topic::Jobs));
        if let Some(topic) = private.filter(|_| on && !self.authenticated()) {
            let name = match topic {
                Topic::Alarms => "alarms need",
                Topic::Jobs => "jobs need",
                _ => "telemetry needs",
            };
            return Err(Refusal::new(
                ErrorCode::Unauthenticated,
                format!(
                    "{name} an authenticated session: connect with ?token= or send an auth message first"
                ),
            ));
        }
        if on {
            self.handle.subscribe(topics);
        } else {
            self.handle.unsubscribe(topics);
        }
        self.send(ServerMessage::Subscribed {
            topics: self.handle.topics(),
        });
        Ok(())
    }

    /// Starts computing F(n); the answer is sent when it is ready.
    fn fib(&mut self, id: Value, n: FibN) -> Option<PendingFib> {
        let fib = self.hub.fib().clone();
        match fib.check(n) {
            Ok(n) => {
                self.errors = 0;
                Some(Box::pin(async move {
                    let value = fib.decimal(n).await;
                    (id, n, value)
                }))
            }
            Err(err) => {
                self.refuse(Refusal::new(err.code(), err.to_string()), id);
                None
            }
        }
    }

    fn fib_done(&mut self, (id, n, value): (Value, u64, Result<String, FibError>)) {
        match value {
            Ok(value) => self.send(ServerMessage::FibResult { id, n, value }),
            Err(err) => {
                tracing::warn!(error = %err, n, "Fibonacci computation failed");
                self.send(ServerMessage::Error {
                    code: err.code(),
                    message: "the computation failed".to_owned(),
                    id,
                });
            }
        }
    }

    /// Starts storing an agent's alarm; the `ack` is sent when it is stored.
    fn alarm(&mut self, alarm: InlineAlarm) {
        let id = alarm.id.clone();
        let Some(principal) = self.principal.clone() else {
            self.refuse(
                Refusal::new(
                    ErrorCode::Unauthenticated,
                    "alarms need an authenticated session: connect with ?token= (an API key of scope alarms:write, say) or send an auth message first",
                ),
                id,
            );
            return;
        };
        // Neither of these is the message's fault: sent again later, it goes
        // through. They do not count among the refusals in a row.
        if self.alarms.len() >= MAX_ALARMS_IN_FLIGHT {
            let busy = format!(
                "{MAX_ALARMS_IN_FLIGHT} alarms of this session are being stored; send this one again after an ack"
            );
            self.send(ServerMessage::error(
                Refusal::new(ErrorCode::RateLimited, busy),
                id,
            ));
            return;
        }
        // The credential's request rate, shared with the HTTP API.
        if let Err(wait) = self.hub.auth().limiter.check(principal.rate_key()) {
            let slow = format!(
                "over this credential's request rate (shared with the HTTP API); send it again in {} s",
                crate::auth::rate_limit::retry_after_secs(wait)
            );
            self.send(ServerMessage::error(
                Refusal::new(ErrorCode::RateLimited, slow),
                id,
            ));
            return;
        }
        let (incoming, claim) = match ingest::read(alarm, principal.user_id) {
            Ok(read) => read,
            Err(refusal) => return self.refuse(refusal, id),
        };
        // On the main runtime, where the database client lives; a session
        // that ends first does not cancel it (a retry with the key gets it).
        let ingest = self.hub.ingest().clone();
        let user = principal.user_id;
        let stored = self.hub.runtime().spawn(async move {
            let received = ingest.receive(user, incoming, Some(claim)).await?;
            Ok(received.alarm.id.to_string())
        });
        self.alarms.push(Box::pin(async move { (id, stored.await) }));
    }

    fn alarm_done(
        &mut self,
        (id, stored): (Value, Result<Result<String, IngestError>, tokio::task::JoinError>),
    ) {
        match stored {
            Ok(Ok(alarm_id)) => {
                self.errors = 0;
                self.send(ServerMessage::Ack { id, alarm_id });
            }
            Ok(Err(err)) => {
                let refusal = ingest::refusal(&err);
                if refusal.code.is_server_side() {
                    tracing::warn!(error = %err, "could not store an alarm sent over the WebSocket");
                    self.send(ServerMessage::error(refusal, id));
                } else {
                    self.refuse(refusal, id);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "storing an alarm sent over the WebSocket did not finish");
                let refusal = Refusal::new(
                    ErrorCode::Internal,
                    "the alarm could not be stored; send it again with the same key",
                );
                self.send(ServerMessage::error(refusal, id));
            }
        }
    }

    async fn keep_value(&mut self, value: CounterValue) {
        if let Err(err) = self
            .hub
            .counters()
            .set(&self.handle.client_id, self.handle.user_id(), value)
            .await
        {
            tracing::warn!(error = %err, "could not keep the counter value");
            self.server_error(&err, "the value could not be kept; send it again");
        }
    }
}
