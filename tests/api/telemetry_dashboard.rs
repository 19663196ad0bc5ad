//! The dashboard's Devices view, in a real headless Chromium against the
//! real server and models: a device that starts sending while the view is
//! open appears by itself; after a reload the list, the GPS track, the
//! gyroscope chart and the photos come from the API; and new readings keep
//! arriving over the WebSocket without a reload. Screenshots land in
//! target/screenshots/.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use vigil_wire::telemetry::{GpsView, GyroscopeView, PhotoView};

use crate::browser::Browser;
use crate::dashboard::{log_in, open, SLOW};
use crate::helpers::{body, spawn_app_with, test_asset, AppOptions, TestApp, TestUser};

const DEVICE: &str = "AA:BB:CC:DD:EE:01";
const FIXES: usize = 5;
const GYROS: usize = 6;

/// A key of `user` that may only send telemetry, as a phone would hold.
async fn telemetry_key(app: &TestApp, user: &TestUser) -> String {
    let response = app
        .http
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&user.access_token)
        .json(&json!({ "name": "t", "scope": "telemetry" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    created["key"].as_str().unwrap().to_owned()
}

/// `POST /telemetry/<kind>` with a JSON reading, which must be stored.
async fn send<T: serde::de::DeserializeOwned>(app: &TestApp, key: &str, kind: &str, reading: Value) -> T {
    let response = app
        .http
        .post(app.url(&format!("/telemetry/{kind}")))
        .header("X-API-Key", key)
        .json(&reading)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "{kind}: {}",
        response.text().await.unwrap()
    );
    body(response).await
}

async fn send_photo(app: &TestApp, key: &str, at: i64) -> PhotoView {
    let form = reqwest::multipart::Form::new()
        .text("device_id", DEVICE)
        .text("timestamp", at.to_string())
        .part(
            "photo",
            reqwest::multipart::Part::bytes(test_asset("astronaut.png")).file_name("astronaut.png"),
        );
    let response = app
        .http
        .post(app.url("/telemetry/photo"))
        .header("X-API-Key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "photo: {}",
        response.text().await.unwrap()
    );
    body(response).await
}

/// Enrols the astronaut's face as `name`.
async fn enrol(app: &TestApp, user: &TestUser, name: &str) {
    let response = app
        .http
        .post(app.url("/api/v1/subjects"))
        .bearer_auth(&user.access_token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let subject: Value = response.json().await.unwrap();
    let response = app
        .http
        .post(app.url(&format!(
            "/api/v1/subjects/{}/faces",
            subject["id"].as_str().unwrap()
        )))
        .bearer_auth(&user.access_token)
        .header("content-type", "image/png")
        .body(test_asset("astronaut.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

fn millis_ago(seconds: i64) -> i64 {
    (Utc::now() - ChronoDuration::seconds(seconds)).timestamp_millis()
}

/// The i-th fix of a car driving north-east through Berlin.
fn fix(i: usize, at: i64) -> Value {
    let i = i as f64;
    json!({"device_id": DEVICE, "timestamp": at, "latitude": 52.5163 + 0.0009 * i, "longitude": 13.3777 + 0.0012 * i * i / 4.0,
           "speed": 9.5, "heading": 45.0, "accuracy": 4.0})
}

/// How the view writes a position.
fn position(latitude: f64, longitude: f64) -> String {
    format!("{latitude:.5}° N, {longitude:.5}° E")
}

/// How many points the track's polyline has (undefined while there is none).
const TRACK_POINTS: &str =
    "document.querySelector('.device-detail svg.track polyline.track-line')?.points.numberOfItems";

fn device_item(css: &str) -> String {
    format!("[data-device-id=\"{DEVICE}\"] {css}")
}

#[tokio::test]
async fn a_person_watches_a_device_s_track_gyroscope_and_photos_arrive() {
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let key = telemetry_key(&app, &user).await;
    let page = Browser::start("devices").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open(&page, "#/devices").await;
    page.wait_for(
        "the empty state",
        SLOW,
        "return !document.querySelector('.devices-empty').hidden",
    )
    .await;
    assert!(page
        .text(".devices-empty")
        .await
        .contains("No devices have sent telemetry yet"));
    page.wait_for(
        "the live subscription",
        SLOW,
        "return document.querySelector('.devices-view').dataset.live === 'true'",
    )
    .await;
    page.screenshot("01-empty").await;

    // The device's first reading, while the view is open: it appears at once.
    let first: GpsView = send(&app, &key, "gps", fix(0, millis_ago(120))).await;
    page.wait_for(
        "the new device in the list",
        SLOW,
        &format!(
            "return document.querySelector('{}')",
            device_item("button.device")
        ),
    )
    .await;
    page.wait_for("its one fix", SLOW, &format!("return {TRACK_POINTS}"))
        .await;

    // The rest of its readings, then a reload: everything comes from the API.
    let mut last = first;
    for i in 1..FIXES {
        last = send(&app, &key, "gps", fix(i, millis_ago(120) + i as i64 * 5_000)).await;
    }
    for i in 0..GYROS {
        let t = i as f64 / 2.0;
        let _: GyroscopeView = send(
            &app,
            &key,
            "gyroscope",
            json!({"device_id": DEVICE, "timestamp": millis_ago(100) + i as i64 * 5_000,
                   "x": 0.4 * t.sin(), "y": -0.2 * t.cos(), "z": 0.1 * t}),
        )
        .await;
    }
    let photo = send_photo(&app, &key, millis_ago(60)).await;
    assert!(!photo.faces.is_empty() && !photo.recognized, "{photo:?}");

    page.goto(&app.url("/#/devices")).await;
    page.wait_for(
        "the device after the reload",
        SLOW,
        &format!(
            "return document.querySelector('{}')?.textContent",
            device_item(".device-where")
        ),
    )
    .await;
    assert_eq!(
        page.text(&device_item(".device-where")).await,
        position(last.latitude, last.longitude),
        "the list shows the last position"
    );
    assert!(page
        .text(&device_item(".device-seen"))
        .await
        .starts_with("Last seen"));
    page.click(&device_item("button.device")).await;
    assert_eq!(
        page.attr(&device_item("button.device"), "aria-current")
            .await
            .as_deref(),
        Some("true")
    );
    page.wait_for(
        "the track of every fix",
        SLOW,
        &format!("return document.querySelector('#device-title')?.textContent === '{DEVICE}' && ({TRACK_POINTS}) === {FIXES}"),
    )
    .await;
    let label = page.attr(".device-detail svg.track", "aria-label").await.unwrap();
    assert!(
        label.starts_with(&format!("GPS track of {DEVICE}, {FIXES} fixes")),
        "{label}"
    );
    let lines = page
        .wait_for(
            "the gyroscope chart",
            SLOW,
            "const lines = [...document.querySelectorAll('.device-detail svg.gyro polyline')]; \
             return lines.length === 3 && lines.map(l => l.dataset.axis + ':' + l.points.numberOfItems).join(' ')",
        )
        .await;
    assert_eq!(lines, json!(format!("x:{GYROS} y:{GYROS} z:{GYROS}")));
    let faces = photo.faces.len();
    let face_text = if faces == 1 {
        "1 face".to_owned()
    } else {
        format!("{faces} faces")
    };
    page.wait_for(
        "the photo's thumbnail",
        SLOW,
        &format!(
            "const p = document.querySelector('.device-photo[data-photo-id=\"{}\"]'); const i = p?.querySelector('img.thumb'); \
             return i && i.complete && i.naturalWidth > 0 && p.querySelector('.face-count').textContent === '{face_text}'",
            photo.id
        ),
    )
    .await;
    assert_eq!(page.text(".device-photo .photo-badge").await, "New");

    // New readings while the page stays open arrive over the WebSocket.
    page.wait_for(
        "the live subscription",
        SLOW,
        "return document.querySelector('.devices-view').dataset.live === 'true'",
    )
    .await;
    page.js("window.notReloaded = true", vec![]).await;
    let newest: GpsView = send(&app, &key, "gps", fix(FIXES, millis_ago(1))).await;
    page.wait_for(
        "the track to gain the new fix",
        SLOW,
        &format!("return ({TRACK_POINTS}) === {}", FIXES + 1),
    )
    .await;
    page.wait_for(
        "the new last position in the list",
        SLOW,
        &format!(
            "return document.querySelector('{}')?.textContent === '{}'",
            device_item(".device-where"),
            position(newest.latitude, newest.longitude)
        ),
    )
    .await;
    // She is enrolled now; the same face again is recognised among the
    // earlier photos, and named.
    enrol(&app, &user, "Eileen").await;
    let again = send_photo(&app, &key, millis_ago(0)).await;
    assert!(again.recognized, "{again:?}");
    page.wait_for(
        "the recognised photo",
        SLOW,
        &format!(
            "const p = document.querySelectorAll('.device-photo'); \
             return p.length === 2 && p[0].dataset.photoId === '{}' && p[0].querySelector('.photo-badge').textContent === 'Recognised' \
                 && p[0].querySelector('.photo-who')?.textContent === 'Eileen'",
            again.id
        ),
    )
    .await;
    assert_eq!(
        page.js("return window.notReloaded === true", vec![]).await,
        json!(true)
    );
    page.js("document.activeElement?.blur()", vec![]).await;
    page.screenshot("02-device").await;
    page.js(
        "document.querySelector('.device-panel-photos').scrollIntoView({block: 'end'})",
        vec![],
    )
    .await;
    page.screenshot("03-photos").await;
    page.close().await;
}
