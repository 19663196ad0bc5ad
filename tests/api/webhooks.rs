//! Webhooks through the API and over the wire: a receiver in the test
//! checks each delivery's signature and timestamp; deliveries are retried
//! while it is down or failing, delivered once when it is back, logged,
//! survive a restart of vigil, and stop when the webhook is deleted;
//! internal addresses are refused unless the operator allows them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vigil_wire::detections::DetectionView;
use vigil_wire::jobs::JobView;
use vigil_wire::paging::PageOf;
use vigil_wire::webhooks::{CreatedWebhook, DeliveryAttempt, DeliveryOutcome, WebhookPayload, WebhookView};
use vigil_wire::ErrorCode;

use crate::helpers::{body, error_code, free_port, spawn_app_with, spawn_child, AppOptions};

const SECRET: &str = "a-receiver-secret-of-some-length";
const WITHIN: Duration = Duration::from_secs(60);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Checks the signature as docs/webhooks.md tells receivers to, and the
    /// timestamp's age; returns the payload.
    fn verified(&self, secret: &str) -> WebhookPayload {
        let timestamp = self.header("x-vigil-timestamp").expect("a timestamp header");
        let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().expect("Unix seconds");
        assert!((-5..300).contains(&age), "a fresh timestamp: {age} s old");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(self.header("x-vigil-signature"), Some(expected.as_str()));
        assert_eq!(self.header("x-vigil-event"), Some("alarm"));
        serde_json::from_slice(&self.body).expect("a webhook payload")
    }
}

/// A plain HTTP/1.1 receiver on 127.0.0.1:`port` answering every request
/// with `status`; what it got is in `received`.
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, status: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the receiver's port");
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(status));
        let (log, answer) = (received.clone(), status.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    if let Some(request) = read_request(&mut stream).await {
                        let status = *answer.lock().unwrap();
                        log.lock().unwrap().push(request);
                        let reply =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                        let _ = stream.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        Self {
            received,
            status,
            task,
        }
    }

    fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        headers,
        body: data[head_end..head_end + length].to_vec(),
    })
}

async fn create_webhook(
    app: &crate::helpers::Api,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn created(app: &crate::helpers::Api, token: &str, url: &str) -> CreatedWebhook {
    let response = create_webhook(
        app,
        token,
        serde_json::json!({ "url": url, "events": ["alarm"], "secret": SECRET }),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    body(response).await
}

async fn log_of(app: &crate::helpers::Api, token: &str, webhook: &str) -> Vec<DeliveryAttempt> {
    let page: PageOf<DeliveryAttempt> = app
        .fetch_as(&format!("/api/v1/webhooks/{webhook}/deliveries"), token)
        .await;
    page.items
}

/// Polls the delivery log until `done` holds for it.
async fn wait_for_log(
    app: &crate::helpers::Api,
    token: &str,
    webhook: &str,
    done: impl Fn(&[DeliveryAttempt]) -> bool,
) -> Vec<DeliveryAttempt> {
    let started = std::time::Instant::now();
    loop {
        let log = log_of(app, token, webhook).await;
        if done(&log) {
            return log;
        }
        assert!(
            started.elapsed() < WITHIN,
            "the delivery log never got there: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server whose webhooks may reach this test's receiver on 127.0.0.1,
/// and whose rate limit leaves room for the log being polled.
fn private_app() -> AppOptions {
    AppOptions::default()
        .flag("--webhook-allow-private", "true")
        .flag("--rate-limit-per-second", 1000)
}

#[tokio::test]
async fn an_alarm_is_retried_while_the_receiver_is_down_or_failing_then_delivered_once_and_logged() {
    let app = spawn_app_with(private_app()).await;
    let user = app.create_user().await;
    let port = free_port();
    let hook = created(&app, &user.access_token, &format!("http://127.0.0.1:{port}/hook")).await;
    assert_eq!(hook.secret, SECRET, "the secret is shown once, at creation");

    let detection: DetectionView = app.upload_face(&user).await;
    let alarm_id = detection.alarm_id.clone().expect("the portrait raises an alarm");

    // Nobody listens: the first attempt fails and another is planned.
    let log = wait_for_log(&app, &user.access_token, &hook.webhook.id, |log| !log.is_empty()).await;
    assert_eq!(log[0].attempt, 1);
    assert_eq!(log[0].outcome, DeliveryOutcome::Retry);
    assert_eq!(
        (log[0].status, log[0].alarm_id.as_str()),
        (None, alarm_id.as_str())
    );
    assert!(log[0].error.is_some(), "{log:?}");

    // Up, but failing: the answer is logged, and it is tried again.
    let receiver = Receiver::start(port, 503).await;
    // (A loaded machine may make one more refused attempt before it is up.)
    let log = wait_for_log(&app, &user.access_token, &hook.webhook.id, |log| {
        log.first().is_some_and(|a| a.status == Some(503))
    })
    .await;
    assert_eq!(log[0].outcome, DeliveryOutcome::Retry);
    receiver.answer(200);
    let log = wait_for_log(&app, &user.access_token, &hook.webhook.id, |log| {
        log.first()
            .is_some_and(|a| a.outcome == DeliveryOutcome::Delivered)
    })
    .await;
    assert_eq!(log[0].status, Some(200));
    // Newest first, one entry per attempt, numbered from 1.
    let attempts: Vec<u32> = log.iter().rev().map(|a| a.attempt).collect();
    assert_eq!(attempts, (1..=log.len() as u32).collect::<Vec<_>>(), "{log:?}");
    assert!(
        log[1..].iter().all(|a| a.outcome == DeliveryOutcome::Retry),
        "{log:?}"
    );
    assert!(log.iter().all(|a| a.delivery_id == log[0].delivery_id));
    let answered_503 = log.iter().filter(|a| a.status == Some(503)).count();

    // Delivered once: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let received = receiver.received();
    assert_eq!(
        received.len(),
        answered_503 + 1,
        "the 503s and one 200: {received:?}"
    );
    for request in &received {
        let payload = request.verified(SECRET);
        assert_eq!(payload.alarm.id, alarm_id);
        assert_eq!(payload.webhook_id, hook.webhook.id);
        assert_eq!(payload.delivery_id, log[0].delivery_id);
        assert_eq!(
            request.header("x-vigil-delivery"),
            Some(log[0].delivery_id.as_str())
        );
    }
    assert_eq!(
        log_of(&app, &user.access_token, &hook.webhook.id).await.len(),
        log.len()
    );

    // Deliveries are the webhook's log, not the account's jobs.
    let jobs: PageOf<JobView> = app.fetch_as("/api/v1/jobs", &user.access_token).await;
    assert!(jobs.items.is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn a_signature_made_with_another_secret_does_not_verify() {
    let app = spawn_app_with(private_app()).await;
    let user = app.create_user().await;
    let port = free_port();
    let receiver = Receiver::start(port, 204).await;
    let response = create_webhook(
        &app,
        &user.access_token,
        serde_json::json!({ "url": format!("http://127.0.0.1:{port}/"), "events": ["alarm"] }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let hook: CreatedWebhook = body(response).await;
    assert!(
        hook.secret.starts_with("whsec_") && hook.secret.len() > 40,
        "generated: {}",
        hook.secret
    );
    app.upload_face(&user).await;
    wait_for_log(&app, &user.access_token, &hook.webhook.id, |log| {
        log.first()
            .is_some_and(|a| a.outcome == DeliveryOutcome::Delivered && a.status == Some(204))
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    received[0].verified(&hook.secret);
    let forged = std::panic::catch_unwind(|| received[0].verified(SECRET));
    assert!(forged.is_err(), "another key gives another signature");
}

#[tokio::test]
async fn internal_addresses_are_refused_without_the_operator_flag() {
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 1000)).await;
    let user = app.create_user().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/",
        "ftp://example.org/hook",
    ] {
        let response = create_webhook(
            &app,
            &user.access_token,
            serde_json::json!({ "url": url, "events": ["alarm"] }),
        )
        .await;
        assert_eq!(response.status(), 422, "{url}");
        assert_eq!(error_code(response).await, ErrorCode::WebhookUrlRefused, "{url}");
    }
    for bad in [
        serde_json::json!({ "url": "https://example.org/", "events": ["alarm", "detection"] }),
        serde_json::json!({ "url": "https://example.org/", "events": [] }),
        serde_json::json!({ "url": "https://example.org/", "events": ["alarm"], "secret": "short" }),
        serde_json::json!({ "url": "not a url", "events": ["alarm"] }),
        serde_json::json!({ "url": format!("https://example.org/{}", "a".repeat(2048)), "events": ["alarm"] }),
        serde_json::json!({ "events": ["alarm"] }),
    ] {
        let response = create_webhook(&app, &user.access_token, bad.clone()).await;
        assert_eq!(response.status(), 422, "{bad}");
        assert_eq!(error_code(response).await, ErrorCode::ValidationFailed, "{bad}");
    }
    let list: PageOf<WebhookView> = app.fetch_as("/api/v1/webhooks", &user.access_token).await;
    assert!(list.items.is_empty(), "nothing refused was kept");
}

#[tokio::test]
async fn owners_see_and_delete_their_own_admins_all_and_the_secret_is_never_shown_again() {
    let app = spawn_app_with(private_app()).await;
    let admin = app.create_user().await; // the first account is the admin
    let alice = app.create_user().await;
    let bob = app.create_user().await;
    let hook = created(&app, &alice.access_token, "http://127.0.0.1:9/alice").await;
    let path = format!("/api/v1/webhooks/{}", hook.webhook.id);

    let seen: serde_json::Value = app.fetch_as(&path, &alice.access_token).await;
    assert_eq!(seen["url"], "http://127.0.0.1:9/alice");
    assert_eq!(seen["events"], serde_json::json!(["alarm"]));
    assert!(seen.get("secret").is_none(), "{seen}");
    let listed: serde_json::Value = app.fetch_as("/api/v1/webhooks", &alice.access_token).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("secret").is_none());

    // Another account: as if it did not exist.
    let other = &bob.access_token;
    assert_eq!(app.get_as(&path, other).await.status(), 404);
    let deliveries = format!("{path}/deliveries");
    assert_eq!(app.get_as(&deliveries, other).await.status(), 404);
    assert_eq!(app.delete_as(&path, other).await.status(), 404);
    let list: PageOf<WebhookView> = app.fetch_as("/api/v1/webhooks", other).await;
    assert!(list.items.is_empty());
    let all: PageOf<WebhookView> = app.fetch_as("/api/v1/webhooks", &admin.access_token).await;
    assert_eq!(all.items.len(), 1);
    assert_eq!(app.get_as(&path, &admin.access_token).await.status(), 200);
    assert_eq!(
        app.get_as("/api/v1/webhooks/nonsense", &alice.access_token)
            .await
            .status(),
        404
    );

    assert_eq!(app.delete_as(&path, &alice.access_token).await.status(), 204);
    assert_eq!(app.get_as(&path, &alice.access_token).await.status(), 404);
    assert_eq!(app.delete_as(&path, &alice.access_token).await.status(), 404);

    // At most 10 per account.
    for n in 0..10 {
        created(&app, &bob.access_token, &format!("http://127.0.0.1:9/{n}")).await;
    }
    let response = create_webhook(
        &app,
        &bob.access_token,
        serde_json::json!({ "url": "http://127.0.0.1:9/11", "events": ["alarm"] }),
    )
    .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, ErrorCode::LimitReached);
    let page: PageOf<WebhookView> = app.fetch_as("/api/v1/webhooks?limit=4", &bob.access_token).await;
    assert_eq!(page.items.len(), 4);
    assert!(
        page.next_cursor.is_some(),
        "cursor paging like the other listings"
    );
}

#[tokio::test]
async fn deleting_a_webhook_stops_its_pending_deliveries() {
    let app = spawn_app_with(private_app()).await;
    let user = app.create_user().await;
    let port = free_port();
    let hook = created(&app, &user.access_token, &format!("http://127.0.0.1:{port}/")).await;
    app.upload_face(&user).await;
    wait_for_log(&app, &user.access_token, &hook.webhook.id, |log| !log.is_empty()).await;
    let path = format!("/api/v1/webhooks/{}", hook.webhook.id);
    assert_eq!(app.delete_as(&path, &user.access_token).await.status(), 204);

    let receiver = Receiver::start(port, 200).await;
    // Past the second attempt's time (2 s after the first).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
    let jobs = app.db.collection::<mongodb::bson::Document>("jobs");
    let pending = jobs
        .count_documents(mongodb::bson::doc! { "kind": "webhook", "state": { "$in": ["queued", "running"] } })
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn a_delivery_pending_when_vigil_stops_is_made_after_its_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let options = private_app()
        .flag("--job-lease-secs", "2")
        .data_dir(data_dir.path())
        .port(free_port());
    let mut server = spawn_child(&options).await;
    let user = server.create_user().await;
    let port = free_port();
    let hook = created(&server, &user.access_token, &format!("http://127.0.0.1:{port}/")).await;
    server.upload_face(&user).await;
    wait_for_log(&server, &user.access_token, &hook.webhook.id, |log| {
        !log.is_empty()
    })
    .await;
    // Killed: no clean shutdown gives anything back.
    server.process.kill().await.expect("vigil killed");
    drop(server);

    let receiver = Receiver::start(port, 200).await;
    let server = spawn_child(&options).await;
    let log = wait_for_log(&server, &user.access_token, &hook.webhook.id, |log| {
        log.first()
            .is_some_and(|a| a.outcome == DeliveryOutcome::Delivered)
    })
    .await;
    assert!(log[0].attempt >= 2, "{log:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    received[0].verified(SECRET);
}
