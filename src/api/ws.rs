//! `GET /ws`: the handshake. Credentials and the client id are checked here,
//! so a bad token is a plain 401 before any WebSocket exists; the session
//! itself lives in [`crate::hub::session`].

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::hub::client_id::{ClientId, CLIENT_ID_RULE};
use crate::hub::session::{self, authenticate_token, SessionStart};
use crate::state::AppState;

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

/// Largest text frame a client may send; every message of the protocol is tiny.
const MAX_FRAME: usize = 16 * 1024;

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
    state: web::Data<AppState>,
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
        Some(token) if !token.is_empty() => Some(authenticate_token(&state, token).await?),
        _ => None,
    };
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("not a WebSocket handshake: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let start = SessionStart {
        client_id: client_id.into_string(),
        principal,
        remote_addr: req.peer_addr().map(|a| a.to_string()),
    };
    actix_web::rt::spawn(session::run(state, ws, stream, start));
    Ok(response)
}
