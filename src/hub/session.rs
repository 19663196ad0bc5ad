//! One WebSocket connection, from `hello` to close.
//!
//! Two tasks per connection: this one reads frames and answers them, the
//! writer moves queued frames to the socket. Replies and broadcasts alike go
//! through the bounded queue ([`SessionHandle::push`]), so a client that
//! stops reading fills its own queue and is closed with 1013, while the
//! reader keeps watching heartbeats and the rest of the process never waits.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fib::FibError;
use super::message_log::{payload_of, Direction};
use super::numbers::NumberView;
use super::protocol::{self, ClientMessage, ProtocolError, ServerMessage, Topic};
use super::topics::{Closing, Outgoing, SessionHandle, Viewer};
use super::Hub;
use crate::alarms::repository_scope;
use crate::auth::principal::{authenticate, Principal};
use crate::auth::AuthError;
use crate::state::AppState;

/// Consecutive refused messages after which the server closes with 1008.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// What the handshake established.
pub struct SessionStart {
    pub client_id: String,
    pub principal: Option<Principal>,
    pub remote_addr: Option<String>,
}

/// `?token=` and `auth` take either credential: an access token (JWT) is
/// tried first, then an API key.
pub async fn authenticate_token(state: &AppState, token: &str) -> Result<Principal, AuthError> {
    let as_jwt = authenticate(state, Some(token), None).await;
    match as_jwt {
        Ok(principal) => Ok(principal),
        Err(AuthError::InvalidToken(jwt_reason)) => match authenticate(state, None, Some(token)).await {
            Ok(principal) => Ok(principal),
            // A JWT-shaped token is better explained by the JWT's own reason (e.g. expired).
            Err(AuthError::InvalidToken(_)) if token.matches('.').count() == 2 => {
                Err(AuthError::InvalidToken(jwt_reason))
            }
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    }
}

impl Viewer {
    pub fn of(principal: &Principal) -> Self {
        Self {
            user_id: principal.user_id,
            scope: repository_scope(principal),
        }
    }
}

/// How a session ended.
#[derive(Debug)]
enum End {
    ClientClosed(Option<CloseReason>),
    /// The TCP connection ended without a close frame.
    Vanished,
    Broken(actix_ws::ProtocolError),
    /// Nothing at all (not even a pong) within the client timeout.
    TimedOut,
    Server(Closing),
}

type PendingFib = LocalBoxFuture<'static, (Value, u64, Result<String, FibError>)>;

struct Session {
    state: web::Data<AppState>,
    hub: Hub,
    handle: Arc<SessionHandle>,
    errors: u32,
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
        // On the main runtime, where the database client lives: it may be
        // going away with the process, and then the instance's rows go anyway.
        let presence = self.hub.presence().clone();
        let session_id = self.session_id.clone();
        let removed = self
            .hub
            .runtime()
            .spawn(async move { presence.disconnected(&session_id).await })
            .await;
        if let Ok(Err(err)) = removed {
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
pub async fn run(
    state: web::Data<AppState>,
    ws: actix_ws::Session,
    stream: AggregatedMessageStream,
    start: SessionStart,
) {
    let hub = state.hub.clone();
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
    }
    let mut departure = Departure {
        hub: hub.clone(),
        key: None,
        session_id,
        done: false,
    };
    if let Err(err) = hub.presence().connected(&hub.presence().row(&handle)).await {
        tracing::warn!(error = %err, "could not record the client in ws_clients");
    }
    tracing::debug!("WebSocket session started");

    let writer = actix_web::rt::spawn(write(ws.clone(), out_rx, closing.clone()));
    let mut session = Session {
        state,
        hub: hub.clone(),
        handle: handle.clone(),
        errors: 0,
    };
    if handle.viewer.get().is_some() || hub.config().allow_anonymous {
        session.hello().await;
    }
    // Only now: `hello` is always the first message, before any broadcast.
    departure.key = Some(hub.registry().insert(handle.clone()));
    let end = session.read(stream, closing).await;

    departure.now().await;
    let (stop_writer, close) = match &end {
        End::ClientClosed(reason) => (Closing::GoingAway, Some((reason.clone(), Duration::from_secs(1)))),
        End::Vanished | End::Broken(_) => (Closing::GoingAway, None),
        End::TimedOut => (
            Closing::GoingAway,
            Some((Some(CloseCode::Away.into()), Duration::from_millis(100))),
        ),
        End::Server(why) => {
            let (code, text, grace) = match why {
                // The queue is full because the socket is: the close frame
                // waits behind it, for as long as a client may stay silent.
                Closing::TooSlow => (
                    CloseCode::Again,
                    "too slow: messages were piling up",
                    hub.config().client_timeout,
                ),
                Closing::Policy => (
                    CloseCode::Policy,
                    "too many invalid messages",
                    Duration::from_secs(1),
                ),
                Closing::GoingAway => (CloseCode::Away, "server shutting down", Duration::from_secs(1)),
            };
            let reason = CloseReason {
                code,
                description: Some(text.to_owned()),
            };
            (*why, Some((Some(reason), grace)))
        }
    };
    handle.close(stop_writer);
    // The writer flushes queued frames (the last error before a 1008, say) first.
    let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
    if let Some((reason, grace)) = close {
        let _ = tokio::time::timeout(grace, ws.close(reason)).await;
    }
    match end {
        End::TimedOut => tracing::info!("WebSocket client silent beyond the timeout; connection dropped"),
        End::Broken(err) => tracing::info!(error = %err, "WebSocket protocol error; connection dropped"),
        End::Server(Closing::Policy) => {
            tracing::info!("WebSocket client closed with 1008 after repeated invalid messages")
        }
        other => tracing::debug!(end = ?other, "WebSocket session ended"),
    }
}

/// Moves queued frames to the socket until the session closes.
async fn write(
    mut ws: actix_ws::Session,
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
            sent = send(&mut ws, frame) => if sent.is_err() { return },
        }
    }
    if too_slow(&closing.borrow()) {
        return;
    }
    let flush = async {
        while let Ok(frame) = frames.try_recv() {
            if send(&mut ws, frame).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}

async fn send(ws: &mut actix_ws::Session, frame: Outgoing) -> Result<(), actix_ws::Closed> {
    match frame {
        Outgoing::Text(text) => ws.text(text).await,
        Outgoing::Ping => ws.ping(b"").await,
        Outgoing::Pong(bytes) => ws.pong(&bytes).await,
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
        mut stream: AggregatedMessageStream,
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
                        self.refuse(ProtocolError::new("unauthenticated", "no auth message in time"), &Value::Null);
                        self.handle.close(Closing::Policy);
                        continue;
                    }
                    self.handle.push(Outgoing::Ping);
                }
                done = async { pending.as_mut().expect("guarded by `computing`").await }, if computing => {
                    pending = None;
                    self.fib_done(done);
                }
                // While a Fibonacci number is computed, further frames wait
                // in the socket: one client cannot queue unbounded work.
                frame = stream.recv(), if !computing => {
                    last_seen = Instant::now();
                    match frame {
                        None => return End::Vanished,
                        Some(Err(err)) => return End::Broken(err),
                        Some(Ok(AggregatedMessage::Text(text))) => pending = self.on_text(&text).await,
                        Some(Ok(AggregatedMessage::Binary(bytes))) => {
                            self.log_in("binary", payload_of(&serde_json::json!({ "bytes": bytes.len() })));
                            self.refuse(
                                ProtocolError::new("binary_not_supported", "messages are JSON text frames"),
                                &Value::Null,
                            );
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            self.handle.push(Outgoing::Pong(bytes));
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(reason))) => return End::ClientClosed(reason),
                    }
                }
            }
        }
    }

    fn log_in(&self, kind: &str, payload: Arc<mongodb::bson::Bson>) {
        self.hub.log().record(
            &self.handle.session_id,
            &self.handle.client_id,
            self.handle.user_id(),
            Direction::In,
            kind,
            payload,
        );
    }

    fn send(&self, message: &ServerMessage<'_>) {
        if self.handle.push(Outgoing::Text(message.text())) {
            self.hub.log().record(
                &self.handle.session_id,
                &self.handle.client_id,
                self.handle.user_id(),
                Direction::Out,
                message.kind(),
                Arc::new(message.payload()),
            );
        }
    }

    /// An `error` to this client only; counts towards the 1008 limit.
    fn refuse(&mut self, error: ProtocolError, id: &Value) {
        self.send(&ServerMessage::Error {
            code: error.code,
            message: &error.message,
            id,
        });
        self.errors += 1;
        if self.errors >= MAX_CONSECUTIVE_ERRORS {
            self.handle.close(Closing::Policy);
        }
    }

    /// An `error` that is the server's fault: not counted against the client.
    fn server_error(&self, code: &str, message: &str) {
        self.send(&ServerMessage::Error {
            code,
            message,
            id: &Value::Null,
        });
    }

    async fn hello(&mut self) {
        let user = self.handle.user_id();
        let value = match self.hub.counters().get(&self.handle.client_id, user).await {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the client's counter value");
                self.server_error(
                    "database_unavailable",
                    "the last counter value could not be read; hello.value is 0",
                );
                0
            }
        };
        self.send(&ServerMessage::Hello {
            client_id: &self.handle.client_id,
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
        self.log_in(&incoming.kind, Arc::new(incoming.payload));
        let message = match incoming.message {
            Ok(message) => message,
            Err(error) => {
                self.refuse(error, &Value::Null);
                return None;
            }
        };
        if !self.authenticated()
            && !self.config().allow_anonymous
            && !matches!(message, ClientMessage::Auth { .. } | ClientMessage::Ping { .. })
        {
            self.refuse(
                ProtocolError::new(
                    "unauthenticated",
                    "this server needs credentials: connect with ?token= or send an auth message first",
                ),
                &Value::Null,
            );
            return None;
        }
        let accepted = match message {
            ClientMessage::Auth { token } => self.auth(&token).await,
            ClientMessage::Subscribe { topics } => self.subscribe(&topics, true),
            ClientMessage::Unsubscribe { topics } => self.subscribe(&topics, false),
            ClientMessage::Fib { id, n } => match self.fib_n(&n) {
                Ok(n) => {
                    let fib = self.hub.fib().clone();
                    self.errors = 0;
                    return Some(Box::pin(async move {
                        let value = fib.decimal(n).await;
                        (id, n, value)
                    }));
                }
                Err(error) => {
                    self.refuse(error, &id);
                    return None;
                }
            },
            ClientMessage::Number { kind } => {
                let number = NumberView::draw(kind);
                self.send(&ServerMessage::Number {
                    kind: number.kind,
                    value: number.value,
                });
                Ok(())
            }
            ClientMessage::Value { value } => self.keep_value(&value).await,
            ClientMessage::Ping { id } => {
                self.send(&ServerMessage::Pong { id: &id });
                Ok(())
            }
        };
        match accepted {
            Ok(()) => self.errors = 0,
            Err(error) => self.refuse(error, &Value::Null),
        }
        None
    }

    async fn auth(&mut self, token: &str) -> Result<(), ProtocolError> {
        if self.authenticated() {
            return Err(ProtocolError::new(
                "already_authenticated",
                "this session is authenticated already; reconnect to change identity",
            ));
        }
        let principal = match authenticate_token(&self.state, token).await {
            Ok(principal) => principal,
            Err(AuthError::Db(err)) => {
                tracing::warn!(error = %err, "could not check WebSocket credentials");
                self.server_error(
                    "database_unavailable",
                    "credentials could not be checked; try again",
                );
                return Ok(());
            }
            Err(err) => return Err(ProtocolError::new("invalid_token", err.to_string())),
        };
        let _ = self.handle.viewer.set(Viewer::of(&principal));
        tracing::Span::current().record("user", tracing::field::display(principal.user_id));
        if let Err(err) = self
            .hub
            .presence()
            .authenticated(&self.handle.session_id, principal.user_id)
            .await
        {
            tracing::warn!(error = %err, "could not record the session's user in ws_clients");
        }
        // The client id now lives in the user's namespace: its value may differ.
        self.hello().await;
        Ok(())
    }

    fn subscribe(&mut self, topics: &[Topic], on: bool) -> Result<(), ProtocolError> {
        if on && topics.contains(&Topic::Alarms) && !self.authenticated() {
            return Err(ProtocolError::new(
                "unauthenticated",
                "alarms need an authenticated session: connect with ?token= or send an auth message first",
            ));
        }
        if on {
            self.handle.subscribe(topics);
        } else {
            self.handle.unsubscribe(topics);
        }
        self.send(&ServerMessage::Subscribed {
            topics: self.handle.topics(),
        });
        Ok(())
    }

    fn fib_n(&self, n: &Value) -> Result<u64, ProtocolError> {
        let max = self.hub.fib().max_n;
        let out_of_range =
            || ProtocolError::new("invalid_fib_n", format!("n must be an integer from 0 to {max}"));
        match n {
            Value::Number(number) => match number.as_u64() {
                Some(n) if n <= max => Ok(n),
                Some(_) => Err(ProtocolError::new(
                    "invalid_fib_n",
                    format!("n is too large: at most {max}"),
                )),
                None if number.as_i64().is_some_and(|n| n < 0) => {
                    Err(ProtocolError::new("invalid_fib_n", "n must not be negative"))
                }
                None => Err(out_of_range()),
            },
            _ => Err(out_of_range()),
        }
    }

    fn fib_done(&mut self, (id, n, value): (Value, u64, Result<String, FibError>)) {
        match value {
            Ok(value) => self.send(&ServerMessage::FibResult { id: &id, n, value }),
            Err(err) => {
                tracing::warn!(error = %err, n, "Fibonacci computation failed");
                self.send(&ServerMessage::Error {
                    code: "internal",
                    message: "the computation failed",
                    id: &id,
                });
            }
        }
    }

    async fn keep_value(&mut self, value: &Value) -> Result<(), ProtocolError> {
        let value = value
            .as_u64()
            .filter(|v| *v <= 99)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| ProtocolError::new("invalid_value", "value must be an integer from 0 to 99"))?;
        if let Err(err) = self
            .hub
            .counters()
            .set(&self.handle.client_id, self.handle.user_id(), value)
            .await
        {
            tracing::warn!(error = %err, "could not keep the counter value");
            self.server_error(
                "database_unavailable",
                "the value could not be kept; send it again",
            );
        }
        Ok(())
    }
}
