//! A server under test in this process, the options every test server is
//! started with (in process or as a child), and its HTTP API as the tests
//! speak it.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clap::Parser;
use serde::de::DeserializeOwned;
use vigil::config::ServeArgs;
use vigil::startup::Application;
use vigil_wire::auth::TokenPair;
use vigil_wire::detections::DetectionView;
use vigil_wire::{ErrorBody, ErrorCode};

use super::assets::test_asset;
use super::bodies::{CreatedApiKey, User};

/// A secret that passes the production rule, shared so tests can mint tokens.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-production-use";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    // Logs only on request: `TEST_LOG=1 cargo test` (they drown test output otherwise).
    if std::env::var_os("TEST_LOG").is_some() {
        vigil::logging::init(vigil::logging::LogFormat::Pretty);
    }
});

pub fn database_uri() -> String {
    std::env::var("MONGODB_URI")
        .expect("MONGODB_URI is not set: run `make test`, or point MONGODB_URI at a MongoDB server")
}

pub fn unique_database_name() -> String {
    format!("vigil_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

/// Where the models (and the test photos beside them) are: VIGIL_MODELS_DIR,
/// else the repository's `models/`. The default of `vigil serve`
/// (`./models`) would be relative to the test's working folder, which cargo
/// makes the vigil-bin package's.
pub fn models_dir() -> PathBuf {
    std::env::var_os("VIGIL_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(repo_path!("models")))
}

/// How a test server is started, in this process ([`spawn_app_with`]) or as
/// a `vigil serve` child ([`super::spawn_child`]): both take their flags
/// from [`AppOptions::serve_flags`].
#[derive(Clone)]
pub struct AppOptions {
    pub uri: String,
    pub database_name: String,
    /// `vigil serve` flags given by the test, in order; a flag named here
    /// replaces the default of the same name.
    pub extra: Vec<(String, String)>,
    /// A data folder that outlives the app (default: a fresh temp dir).
    pub data_dir: Option<PathBuf>,
    /// The port to listen on (default: any free one, for an in-process app).
    pub port: Option<u16>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            uri: database_uri(),
            database_name: unique_database_name(),
            extra: Vec::new(),
            data_dir: None,
            port: None,
        }
    }
}

impl AppOptions {
    /// Adds a `vigil serve` flag (repeatable ones, like `--camera`, may be given again).
    pub fn flag(mut self, name: &str, value: impl ToString) -> Self {
        self.extra.push((name.to_owned(), value.to_string()));
        self
    }

    /// The database of another server, say, to run a second instance on it.
    pub fn database(mut self, name: &str) -> Self {
        self.database_name = name.to_owned();
        self
    }

    /// The MongoDB server to use instead of MONGODB_URI's.
    pub fn mongodb_uri(mut self, uri: String) -> Self {
        self.uri = uri;
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Listens on this port (a child that must keep its address across a restart).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The `vigil serve` flags of these options with `data_dir` as the data
    /// folder: the test defaults, then the test's own flags.
    pub fn serve_flags(&self, data_dir: &Path) -> Vec<String> {
        let defaults = [
            ("--mongodb-uri", self.uri.clone()),
            ("--database", self.database_name.clone()),
            ("--bind", format!("127.0.0.1:{}", self.port.unwrap_or(0))),
            (
                "--data-dir",
                data_dir.to_str().expect("a UTF-8 data dir").to_owned(),
            ),
            (
                "--models-dir",
                models_dir().to_str().expect("a UTF-8 models dir").to_owned(),
            ),
            ("--jwt-secret", TEST_SECRET.to_owned()),
            ("--env", "development".to_owned()),
            ("--workers", "2".to_owned()),
            ("--shutdown-timeout-secs", "1".to_owned()),
        ];
        let mut flags = Vec::new();
        // clap takes a single-valued flag once: the test's own replaces the default.
        for (name, value) in defaults {
            if !self.extra.iter().any(|(given, _)| given == name) {
                flags.extend([name.to_owned(), value]);
            }
        }
        for (name, value) in &self.extra {
            flags.extend([name.clone(), value.clone()]);
        }
        flags
    }

    /// The flags as the in-process server reads them.
    pub fn serve_args(&self, data_dir: &Path) -> ServeArgs {
        let argv = std::iter::once("vigil".to_owned()).chain(self.serve_flags(data_dir));
        ServeArgs::try_parse_from(argv).expect("test flags parse")
    }
}

/// A server running in this test's process, with its own database.
pub struct TestApp {
    pub api: Api,
    pub database_name: String,
    pub db: mongodb::Database,
    pub data_dir: tempfile::TempDir,
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    LazyLock::force(&TRACING);
    let data_dir = tempfile::tempdir().expect("temp dir");
    let dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| data_dir.path().to_owned());
    let config = options.serve_args(&dir).into_config().expect("valid config");
    let application = Application::build(config).await.expect("application builds");
    let port = application.port();
    tokio::spawn(application.run_until_stopped());
    let client = mongodb::Client::with_uri_str(database_uri())
        .await
        .expect("test client");
    TestApp {
        api: Api::new(format!("http://127.0.0.1:{port}")),
        db: client.database(&options.database_name),
        database_name: options.database_name,
        data_dir,
    }
}

/// The HTTP API of one running server (in this process or a child), as the
/// tests speak it.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub http: reqwest::Client,
}

/// How a test request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// An access token (JWT).
    Bearer(&'a str),
    ApiKey(&'a str),
}

impl<'a> From<&'a TestUser> for Credential<'a> {
    fn from(user: &'a TestUser) -> Self {
        Credential::Bearer(&user.access_token)
    }
}

/// What an upload sends to `POST /api/v1/detections`.
pub enum Upload {
    /// The image as the whole body, with this Content-Type (`""`: an empty one).
    Body { bytes: Vec<u8>, content_type: String },
    /// A multipart form (its `image` part and an optional `source`).
    Form(reqwest::multipart::Form),
}

impl Upload {
    pub fn body(bytes: Vec<u8>, content_type: &str) -> Self {
        Upload::Body {
            bytes,
            content_type: content_type.to_owned(),
        }
    }

    /// The one-face portrait, as a PNG body.
    pub fn face() -> Self {
        Upload::body(test_asset("astronaut.png"), "image/png")
    }
}

impl Api {
    pub fn new(address: String) -> Self {
        Self {
            address,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // The server closes a connection idle for 5 s (actix's
                // keep-alive); a request sent on one just as it closes fails
                // with IncompleteMessage. Idle ones are dropped well before.
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with a token, which must answer 200 with a `T`.
    pub async fn fetch_as<T: DeserializeOwned>(&self, path: &str, token: &str) -> T {
        let response = self.get_as(path, token).await;
        assert_eq!(response.status(), 200, "GET {path}");
        body(response).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete_as(&self, path: impl AsRef<str>, token: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path.as_ref()))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Polls `/readyz` until it answers `want`, failing after `within`.
    /// Returns how long it took.
    pub async fn wait_for_readiness(&self, want: u16, within: Duration) -> Duration {
        wait_for_status(&self.http, &self.url("/readyz"), want, within).await
    }

    pub async fn register(&self, user_name: &str, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &serde_json::json!({ "user_name": user_name, "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, login: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({ "login": login, "password": password }),
        )
        .await
    }

    /// Logs in, which must succeed, and returns the tokens.
    pub async fn tokens(&self, login: &str, password: &str) -> TokenPair {
        let response = self.login(login, password).await;
        assert_eq!(response.status(), 200, "login as {login}");
        body(response).await
    }

    /// Registers and logs in a fresh user with a unique name.
    pub async fn create_user(&self) -> TestUser {
        let user_name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let email = format!("{user_name}@example.org");
        let password = "correct horse battery".to_owned();
        let registered = self.register(&user_name, &email, &password).await;
        assert_eq!(
            registered.status(),
            201,
            "register: {}",
            registered.text().await.unwrap()
        );
        let user: User = body(registered).await;
        let tokens = self.tokens(&user_name, &password).await;
        TestUser {
            id: user.id,
            user_name,
            email,
            password,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        }
    }

    /// Creates an API key for the holder of `token`; the created key holds
    /// the secret, shown this once.
    pub async fn create_api_key(&self, token: &str, name: &str) -> CreatedApiKey {
        self.create_scoped_key(token, name, "full").await
    }

    /// A key of `scope` (`full`, `telemetry`, `alarms:write`).
    pub async fn create_scoped_key(&self, token: &str, name: &str, scope: &str) -> CreatedApiKey {
        let created = self
            .http
            .post(self.url("/api/v1/api-keys"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": name, "scope": scope }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            created.status(),
            201,
            "create API key: {}",
            created.text().await.unwrap()
        );
        body(created).await
    }

    /// `POST /api/v1/detections`, whatever the answer.
    pub async fn upload<'a>(
        &self,
        credential: impl Into<Credential<'a>>,
        upload: Upload,
    ) -> reqwest::Response {
        self.try_upload(credential, upload).await.expect("request sent")
    }

    /// An upload to a server that may die while it answers.
    pub async fn try_upload<'a>(
        &self,
        credential: impl Into<Credential<'a>>,
        upload: Upload,
    ) -> reqwest::Result<reqwest::Response> {
        let request = self.http.post(self.url("/api/v1/detections"));
        let request = match credential.into() {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::ApiKey(key) => request.header("X-API-Key", key),
        };
        let request = match upload {
            Upload::Body { bytes, content_type } => request.header("content-type", content_type).body(bytes),
            Upload::Form(form) => request.multipart(form),
        };
        request.send().await
    }

    /// Uploads the one-face portrait and returns the created detection,
    /// which found the face.
    pub async fn upload_face<'a>(&self, credential: impl Into<Credential<'a>>) -> DetectionView {
        let response = self.upload(credential, Upload::face()).await;
        assert_eq!(
            response.status(),
            201,
            "upload: {}",
            response.text().await.unwrap()
        );
        let detection: DetectionView = body(response).await;
        assert!(detection.face_count >= 1, "{detection:?}");
        detection
    }
}

pub async fn wait_for_status(http: &reqwest::Client, url: &str, want: u16, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let status = http
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if status.as_ref().ok() == Some(&want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{url} did not answer {want} within {within:?} (last: {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A response's JSON body as a `T`; the text is shown when it is not one.
pub async fn body<T: DeserializeOwned>(response: reqwest::Response) -> T {
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a {}: {e}: {text}", std::any::type_name::<T>()))
}

/// Asserts the JSON error body shape and returns its code.
pub async fn error_code(response: reqwest::Response) -> ErrorCode {
    let error: ErrorBody = body(response).await;
    error.error.code
}

/// `key=value&…`, each part percent-encoded, for a query string.
pub fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A registered, logged-in user.
pub struct TestUser {
    pub id: String,
    pub user_name: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}
