//! The WebSocket hub from the client's side (tokio-tungstenite): connecting,
//! sending, and reading the server's messages as vigil-wire's
//! [`ServerMessage`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use vigil_wire::alarms::AlarmView;
use vigil_wire::hub::{ClientId, CounterValue, ServerMessage, Topic};
use vigil_wire::ErrorCode;

use super::app::Api;

pub type Ws = WebSocketStream<TcpStream>;

/// How long a test waits for one message.
pub const WS_WAIT: Duration = Duration::from_secs(15);

/// The first message of a session.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the whole message is parsed; not every test reads every field"
)]
pub struct Hello {
    pub client_id: ClientId,
    pub value: CounterValue,
    pub server_time: DateTime<Utc>,
    pub authenticated: bool,
    pub user_id: Option<String>,
    pub topics: Vec<Topic>,
    pub heartbeat_secs: u64,
}

/// An `error` message.
#[derive(Debug)]
pub struct WsError {
    pub code: ErrorCode,
    pub message: String,
    pub id: Value,
}

/// Takes the fields of a message that must be of one kind, or fails with
/// the message: `expect_message!(next(&mut ws).await, ServerMessage::Number { kind, value } => (kind, value))`.
macro_rules! expect_message {
    ($message:expr, $pattern:pat => $fields:expr) => {
        match $message {
            $pattern => $fields,
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}
pub(crate) use expect_message;

/// The message, which must be a `hello`.
pub fn hello(message: ServerMessage) -> Hello {
    expect_message!(message, ServerMessage::Hello {
        client_id,
        value,
        server_time,
        authenticated,
        user_id,
        topics,
        heartbeat_secs,
    } => Hello { client_id, value, server_time, authenticated, user_id, topics, heartbeat_secs })
}

/// The message, which must be an `error`.
pub fn ws_error(message: ServerMessage) -> WsError {
    expect_message!(message, ServerMessage::Error { code, message, id } => WsError { code, message, id })
}

/// The message, which must be an `alarm`.
pub fn alarm(message: ServerMessage) -> AlarmView {
    expect_message!(message, ServerMessage::Alarm(alarm) => alarm)
}

fn port(api: &Api) -> u16 {
    api.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A handshake with `/ws{query}` over `socket`, which may fail.
pub async fn try_connect_with(
    api: &Api,
    query: &str,
    socket: TcpSocket,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let stream = socket
        .connect(([127, 0, 0, 1], port(api)).into())
        .await
        .expect("TCP connect");
    let url = format!("ws://127.0.0.1:{}/ws{query}", port(api));
    tokio_tungstenite::client_async(url, stream)
        .await
        .map(|(ws, _)| ws)
}

pub async fn connect(api: &Api, query: &str) -> Ws {
    try_connect_with(api, query, TcpSocket::new_v4().unwrap())
        .await
        .expect("WebSocket handshake")
}

pub async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.expect("send");
}

/// The next text frame, which must be a server message (control frames are
/// handled by the client library).
pub async fn next(ws: &mut Ws) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(WS_WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return parse(text.as_str()),
            Message::Close(frame) => panic!("closed by the server: {frame:?}"),
            _ => continue,
        }
    }
}

/// A text frame the server sent, as a message.
pub fn parse(text: &str) -> ServerMessage {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a server message: {e}: {text}"))
}

/// The next message of one type (`"alarm"`…), skipping others (clock ticks, say).
pub async fn next_of(ws: &mut Ws, kind: &str) -> ServerMessage {
    loop {
        let message = next(ws).await;
        if message.kind() == kind {
            return message;
        }
    }
}

/// Connected, greeted, and without the clock so that every message counts.
pub async fn quiet(api: &Api, query: &str) -> (Ws, Hello) {
    let mut ws = connect(api, query).await;
    let hello = hello(next(&mut ws).await);
    send(&mut ws, json!({"type": "unsubscribe", "topics": ["clock"]})).await;
    let subscribed = next_of(&mut ws, "subscribed").await;
    assert_eq!(subscribed, ServerMessage::Subscribed { topics: vec![] });
    (ws, hello)
}

/// Round trip; everything the server sent before the pong is returned.
pub async fn sync(ws: &mut Ws) -> Vec<ServerMessage> {
    let id = json!(uuid::Uuid::new_v4().to_string());
    send(ws, json!({"type": "ping", "id": id})).await;
    let mut before = Vec::new();
    loop {
        match next(ws).await {
            ServerMessage::Pong { id: answered } if answered == id => return before,
            message => before.push(message),
        }
    }
}

/// Reads until the server's close frame; returns its code.
pub async fn close_code(ws: &mut Ws, within: Duration) -> u16 {
    close_frame(ws, within).await.0
}

/// Reads until the server's close frame; returns its code and reason, and
/// the text frames that came before it.
pub async fn close_frame(ws: &mut Ws, within: Duration) -> (u16, String, Vec<ServerMessage>) {
    let deadline = Instant::now() + within;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .expect("closed in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string(), before)
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new(), before),
            Some(Ok(Message::Text(text))) => before.push(parse(text.as_str())),
            Some(Ok(_)) => continue,
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

/// Drives the connection in the background (answering pings) until it ends.
pub fn keep_reading(
    ws: Ws,
) -> (
    futures_util::stream::SplitSink<Ws, Message>,
    tokio::task::JoinHandle<()>,
) {
    let (sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    (sink, reader)
}
