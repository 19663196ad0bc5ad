//! A WebSocket session with the hub (`/ws`), over ws:// or wss:// with the
//! same trust roots as the HTTP client. Messages are the protocol types of
//! `vigil_wire`, the server's own; WebSocket pings are answered by
//! tungstenite while reading.
//!
//! A server can vanish without closing anything (a frozen process, a cut
//! cable): the handshake then never ends and reads wait forever while
//! writes fill a socket no one reads. So the handshake has a time limit and
//! a session that hears nothing (not even the server's pings, sent every
//! `hello.heartbeat_secs`) for three heartbeats counts as closed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use vigil_wire::hub::{ClientId, ClientMessage, ServerMessage};

use super::api::{error_chain, ApiClient};
use super::error::{ApiFailure, ClientError, FailureCode};

/// Longest wait for the connection and the WebSocket handshake.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Heartbeats missed before a silent server counts as gone.
const MISSED_HEARTBEATS: u32 = 3;
/// The server's default heartbeat, trusted until its `hello` says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

pub struct HubSession {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// When the server was last heard from (any frame). Kept here rather
    /// than in a timer inside [`Self::next`], which is cancelled and
    /// started again by every `select!` that also waits for something else.
    last_heard: Instant,
    /// How long silence may last.
    silence_limit: Duration,
}

/// Where to connect and as whom.
pub struct HubTarget<'a> {
    pub api: &'a ApiClient,
    /// `?client_id=`; the server generates one when absent.
    pub client_id: Option<&'a ClientId>,
}

/// What the hub said: a message, or an `error` answer with its code as it
/// came. A newer server may refuse with a code this client does not know;
/// that is still an answer (to a `fib`, say), not a frame to skip.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// Any message but `error`.
    Message(ServerMessage),
    Error {
        code: FailureCode,
        message: String,
        id: Value,
    },
}

impl Heard {
    /// A text frame; `None` for a message this client does not know (a
    /// newer server's), which is skipped.
    fn read(text: &str) -> Option<Self> {
        match serde_json::from_str::<ServerMessage>(text) {
            Ok(ServerMessage::Error { code, message, id }) => Some(Heard::Error {
                code: FailureCode::Vigil(code),
                message,
                id,
            }),
            Ok(message) => Some(Heard::Message(message)),
            Err(_) => {
                #[derive(serde::Deserialize)]
                #[serde(tag = "type", rename = "error")]
                struct UnknownError {
                    code: String,
                    message: String,
                    #[serde(default)]
                    id: Value,
                }
                let error = serde_json::from_str::<UnknownError>(text).ok()?;
                Some(Heard::Error {
                    code: FailureCode::parse(&error.code),
                    message: error.message,
                    id: error.id,
                })
            }
        }
    }
}

impl HubSession {
    /// Opens a session with the client's credentials. A refused access
    /// token is renewed once (it may have expired since it was checked).
    pub async fn connect(target: &HubTarget<'_>) -> Result<Self, ClientError> {
        let api = target.api;
        let mut token = api.ws_token().await?;
        let mut renewed = false;
        loop {
            match Self::handshake(api, target.client_id, token.as_deref()).await {
                Err(ClientError::Api(failure)) if failure.status == 401 && !renewed => {
                    let Some(rejected) = token.as_deref() else {
                        return Err(ClientError::Api(failure));
                    };
                    match api.renew_after_rejection(rejected).await? {
                        Some(new) => {
                            token = Some(new);
                            renewed = true;
                        }
                        None => return Err(ClientError::Api(failure)),
                    }
                }
                other => return other,
            }
        }
    }

    async fn handshake(
        api: &ApiClient,
        client_id: Option<&ClientId>,
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let mut url = api.server().ws_url();
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = client_id {
                query.append_pair("client_id", id.as_str());
            }
            if let Some(token) = token {
                query.append_pair("token", token);
            }
        }
        let shown = api.server().ws_url().to_string();
        let connector = Connector::Rustls(Arc::clone(api.tls()));
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, Some(connector));
        let Ok(connected) = tokio::time::timeout(HANDSHAKE_WITHIN, connecting).await else {
            return Err(ClientError::Unreachable {
                url: shown,
                detail: format!("no WebSocket handshake within {} s", HANDSHAKE_WITHIN.as_secs()),
                not_sent: false,
            });
        };
        match connected {
            Ok((stream, _response)) => Ok(Self {
                stream,
                last_heard: Instant::now(),
                silence_limit: DEFAULT_HEARTBEAT * MISSED_HEARTBEATS,
            }),
            // A refused handshake carries vigil's JSON error body.
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_deref().unwrap_or_default();
                Err(ClientError::Api(ApiFailure::from_body(status, None, body)))
            }
            Err(e) => Err(ClientError::Unreachable {
                url: shown,
                detail: error_chain(&e),
                not_sent: true,
            }),
        }
    }

    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(message).expect("client messages always serialise");
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| ClientError::WebSocket(error_chain(&e)))
    }

    /// The next protocol message. Messages of a type this client does not
    /// know (a newer server) are skipped; the end of the session, or a
    /// server silent for three heartbeats, is [`ClientError::Closed`].
    /// Cancel-safe: it may lose a `select!` and be called again.
    pub async fn next(&mut self) -> Result<Heard, ClientError> {
        loop {
            let deadline = self.last_heard + self.silence_limit;
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) => return Err(ClientError::WebSocket(error_chain(&e))),
                Ok(None) => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: String::new(),
                    })
                }
                Err(_) => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: format!("nothing from the server for {} s", self.silence_limit.as_secs()),
                    })
                }
            };
            // Pings count too: they are all a quiet session hears.
            self.last_heard = Instant::now();
            match frame {
                Message::Text(text) => {
                    if let Some(heard) = Heard::read(text.as_str()) {
                        if let Heard::Message(ServerMessage::Hello { heartbeat_secs, .. }) = &heard {
                            self.silence_limit =
                                Duration::from_secs((*heartbeat_secs).max(1)) * MISSED_HEARTBEATS;
                        }
                        return Ok(heard);
                    }
                }
                Message::Close(frame) => {
                    return Err(ClientError::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    })
                }
                _ => {}
            }
        }
    }

    /// A normal close (1000), waiting briefly for the server's echo.
    pub async fn close(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        if self.stream.close(Some(frame)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while let Some(Ok(_)) = self.stream.next().await {}
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_wire::ErrorCode;

    #[test]
    fn refusals_keep_their_code_and_unknown_messages_are_skipped() {
        let heard = Heard::read(
            r#"{"type":"error","code":"invalid_fib_n","message":"n must not be negative","id":"f"}"#,
        );
        assert_eq!(
            heard,
            Some(Heard::Error {
                code: FailureCode::Vigil(ErrorCode::InvalidFibN),
                message: "n must not be negative".into(),
                id: "f".into(),
            })
        );
        let heard = Heard::read(r#"{"type":"error","code":"fib_busy","message":"later"}"#);
        assert_eq!(
            heard,
            Some(Heard::Error {
                code: FailureCode::Other("fib_busy".into()),
                message: "later".into(),
                id: Value::Null,
            })
        );
        assert!(matches!(
            Heard::read(r#"{"type":"pong","id":3}"#),
            Some(Heard::Message(ServerMessage::Pong { .. }))
        ));
        assert_eq!(Heard::read(r#"{"type":"weather","sky":"blue"}"#), None);
        assert_eq!(Heard::read("not json"), None);
    }
}
