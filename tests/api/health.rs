use std::time::Duration;

use vigil_wire::ErrorCode;

use crate::helpers::{body, error_code, spawn_app, Health};

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let health: Health = body(response).await;
    assert_eq!(health.status, "ok");
}

#[tokio::test]
async fn readyz_answers_200_once_migrated() {
    let app = spawn_app().await;
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn unknown_routes_get_the_json_error_body() {
    let app = spawn_app().await;
    let response = app.get("/no/such/thing").await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_given_request_id_is_echoed() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn a_request_id_is_generated_when_absent_or_unusable() {
    let app = spawn_app().await;
    let first = app.get("/healthz").await;
    let second = app.get("/no/such/thing").await;
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a} is not a UUID");
    assert_ne!(a, b, "each request gets its own id");

    let spoofed = app
        .http
        .get(app.url("/healthz"))
        .header("X-Request-Id", "has spaces\tand tabs")
        .send()
        .await
        .unwrap();
    let id = spoofed.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an unusable id is replaced, got {id}"
    );
}
