use std::time::Duration;

use vigil_wire::ErrorCode;

use crate::helpers::{database_uri, error_code, spawn_app_with, AppOptions, TestApp};
use crate::proxy::{single_host, CutProxy};

async fn proxied_app() -> Option<(CutProxy, TestApp)> {
    let Some(target) = single_host(&database_uri()) else {
        eprintln!("skipped: MONGODB_URI has several hosts or credentials the proxy cannot front");
        return None;
    };
    let proxy = CutProxy::start(target).await;
    let options = AppOptions::default()
        .mongodb_uri(proxy.uri())
        .flag("--health-interval-secs", 1)
        .flag("--db-timeout-secs", 2);
    let app = spawn_app_with(options).await;
    Some((proxy, app))
}

#[tokio::test]
async fn readiness_follows_the_database_away_and_back() {
    let Some((proxy, app)) = proxied_app().await else {
        return;
    };
    app.wait_for_readiness(200, Duration::from_secs(10)).await;

    proxy.cut();
    let went_down = app.wait_for_readiness(503, Duration::from_secs(10)).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert_eq!(error_code(response).await, ErrorCode::NotReady);
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness ignores the database"
    );

    proxy.restore();
    let came_back = app.wait_for_readiness(200, Duration::from_secs(30)).await;
    eprintln!("readiness: 503 after {went_down:?}, 200 again after {came_back:?}");
}

#[tokio::test]
async fn starts_without_a_database_and_migrates_when_it_appears() {
    let Some(target) = single_host(&database_uri()) else {
        return;
    };
    let proxy = CutProxy::start(target).await;
    proxy.cut();
    let options = AppOptions::default()
        .mongodb_uri(proxy.uri())
        .flag("--health-interval-secs", 1)
        .flag("--db-timeout-secs", 1);
    let app = spawn_app_with(options).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.wait_for_readiness(503, Duration::from_secs(5)).await;
    assert_eq!(
        app.db
            .collection::<mongodb::bson::Document>("_migrations")
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap(),
        0
    );

    proxy.restore();
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let recorded = app
        .db
        .collection::<mongodb::bson::Document>("_migrations")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(
        recorded as usize,
        vigil::db::migrations::MigrationSet::embedded().unwrap().len()
    );
}

#[tokio::test]
async fn a_delete_during_an_outage_is_a_503_and_deletes_nothing() {
    let Some((proxy, app)) = proxied_app().await else {
        return;
    };
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
    let user = app.create_user().await;
    let detection = app.upload_face(&user).await;
    let id = detection.id;
    let alarm_id = detection.alarm_id.expect("a face raises an alarm");

    proxy.cut();
    let response = app
        .delete_as(format!("/api/v1/detections/{id}"), &user.access_token)
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, ErrorCode::DatabaseUnavailable);

    proxy.restore();
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let path = |kind: &str, id: &str| format!("/api/v1/{kind}/{id}");
    assert_eq!(
        app.get_as(&path("detections", &id), &user.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as(&path("alarms", &alarm_id), &user.access_token)
            .await
            .status(),
        200
    );

    let response = app.delete_as(path("detections", &id), &user.access_token).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.get_as(&path("detections", &id), &user.access_token)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_as(&path("alarms", &alarm_id), &user.access_token)
            .await
            .status(),
        404
    );
}
