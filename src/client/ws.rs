//! A WebSocket session with the hub (`/ws`), over ws:// or wss:// with the
//! same trust roots as the HTTP client. Messages are the server's own
//! protocol types; WebSocket pings are answered by tungstenite while reading.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::api::{error_chain, ApiClient};
use super::error::{ApiFailure, ClientError};
use crate::hub::protocol::{ClientMessage, ServerEvent};

pub struct HubSession {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Where to connect and as whom.
pub struct HubTarget<'a> {
    pub api: &'a ApiClient,
    /// `?client_id=`; the server generates one when absent.
    pub client_id: Option<&'a str>,
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
        client_id: Option<&str>,
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let mut url = api.server().ws_url();
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = client_id {
                query.append_pair("client_id", id);
            }
            if let Some(token) = token {
                query.append_pair("token", token);
            }
        }
        let shown = api.server().ws_url().to_string();
        let connector = Connector::Rustls(Arc::clone(api.tls()));
        let connected =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, Some(connector)).await;
        match connected {
            Ok((stream, _response)) => Ok(Self { stream }),
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
    /// know (a newer server) are skipped; the end of the session is
    /// [`ClientError::Closed`].
    pub async fn next(&mut self) -> Result<ServerEvent, ClientError> {
        loop {
            let frame = match self.stream.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(ClientError::WebSocket(error_chain(&e))),
                None => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: String::new(),
                    })
                }
            };
            match frame {
                Message::Text(text) => match serde_json::from_str::<ServerEvent>(text.as_str()) {
                    Ok(event) => return Ok(event),
                    Err(e) => {
                        tracing::debug!(error = %e, %text, "skipping a message this client does not know")
                    }
                },
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
