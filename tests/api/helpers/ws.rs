//! The WebSocket hub from the client's side (tokio-tungstenite).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::app::TestApp;

pub type Ws = WebSocketStream<TcpStream>;

/// How long a test waits for one message.
pub const WS_WAIT: Duration = Duration::from_secs(15);

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A handshake with `/ws{query}` over `socket`, which may fail.
pub async fn try_connect_with(
    app: &TestApp,
    query: &str,
    socket: TcpSocket,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let stream = socket
        .connect(([127, 0, 0, 1], port(app)).into())
        .await
        .expect("TCP connect");
    let url = format!("ws://127.0.0.1:{}/ws{query}", port(app));
    tokio_tungstenite::client_async(url, stream)
        .await
        .map(|(ws, _)| ws)
}

pub async fn connect(app: &TestApp, query: &str) -> Ws {
    try_connect_with(app, query, TcpSocket::new_v4().unwrap())
        .await
        .expect("WebSocket handshake")
}

pub async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.expect("send");
}

/// The next JSON message (control frames are handled by the client library).
pub async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WS_WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON from the server"),
            Message::Close(frame) => panic!("closed by the server: {frame:?}"),
            _ => continue,
        }
    }
}

/// The next message of one type, skipping others (clock ticks, say).
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let message = next(ws).await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// Connected, greeted, and without the clock so that every message counts.
pub async fn quiet(app: &TestApp, query: &str) -> (Ws, Value) {
    let mut ws = connect(app, query).await;
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    send(&mut ws, json!({"type": "unsubscribe", "topics": ["clock"]})).await;
    let subscribed = next_of(&mut ws, "subscribed").await;
    assert_eq!(subscribed["topics"], json!([]));
    (ws, hello)
}

/// Round trip; everything the server sent before the pong is returned.
pub async fn sync(ws: &mut Ws) -> Vec<Value> {
    let id = uuid::Uuid::new_v4().to_string();
    send(ws, json!({"type": "ping", "id": id})).await;
    let mut before = Vec::new();
    loop {
        let message = next(ws).await;
        if message["type"] == "pong" && message["id"] == id.as_str() {
            return before;
        }
        before.push(message);
    }
}

/// Reads until the server's close frame; returns its code.
pub async fn close_code(ws: &mut Ws, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .expect("closed in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return 1005,
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
