//! The HTTP side of `vigil client`: where the server is, who we are (an API
//! key, a stored login, or nobody) and the few API calls the client makes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use vigil_wire::alarms::AlarmView;
use vigil_wire::auth::TokenPair;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::{PageOf, MAX_LIMIT};

use super::error::{ApiFailure, ClientError};
use super::tokens::{StoredTokens, TokenStore};

/// A vigil server's base URL, always ending in `/` so that paths join below
/// it (a server behind a proxy at `https://host/vigil/` keeps its prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    base: Url,
}

impl Server {
    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadServer(raw.to_owned());
        let mut base = Url::parse(raw.trim()).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad());
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad());
        }
        // It would show in every message and key the token file; the raw
        // text is not repeated in the error for the same reason.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ClientError::CredentialsInServer);
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { base })
    }

    /// The key of this server in the token store.
    pub fn key(&self) -> &str {
        self.base.as_str()
    }

    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// `path` relative to the base, e.g. `api/v1/detections`.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("relative API paths always join")
    }

    /// `ws://…/ws` or, for an https server, `wss://…/ws`.
    pub fn ws_url(&self) -> Url {
        let mut url = self.url("ws");
        let scheme = if self.is_https() { "wss" } else { "ws" };
        url.set_scheme(scheme).expect("ws and wss replace http and https");
        url
    }

    /// An absolute URL for a path the server returned. Signed image URLs are
    /// root-relative to the server, which does not know the prefix a proxy
    /// serves it under: `/media/x` is below the base, like the API paths.
    pub fn absolute(&self, path: &str) -> String {
        let relative = match path.strip_prefix('/') {
            // `//host/…` names another host; leave it to `join`.
            Some(rest) if !rest.starts_with('/') => rest,
            _ => path,
        };
        self.base
            .join(relative)
            .map_or_else(|_| path.to_owned(), |u| u.to_string())
    }
}

/// How to reach the server, from the `vigil client` flags.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub server: String,
    pub api_key: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Per HTTP request (a detection is synchronous, so allow for a busy server).
    pub timeout: Duration,
    /// Where logins are kept; `None` for the default location.
    pub token_store: Option<TokenStore>,
}

/// A stored login whose access token is renewed with its refresh token.
/// One lock: concurrent uploads must not spend the single-use refresh token
/// twice (the server would revoke the whole login).
pub struct LoginSession {
    store: TokenStore,
    tokens: tokio::sync::Mutex<StoredTokens>,
}

pub enum Credentials {
    ApiKey(String),
    Login(LoginSession),
    Anonymous,
}

/// Renew this long before the access token expires, so that it does not
/// expire in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Largest error body read (they are tiny; a proxy page is not worth more).
const MAX_ERROR_BODY: usize = 64 * 1024;

pub struct ApiClient {
    server: Server,
    http: reqwest::Client,
    /// `--timeout-secs`: how long one request may take.
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    credentials: Credentials,
}

impl ApiClient {
    pub fn connect(options: ConnectOptions) -> Result<Self, ClientError> {
        let server = Server::parse(&options.server)?;
        let tls = Arc::new(crate::tls::client_config(options.ca_cert.as_deref())?);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(Duration::from_secs(10))
            .timeout(options.timeout)
            .user_agent(concat!("vigil-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(error_chain(&e)))?;
        let credentials = match options.api_key.filter(|k| !k.trim().is_empty()) {
            Some(key) => Credentials::ApiKey(key.trim().to_owned()),
            None => {
                let store = match options.token_store {
                    Some(store) => store,
                    None => TokenStore::default_location()?,
                };
                match store.load(server.key())? {
                    Some(tokens) => Credentials::Login(LoginSession {
                        store,
                        tokens: tokio::sync::Mutex::new(tokens),
                    }),
                    None => Credentials::Anonymous,
                }
            }
        };
        Ok(Self {
            server,
            http,
            timeout: options.timeout,
            tls,
            credentials,
        })
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.tls
    }

    /// How long one request may take (`--timeout-secs`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fails with a message that says how to log in when there are no credentials.
    pub fn require_credentials(&self) -> Result<(), ClientError> {
        match self.credentials {
            Credentials::Anonymous => Err(ClientError::NotLoggedIn {
                server: self.server.key().to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// What a WebSocket handshake sends as `?token=`: the API key or a
    /// current access token.
    pub async fn ws_token(&self) -> Result<Option<String>, ClientError> {
        match &self.credentials {
            Credentials::ApiKey(key) => Ok(Some(key.clone())),
            Credentials::Login(session) => self.access_token(session).await.map(Some),
            Credentials::Anonymous => Ok(None),
        }
    }

    /// After the server refused `rejected`: a renewed token, unless the
    /// credentials cannot be renewed (then the refusal stands).
    pub async fn renew_after_rejection(&self, rejected: &str) -> Result<Option<String>, ClientError> {
        match &self.credentials {
            Credentials::Login(session) => {
                let mut tokens = session.tokens.lock().await;
                if tokens.access_token == rejected {
                    self.refresh(session, &mut tokens).await?;
                }
                Ok(Some(tokens.access_token.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn access_token(&self, session: &LoginSession) -> Result<String, ClientError> {
        let mut tokens = session.tokens.lock().await;
        let margin = chrono::Duration::from_std(EXPIRY_MARGIN).expect("small duration");
        if tokens.expires_at - margin <= Utc::now() {
            self.refresh(session, &mut tokens).await?;
        }
        Ok(tokens.access_token.clone())
    }

    /// Spends the refresh token for a new pair and stores it. Another
    /// `vigil client` may have done so already: then its pair, read back from
    /// the store, is used instead of spending a token that is no longer ours.
    async fn refresh(&self, session: &LoginSession, tokens: &mut StoredTokens) -> Result<(), ClientError> {
        let server = self.server.key();
        if let Some(stored) = session.store.load(server)? {
            if stored.refresh_token != tokens.refresh_token {
                *tokens = stored;
                if tokens.expires_at > Utc::now() {
                    return Ok(());
                }
            }
        }
        let url = self.server.url("api/v1/auth/refresh");
        let response = self
            .http
            .post(url.clone())
            .json(&serde_json::json!({ "refresh_token": tokens.refresh_token }))
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            session.store.remove(server)?;
            return Err(ClientError::LoginExpired {
                server: server.to_owned(),
            });
        }
        let pair: TokenPair = read_json(&url, response).await?;
        *tokens = stored_tokens(pair, &tokens.login);
        session.store.save(server, tokens)
    }

    /// Sends a request with the credentials; a refused access token is
    /// renewed once and the request sent again.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut renewed = false;
        loop {
            let mut request = build(&self.http);
            let mut bearer = None;
            match &self.credentials {
                Credentials::ApiKey(key) => request = request.header("X-API-Key", key),
                Credentials::Login(session) => {
                    let token = self.access_token(session).await?;
                    request = request.header(AUTHORIZATION, format!("Bearer {token}"));
                    bearer = Some(token);
                }
                Credentials::Anonymous => {}
            }
            let request = request.build().map_err(|e| ClientError::BadAnswer {
                url: self.server.key().to_owned(),
                detail: format!("cannot build the request: {e}"),
            })?;
            let url = request.url().clone();
            let response = self
                .http
                .execute(request)
                .await
                .map_err(|e| unreachable(&url, e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                if let Some(token) = bearer {
                    renewed = true;
                    self.renew_after_rejection(&token).await?;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// `POST /api/v1/auth/login`; the tokens are not stored here.
    pub async fn login(&self, login: &str, password: &str) -> Result<StoredTokens, ClientError> {
        let url = self.server.url("api/v1/auth/login");
        let response = self
            .http
            .post(url.clone())
            .json(&serde_json::json!({ "login": login, "password": password }))
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        let pair: TokenPair = read_json(&url, response).await?;
        Ok(stored_tokens(pair, login))
    }

    /// `POST /api/v1/auth/logout`: revokes the refresh token's whole login.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), ClientError> {
        let url = self.server.url("api/v1/auth/logout");
        let response = self
            .http
            .post(url.clone())
            .json(&serde_json::json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Api(failure(response).await))
        }
    }

    /// `POST /api/v1/detections` with the image as the raw body.
    pub async fn upload_image(
        &self,
        image: Bytes,
        content_type: &'static str,
        source: &str,
    ) -> Result<DetectionView, ClientError> {
        let mut url = self.server.url("api/v1/detections");
        url.query_pairs_mut().append_pair("source", source);
        let response = self
            .send(|http| {
                http.post(url.clone())
                    .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
                    .body(image.clone())
            })
            .await?;
        read_json(&url, response).await
    }

    /// `POST` of a JSON body; the answer's status (a success) and body.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, T), ClientError> {
        let url = self.server.url(path);
        let response = self.send(|http| http.post(url.clone()).json(body)).await?;
        let status = response.status().as_u16();
        Ok((status, read_json(&url, response).await?))
    }

    /// `POST` of a multipart form rebuilt by `form` for every attempt.
    pub async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: impl Fn() -> reqwest::multipart::Form,
    ) -> Result<(u16, T), ClientError> {
        let url = self.server.url(path);
        let response = self.send(|http| http.post(url.clone()).multipart(form())).await?;
        let status = response.status().as_u16();
        Ok((status, read_json(&url, response).await?))
    }

    /// `GET` of a JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.server.url(path);
        let response = self.send(|http| http.get(url.clone())).await?;
        read_json(&url, response).await
    }

    /// `DELETE` with a JSON answer.
    pub async fn delete_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.server.url(path);
        let response = self.send(|http| http.delete(url.clone())).await?;
        read_json(&url, response).await
    }

    /// `POST` of a body streamed by `body`, which is called again should the
    /// request be sent again (after a renewed login), so that a file is read
    /// from its start each time and never held in memory. `length` is sent
    /// as `Content-Length`; `timeout` replaces `--timeout-secs` for this
    /// request (a large file takes longer than any answer should); the
    /// `Idempotency-Key` makes a retry of a request whose answer was lost
    /// return what the first one made.
    pub async fn post_stream<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        content_type: &'static str,
        length: u64,
        timeout: Duration,
        idempotency_key: &str,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<(u16, T), ClientError> {
        let response = self
            .send(|http| {
                http.post(url.clone())
                    .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
                    .header(CONTENT_LENGTH, length)
                    .header("Idempotency-Key", idempotency_key)
                    .timeout(timeout)
                    .body(body())
            })
            .await?;
        let status = response.status().as_u16();
        Ok((status, read_json(&url, response).await?))
    }

    /// Alarms at or after `from`, oldest first: the newest `limit` of them.
    pub async fn alarms_since(&self, from: DateTime<Utc>, limit: usize) -> Result<RecentAlarms, ClientError> {
        let mut alarms = Vec::new();
        let mut cursor: Option<String> = None;
        let mut left_out = false;
        loop {
            let mut url = self.server.url("api/v1/alarms");
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("from", &from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .append_pair("limit", &MAX_LIMIT.to_string());
                if let Some(cursor) = &cursor {
                    query.append_pair("cursor", cursor);
                }
            }
            let response = self.send(|http| http.get(url.clone())).await?;
            let page: PageOf<AlarmView> = read_json(&url, response).await?;
            alarms.extend(page.items);
            // The server hands out a cursor only when more items follow.
            match page.next_cursor {
                Some(next) if alarms.len() < limit => cursor = Some(next),
                Some(_) => {
                    left_out = true;
                    break;
                }
                None => break,
            }
        }
        if alarms.len() > limit {
            alarms.truncate(limit);
            left_out = true;
        }
        alarms.reverse();
        Ok(RecentAlarms { alarms, left_out })
    }
}

/// What [`ApiClient::alarms_since`] found.
pub struct RecentAlarms {
    /// Oldest first.
    pub alarms: Vec<AlarmView>,
    /// Older alarms in the range were not fetched (more than the limit).
    pub left_out: bool,
}

fn stored_tokens(pair: TokenPair, login: &str) -> StoredTokens {
    StoredTokens {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_at: Utc::now() + chrono::Duration::seconds(pair.expires_in.max(0)),
        login: login.to_owned(),
    }
}

/// The error and its causes: reqwest's own message hides the useful part
/// (refused connection, unknown certificate issuer…).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}

fn unreachable(url: &Url, error: reqwest::Error) -> ClientError {
    let mut shown = url.clone();
    shown.set_query(None);
    let not_sent = error.is_connect();
    ClientError::Unreachable {
        url: shown.to_string(),
        // The URL is in the message already, without its query (a source label).
        detail: error_chain(&error.without_url()),
        not_sent,
    }
}

async fn failure(response: Response) -> ApiFailure {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    ApiFailure::from_body(status, retry_after, &body)
}

async fn read_json<T: DeserializeOwned>(url: &Url, response: Response) -> Result<T, ClientError> {
    if !response.status().is_success() {
        return Err(ClientError::Api(failure(response).await));
    }
    let mut shown = url.clone();
    shown.set_query(None);
    response.json().await.map_err(|e| ClientError::BadAnswer {
        url: shown.to_string(),
        detail: error_chain(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_keep_their_prefix_and_map_to_websockets() {
        let server = Server::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(server.key(), "http://127.0.0.1:8080/");
        assert_eq!(
            server.url("api/v1/detections").as_str(),
            "http://127.0.0.1:8080/api/v1/detections"
        );
        assert_eq!(server.ws_url().as_str(), "ws://127.0.0.1:8080/ws");

        let server = Server::parse("https://example.org/vigil").unwrap();
        assert_eq!(server.ws_url().as_str(), "wss://example.org/vigil/ws");
        assert_eq!(
            server.absolute("/media/a.jpg?sig=x"),
            "https://example.org/vigil/media/a.jpg?sig=x"
        );
        assert_eq!(
            Server::parse("http://127.0.0.1:8080")
                .unwrap()
                .absolute("/media/a.jpg?sig=x"),
            "http://127.0.0.1:8080/media/a.jpg?sig=x"
        );
        assert_eq!(
            server.absolute("https://cdn.example.org/a.jpg"),
            "https://cdn.example.org/a.jpg"
        );

        for bad in [
            "127.0.0.1:8080",
            "ftp://host/",
            "http://",
            "http://h/?x=1",
            "nonsense",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
        for with_credentials in ["http://alice:s3cret@host/", "https://alice@host/"] {
            let err = Server::parse(with_credentials).unwrap_err();
            assert!(matches!(err, ClientError::CredentialsInServer), "{err}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }
}
