//! `GET /ws`: the handshake, and actix-ws adapted to the hub's [`Socket`].
//! Credentials and the client id are checked here, so a bad token is a
//! plain 401 before any WebSocket exists; the session itself lives in
//! [`crate::hub::session`].

use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytestring::ByteString;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::error::ErrorCode;
use crate::hub::session::{self, ClientFrame, CloseFrame, FrameError, SessionStart, Socket};
use crate::hub::Hub;
use vigil_wire::hub::{ClientId, CLIENT_ID_RULE, MAX_MESSAGE_BYTES};
use vigil_wire::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
pub struct WsQuery {
    /// An access token (JWT) or an API key. Without it the session is
    /// anonymous (clock, Fibonacci, counter) until an `auth` message.
    pub token: Option<String>,
    /// Stable id of this client (1–64 of `A-Z a-z 0-9 . _ : -`), kept across
    /// reconnects; the counter value is kept per client id (and per user when
    /// authenticated). Generated when absent.
    pub client_id: Option<String>,
}

/// The WebSocket hub: live alarms, the clock, Fibonacci and the even/odd counter.
///
/// Upgrades to a WebSocket. Messages are JSON objects with a `type`; see
/// docs/websocket.md for all of them.
#[utoipa::path(
    tag = "websocket",
    params(WsQuery),
    responses(
        (status = 101, description = "Switching Protocols: the session starts with a `hello` message"),
        (status = 400, description = "`bad_request`: not a WebSocket handshake; `invalid_query`: bad client_id", body = ErrorBody),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
    )
)]
#[get("/ws")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub>,
    query: web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let client_id = match query.client_id.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("client_id must be {CLIENT_ID_RULE}"),
            ))
        }
        None => ClientId::generate(),
    };
    let principal = match query.token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => Some(hub.auth().authenticate_token(token).await?),
        _ => None,
    };
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("not a WebSocket handshake: {e}")))?;
    let frames = stream
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES)
        .map(|frame| frame.map(client_frame).map_err(frame_error));
    let start = SessionStart {
        client_id,
        principal,
        remote_addr: req.peer_addr().map(|a| a.to_string()),
    };
    let hub = Hub::clone(&hub);
    actix_web::rt::spawn(session::run(hub, ActixSocket(ws), Box::pin(frames), start));
    Ok(response)
}

fn client_frame(message: AggregatedMessage) -> ClientFrame {
    match message {
        AggregatedMessage::Text(text) => ClientFrame::Text(text.to_string()),
        AggregatedMessage::Binary(bytes) => ClientFrame::Binary(bytes.len()),
        AggregatedMessage::Ping(bytes) => ClientFrame::Ping(bytes),
        AggregatedMessage::Pong(_) => ClientFrame::Pong,
        AggregatedMessage::Close(reason) => ClientFrame::Close(reason.map(|r| CloseFrame {
            code: r.code.into(),
            reason: r.description,
        })),
    }
}

/// The session answers a message over the limit with 1009, anything else
/// that breaks the stream by dropping the connection.
fn frame_error(error: ProtocolError) -> FrameError {
    match error {
        ProtocolError::Overflow => FrameError::TooBig,
        // actix-ws tells a fragmented message over `max_continuation_size`
        // apart from a broken connection by this text only (tests/api/hub.rs
        // sends one, so a change of wording shows there).
        ProtocolError::Io(e)
            if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("continuation size") =>
        {
            FrameError::TooBig
        }
        other => FrameError::Broken(other.to_string()),
    }
}

/// An actix-ws session as the hub's [`Socket`].
#[derive(Clone)]
struct ActixSocket(actix_ws::Session);

impl Socket for ActixSocket {
    type Closed = actix_ws::Closed;

    fn text(&mut self, text: ByteString) -> LocalBoxFuture<'_, Result<(), Self::Closed>> {
        Box::pin(self.0.text(text))
    }

    fn ping(&mut self) -> LocalBoxFuture<'_, Result<(), Self::Closed>> {
        Box::pin(self.0.ping(b""))
    }

    fn pong(&mut self, bytes: Bytes) -> LocalBoxFuture<'_, Result<(), Self::Closed>> {
        Box::pin(async move { self.0.pong(&bytes).await })
    }

    fn close(self, frame: Option<CloseFrame>) -> LocalBoxFuture<'static, ()> {
        let reason = frame.map(|f| CloseReason {
            code: CloseCode::from(f.code),
            description: f.reason,
        });
        Box::pin(async move {
            let _ = self.0.close(reason).await;
        })
    }
}
