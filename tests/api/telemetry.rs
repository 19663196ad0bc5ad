//! Telemetry from devices: validation that names every bad field and stores
//! nothing, idempotent retries, owners and scoped keys, the read API, the
//! batch, and photos recognised among the earlier ones (real models, real
//! photos of real people from ../shared/data/identities).

use base64::Engine;
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use vigil_wire::paging::PageOf;
use vigil_wire::people::Identity;
use vigil_wire::telemetry::{BatchResult, DeviceView, GpsView, GyroscopeView, PhotoView, ReadingView};
use vigil_wire::{ErrorBody, ErrorCode};

use crate::helpers::{
    body, error_code, plain_jpeg, spawn_app, spawn_app_with, test_asset, AppOptions, TestApp, TestUser,
};
use crate::people::identities;

const TELEMETRY: [&str; 4] = [
    "devices",
    "telemetry_gyroscope",
    "telemetry_gps",
    "telemetry_photos",
];

impl TestApp {
    /// A key of `user` restricted to telemetry.
    async fn telemetry_key(&self, user: &TestUser) -> String {
        let response = self
            .http
            .post(self.url("/api/v1/api-keys"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "name": "truck", "scope": "telemetry" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["scope"], "telemetry");
        created["key"].as_str().unwrap().to_owned()
    }

    async fn send(&self, key: &str, path: &str, reading: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("X-API-Key", key)
            .json(reading)
            .send()
            .await
            .unwrap()
    }

    async fn send_raw(&self, key: &str, path: &str, content_type: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("X-API-Key", key)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    async fn send_photo(&self, key: &str, device: &str, at: i64, photo: Vec<u8>) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("device_id", device.to_owned())
            .text("timestamp", at.to_string())
            .part("photo", reqwest::multipart::Part::bytes(photo).file_name("p.jpg"));
        self.http
            .post(self.url("/telemetry/photo"))
            .header("X-API-Key", key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn telemetry_counts(&self) -> Vec<u64> {
        let mut counts = Vec::new();
        for name in TELEMETRY {
            counts.push(
                self.db
                    .collection::<mongodb::bson::Document>(name)
                    .count_documents(mongodb::bson::doc! {})
                    .await
                    .unwrap(),
            );
        }
        counts
    }

    async fn quota_used(&self, user: &TestUser) -> u64 {
        let me: Value = self.fetch_as("/api/v1/users/me", &user.access_token).await;
        me["api_requests_used"].as_u64().unwrap()
    }
}

fn millis_ago(seconds: i64) -> i64 {
    (Utc::now() - ChronoDuration::seconds(seconds)).timestamp_millis()
}

#[tokio::test]
async fn readings_are_stored_once_and_read_back_per_device() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let at = millis_ago(60);

    let gyro = json!({"device_id": "aa-bb-cc-dd-ee-01", "timestamp": at, "x": 0.5, "y": -1, "z": 9.81});
    let first = app.send(&key, "/telemetry/gyroscope", &gyro).await;
    assert_eq!(first.status(), 201);
    let first: GyroscopeView = body(first).await;
    assert_eq!(
        first.device_id, "AA:BB:CC:DD:EE:01",
        "MAC addresses are normalised"
    );
    assert_eq!(first.collected_at.timestamp_millis(), at);
    assert_eq!((first.x, first.y, first.z), (0.5, -1.0, 9.81));

    // The phone lost the answer and sends the same reading again.
    let retry = app.send(&key, "/telemetry/gyroscope", &gyro).await;
    assert_eq!(retry.status(), 200);
    let retry: GyroscopeView = body(retry).await;
    assert_eq!(retry.id, first.id);

    // Two fixes, the later one sent first: the last position follows collection time.
    let rfc = |millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .unwrap()
            .to_rfc3339()
    };
    let late = json!({"device_id": "AA:BB:CC:DD:EE:01", "timestamp": rfc(at + 10_000), "latitude": 52.52, "longitude": 13.40,
                      "accuracy": 4.5, "altitude": 34.0, "speed": 8.3, "heading": 270.0, "battery": "ignored"});
    let early =
        json!({"device_id": "AA:BB:CC:DD:EE:01", "timestamp": at, "latitude": 52.50, "longitude": 13.38});
    let late: GpsView = body(app.send(&key, "/telemetry/gps", &late).await).await;
    assert_eq!((late.speed, late.heading), (Some(8.3), Some(270.0)));
    let response = app.send(&key, "/telemetry/gps", &early).await;
    assert_eq!(response.status(), 201);

    assert_eq!(app.telemetry_counts().await, [1, 1, 2, 0]);
    assert_eq!(
        app.quota_used(&user).await,
        0,
        "readings without a photo take no quota"
    );

    // The front end reads with the owner's token.
    let devices: Vec<DeviceView> = app.fetch_as("/api/v1/devices", &user.access_token).await;
    assert_eq!(devices.len(), 1);
    let position = devices[0].last_position.as_ref().unwrap();
    assert_eq!((position.latitude, position.longitude), (52.52, 13.40));
    let device: DeviceView = app
        .fetch_as("/api/v1/devices/AA:BB:CC:DD:EE:01", &user.access_token)
        .await;
    assert_eq!(device.id, "AA:BB:CC:DD:EE:01");

    let fixes: PageOf<GpsView> = app
        .fetch_as(
            "/api/v1/devices/AA:BB:CC:DD:EE:01/gps?limit=1",
            &user.access_token,
        )
        .await;
    assert_eq!(fixes.items[0].id, late.id, "newest first");
    let cursor = fixes.next_cursor.expect("a second page");
    let rest: PageOf<GpsView> = app
        .fetch_as(
            &format!("/api/v1/devices/AA:BB:CC:DD:EE:01/gps?limit=1&cursor={cursor}"),
            &user.access_token,
        )
        .await;
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].collected_at.timestamp_millis(), at);
    assert!(rest.next_cursor.is_none());
    let window = format!(
        "/api/v1/devices/AA:BB:CC:DD:EE:01/gps?from={}",
        urlencode(&rfc(at + 5_000))
    );
    let recent: PageOf<GpsView> = app.fetch_as(&window, &user.access_token).await;
    assert_eq!(recent.items.len(), 1, "`from` bounds the collection time");
    let gyros: PageOf<GyroscopeView> = app
        .fetch_as("/api/v1/devices/AA:BB:CC:DD:EE:01/gyroscope", &user.access_token)
        .await;
    assert_eq!(gyros.items.len(), 1);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every way a reading can be wrong, each answered with the field named and
/// nothing stored.
#[tokio::test]
async fn bad_readings_are_refused_with_every_field_named_and_nothing_stored() {
    // Some eighty refusals in a row: above the default rate limit.
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 1000)).await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let at = millis_ago(5);
    let gps = json!({"device_id": "truck-1", "timestamp": at, "latitude": 1.0, "longitude": 2.0});
    let gyro = json!({"device_id": "truck-1", "timestamp": at, "x": 1.0, "y": 2.0, "z": 3.0});
    let with = |base: &Value, field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let without = |base: &Value, field: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };

    let mut cases: Vec<(&str, Value, Vec<&str>)> = Vec::new();
    for field in ["device_id", "timestamp", "latitude", "longitude"] {
        cases.push(("/telemetry/gps", without(&gps, field), vec![field]));
        cases.push(("/telemetry/gps", with(&gps, field, Value::Null), vec![field]));
        cases.push((
            "/telemetry/gps",
            with(&gps, field, json!({"nested": 1})),
            vec![field],
        ));
    }
    for field in ["x", "y", "z"] {
        cases.push(("/telemetry/gyroscope", without(&gyro, field), vec![field]));
        cases.push((
            "/telemetry/gyroscope",
            with(&gyro, field, json!("1.5")),
            vec![field],
        ));
    }
    let far_future = Utc::now().timestamp_millis() + 3_600_000;
    cases.extend([
        ("/telemetry/gyroscope", with(&gyro, "x", json!("NaN")), vec!["x"]),
        (
            "/telemetry/gyroscope",
            with(&gyro, "y", json!("Infinity")),
            vec!["y"],
        ),
        (
            "/telemetry/gyroscope",
            with(&gyro, "z", json!("-Infinity")),
            vec!["z"],
        ),
        ("/telemetry/gyroscope", with(&gyro, "x", json!(1e6)), vec!["x"]),
        (
            "/telemetry/gps",
            with(&gps, "latitude", json!(90.0001)),
            vec!["latitude"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "latitude", json!(-91)),
            vec!["latitude"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "longitude", json!(180.5)),
            vec!["longitude"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "longitude", json!(-181)),
            vec!["longitude"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "heading", json!(360)),
            vec!["heading"],
        ),
        ("/telemetry/gps", with(&gps, "speed", json!(-1)), vec!["speed"]),
        (
            "/telemetry/gps",
            with(&gps, "accuracy", json!("good")),
            vec!["accuracy"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "timestamp", json!(far_future)),
            vec!["timestamp"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "timestamp", json!("2026-13-01T00:00:00Z")),
            vec!["timestamp"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "timestamp", json!("yesterday")),
            vec!["timestamp"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "timestamp", json!(1.5)),
            vec!["timestamp"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "device_id", json!("")),
            vec!["device_id"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "device_id", json!("has space")),
            vec!["device_id"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "device_id", json!("x".repeat(65))),
            vec!["device_id"],
        ),
        (
            "/telemetry/gps",
            with(&gps, "device_id", json!(42)),
            vec!["device_id"],
        ),
        (
            "/telemetry/gps",
            json!({}),
            vec!["device_id", "timestamp", "latitude", "longitude"],
        ),
        ("/telemetry/gps", json!([gps.clone()]), vec!["body"]),
        (
            "/telemetry/gps",
            json!({"device_id": "a", "timestamp": "x", "latitude": 100, "longitude": "y"}),
            vec!["timestamp", "latitude", "longitude"],
        ),
    ]);
    for (path, reading, fields) in &cases {
        let response = app.send(&key, path, reading).await;
        assert_eq!(response.status(), 400, "{path} {reading}");
        let error: ErrorBody = body(response).await;
        assert_eq!(error.error.code, ErrorCode::InvalidReading, "{path} {reading}");
        let named: Vec<&str> = error.error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(&named, fields, "{path} {reading}: {}", error.error.message);
        for field in fields {
            assert!(
                error.error.message.contains(field),
                "the message names `{field}`: {}",
                error.error.message
            );
        }
    }

    // Not JSON at all, the wrong type, an empty body, too much of it.
    let raw: Vec<(&str, &str, Vec<u8>, u16, ErrorCode)> = vec![
        (
            "/telemetry/gps",
            "application/json",
            b"{\"device_id\": ".to_vec(),
            400,
            ErrorCode::InvalidJson,
        ),
        (
            "/telemetry/gps",
            "application/json",
            b"{\"latitude\": NaN}".to_vec(),
            400,
            ErrorCode::InvalidJson,
        ),
        (
            "/telemetry/gps",
            "application/json",
            Vec::new(),
            400,
            ErrorCode::InvalidJson,
        ),
        (
            "/telemetry/gyroscope",
            "text/plain",
            gyro.to_string().into_bytes(),
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "/telemetry/gyroscope",
            "application/json",
            vec![b' '; 10 * 1024 * 1024],
            413,
            ErrorCode::PayloadTooLarge,
        ),
        (
            "/telemetry/photo",
            "text/plain",
            b"hello".to_vec(),
            415,
            ErrorCode::UnsupportedMediaType,
        ),
    ];
    for (path, content_type, bytes, status, code) in raw {
        let response = app.send_raw(&key, path, content_type, bytes).await;
        assert_eq!(response.status(), status, "{path} {content_type}");
        assert_eq!(error_code(response).await, code, "{path} {content_type}");
    }

    // Photos: not an image, no photo, bad base64.
    let not_an_image = app
        .send_photo(&key, "truck-1", at, b"plain text, not an image".to_vec())
        .await;
    assert_eq!(not_an_image.status(), 400);
    let error: ErrorBody = body(not_an_image).await;
    assert_eq!(error.error.fields[0].field, "photo");
    let missing = app
        .send(
            &key,
            "/telemetry/photo",
            &json!({"device_id": "truck-1", "timestamp": at}),
        )
        .await;
    let error: ErrorBody = body(missing).await;
    assert_eq!(error.error.fields[0].field, "photo");
    let garbage = app
        .send(
            &key,
            "/telemetry/photo",
            &json!({"device_id": "truck-1", "timestamp": at, "photo": "%%%"}),
        )
        .await;
    assert_eq!(garbage.status(), 400);

    assert_eq!(
        app.telemetry_counts().await,
        [0, 0, 0, 0],
        "a refusal stores nothing"
    );
    assert_eq!(app.quota_used(&user).await, 0, "a refused photo costs nothing");
}

#[tokio::test]
async fn telemetry_keys_only_send_and_devices_belong_to_their_first_owner() {
    let app = spawn_app().await;
    let (alice, bob) = (app.create_user().await, app.create_user().await);
    let (alice_key, bob_key) = (app.telemetry_key(&alice).await, app.telemetry_key(&bob).await);
    let fix = json!({"device_id": "van-7", "timestamp": millis_ago(1), "latitude": 0.0, "longitude": 0.0});
    assert_eq!(app.send(&alice_key, "/telemetry/gps", &fix).await.status(), 201);

    // A telemetry key is no good for anything else.
    for path in [
        "/api/v1/devices",
        "/api/v1/detections",
        "/api/v1/users/me",
        "/api/v1/api-keys",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("X-API-Key", &alice_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(error_code(response).await, ErrorCode::ScopeForbidden);
    }
    // A full key sends telemetry too.
    let full = app.create_api_key(&alice.access_token, "full").await;
    let later = json!({"device_id": "van-7", "timestamp": millis_ago(0), "x": 0, "y": 0, "z": 0});
    assert_eq!(
        app.send(&full.key, "/telemetry/gyroscope", &later).await.status(),
        201
    );

    // Bob's key cannot write to Alice's device, nor Bob read it.
    let response = app.send(&bob_key, "/telemetry/gps", &fix).await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, ErrorCode::DeviceTaken);
    for path in [
        "/api/v1/devices/van-7",
        "/api/v1/devices/van-7/gps",
        "/api/v1/devices/van-7/photos",
        "/api/v1/devices/nope",
    ] {
        assert_eq!(app.get_as(path, &bob.access_token).await.status(), 404, "{path}");
    }
    let bobs: Vec<DeviceView> = app.fetch_as("/api/v1/devices", &bob.access_token).await;
    assert!(bobs.is_empty());
    let alices: PageOf<GpsView> = app
        .fetch_as("/api/v1/devices/van-7/gps", &alice.access_token)
        .await;
    assert_eq!(alices.items.len(), 1);
    assert_eq!(app.telemetry_counts().await, [1, 1, 1, 0]);

    let unauthenticated = app
        .http
        .post(app.url("/telemetry/gps"))
        .json(&fix)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn a_batch_stores_good_items_and_refuses_bad_ones() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let at = millis_ago(600);
    let photo = base64::engine::general_purpose::STANDARD.encode(test_asset("astronaut.png"));
    let items = json!({"items": [
        {"kind": "gps", "device_id": "car-1", "timestamp": at, "latitude": 10.0, "longitude": 20.0},
        {"kind": "gyroscope", "device_id": "car-1", "timestamp": at, "x": 1, "y": 2},
        {"kind": "radar", "device_id": "car-1", "timestamp": at},
        {"kind": "gyroscope", "device_id": "car-1", "timestamp": at + 1000, "x": 1, "y": 2, "z": 3},
        {"kind": "photo", "device_id": "car-1", "timestamp": at, "photo": format!("data:image/png;base64,{photo}")},
    ]});
    let response = app.send(&key, "/telemetry/batch", &items).await;
    assert_eq!(response.status(), 200);
    let result: BatchResult = body(response).await;
    let statuses: Vec<u16> = result.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 400, 400, 201, 201]);
    let missing_z = result.results[1].error.as_ref().unwrap();
    assert_eq!(missing_z.fields[0].field, "items[1].z");
    assert_eq!(
        result.results[2].error.as_ref().unwrap().fields[0].field,
        "items[2].kind"
    );
    match &result.results[4].record {
        Some(ReadingView::Photo(photo)) => assert_eq!(photo.faces.len(), 1, "{photo:?}"),
        other => panic!("a photo record, got {other:?}"),
    }

    // The device comes back and sends everything again: nothing twice.
    let again: BatchResult = body(app.send(&key, "/telemetry/batch", &items).await).await;
    let statuses: Vec<u16> = again.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400, 400, 200, 200]);
    assert_eq!(app.telemetry_counts().await, [1, 1, 1, 1]);
    assert_eq!(app.quota_used(&user).await, 1, "one analysed photo, one unit");

    for bad in [
        json!({"items": []}),
        json!({"items": "x"}),
        json!({}),
        json!({"items": vec![json!({}); 101]}),
    ] {
        let response = app.send(&key, "/telemetry/batch", &bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(error_code(response).await, ErrorCode::InvalidReading);
    }
}

/// Photos of one person sent in turn: the first is new, each later one is
/// recognised as an earlier photo; another person is not.
#[tokio::test]
async fn photos_are_recognised_among_the_earlier_ones() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let people = identities();
    let (first_person, photos) = &people[0];
    let (second_person, others) = &people[1];
    let mut at = millis_ago(3600);
    let mut next_at = || {
        at += 10_000;
        at
    };

    let mut seen: Vec<PhotoView> = Vec::new();
    for (i, path) in photos.iter().take(4).enumerate() {
        let response = app
            .send_photo(&key, "bus-3", next_at(), std::fs::read(path).unwrap())
            .await;
        assert_eq!(response.status(), 201, "{}", path.display());
        let photo: PhotoView = body(response).await;
        assert!(!photo.faces.is_empty(), "{}: a face", path.display());
        if i == 0 {
            assert!(
                !photo.recognized,
                "the first photo of {first_person} is new: {photo:?}"
            );
            assert!(photo.best_match.is_none(), "nothing earlier to compare with");
        } else {
            assert!(
                photo.recognized,
                "photo {i} of {first_person} is recognised: {:?}",
                photo.best_match
            );
            let found = photo.best_match.as_ref().unwrap();
            assert!(
                seen.iter().any(|p| p.id == found.photo_id),
                "the match is an earlier photo"
            );
            assert!(found.distance <= 0.55, "{found:?}");
        }
        seen.push(photo);
    }

    // Sent as JSON with base64 this time, from another device of the same owner.
    let stranger = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&others[0]).unwrap());
    let reading = json!({"device_id": "bus-4", "timestamp": next_at(), "photo": stranger});
    let response = app.send(&key, "/telemetry/photo", &reading).await;
    assert_eq!(response.status(), 201);
    let photo: PhotoView = body(response).await;
    assert!(
        !photo.recognized,
        "{second_person} was never seen: {:?}",
        photo.best_match
    );
    assert!(photo.best_match.as_ref().is_some_and(|m| m.distance > 0.55));

    // A retry answers the stored photo and takes no quota.
    assert_eq!(app.quota_used(&user).await, 5);
    let retry = app.send(&key, "/telemetry/photo", &reading).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(body::<PhotoView>(retry).await.id, photo.id);
    assert_eq!(app.quota_used(&user).await, 5);

    // Read back with their faces, newest first; the image is served.
    let listed: PageOf<PhotoView> = app
        .fetch_as("/api/v1/devices/bus-3/photos", &user.access_token)
        .await;
    let ids: Vec<&str> = listed.items.iter().map(|p| p.id.as_str()).collect();
    let expected: Vec<&str> = seen.iter().rev().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, expected);
    assert_eq!(listed.items[0].recognized, seen[3].recognized);
    let image = app
        .http
        .get(app.url(&listed.items[0].image_url))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(
        image.bytes().await.unwrap().len(),
        std::fs::read(&photos[3]).unwrap().len()
    );

    // Once the person is enrolled as a subject, the match says who it is.
    let subject: Value = body(
        app.http
            .post(app.url("/api/v1/subjects"))
            .bearer_auth(&user.access_token)
            .json(&json!({"name": "Ada"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let enrolled = app
        .http
        .post(app.url(&format!(
            "/api/v1/subjects/{}/faces",
            subject["id"].as_str().unwrap()
        )))
        .bearer_auth(&user.access_token)
        .header("content-type", "image/jpeg")
        .body(std::fs::read(&photos[5]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 201);
    let named: PhotoView = body(
        app.send_photo(&key, "bus-3", next_at(), std::fs::read(&photos[4]).unwrap())
            .await,
    )
    .await;
    let found = named.best_match.as_ref().expect("a match");
    assert!(named.recognized);
    assert_eq!(
        found.subject.as_ref().map(|s| s.name.as_str()),
        Some("Ada"),
        "{named:?}"
    );
    let face = &named.faces[found.face_index as usize];
    assert!(matches!(&face.identity, Some(Identity::Recognised(r)) if r.name == "Ada"));

    // A photo without a face is stored, not recognised, and costs its unit.
    let blank = app
        .send_photo(&key, "bus-3", next_at(), plain_jpeg(320, 240))
        .await;
    assert_eq!(blank.status(), 201);
    let blank: PhotoView = body(blank).await;
    assert!(blank.faces.is_empty() && !blank.recognized && blank.best_match.is_none());

    // Another account's devices never match this one's photos: its first
    // photo of the same person is new to it.
    let other = app.create_user().await;
    let other_key = app.telemetry_key(&other).await;
    let theirs: PhotoView = body(
        app.send_photo(
            &other_key,
            "taxi-1",
            next_at(),
            std::fs::read(&photos[6]).unwrap(),
        )
        .await,
    )
    .await;
    assert!(!theirs.faces.is_empty());
    assert!(!theirs.recognized && theirs.best_match.is_none(), "{theirs:?}");
}

/// The `telemetry` topic pushes each stored reading to the owner's sessions
/// only, once: a retry pushes nothing.
#[tokio::test]
async fn readings_are_pushed_live_to_their_owner_only() {
    use crate::helpers::{next_of, quiet, send, sync};
    use vigil_wire::hub::ServerMessage;

    let app = spawn_app().await;
    let (alice, bob) = (app.create_user().await, app.create_user().await);
    let key = app.telemetry_key(&alice).await;
    let (mut mine, _) = quiet(&app.api, &format!("?token={}", alice.access_token)).await;
    let (mut theirs, _) = quiet(&app.api, &format!("?token={}", bob.access_token)).await;
    let (mut anonymous, _) = quiet(&app.api, "").await;
    for ws in [&mut mine, &mut theirs] {
        send(ws, json!({"type": "subscribe", "topics": ["telemetry"]})).await;
        assert_eq!(
            next_of(ws, "subscribed").await,
            ServerMessage::Subscribed {
                topics: vec![vigil_wire::hub::Topic::Telemetry]
            }
        );
    }
    send(
        &mut anonymous,
        json!({"type": "subscribe", "topics": ["telemetry"]}),
    )
    .await;
    match next_of(&mut anonymous, "error").await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::Unauthenticated),
        other => panic!("{other:?}"),
    }

    let fix = json!({"device_id": "tram-9", "timestamp": millis_ago(2), "latitude": 48.1, "longitude": 11.6});
    let stored: GpsView = body(app.send(&key, "/telemetry/gps", &fix).await).await;
    match next_of(&mut mine, "telemetry").await {
        ServerMessage::Telemetry {
            reading: ReadingView::Gps(pushed),
        } => assert_eq!(pushed, stored),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.send(&key, "/telemetry/gps", &fix).await.status(), 200);
    let later = json!({"device_id": "tram-9", "timestamp": millis_ago(1), "x": 0.1, "y": 0.2, "z": 0.3});
    let gyro: GyroscopeView = body(app.send(&key, "/telemetry/gyroscope", &later).await).await;
    match next_of(&mut mine, "telemetry").await {
        ServerMessage::Telemetry {
            reading: ReadingView::Gyroscope(pushed),
        } => {
            assert_eq!(
                pushed, gyro,
                "the retry pushed nothing: the next reading is the gyroscope"
            )
        }
        other => panic!("{other:?}"),
    }
    let missed: Vec<_> = sync(&mut theirs)
        .await
        .into_iter()
        .filter(|m| m.kind() == "telemetry")
        .collect();
    assert!(missed.is_empty(), "another account's session saw {missed:?}");
}

/// `vigil client telemetry` for 30 s, with the connection to the server cut
/// for a few seconds on the way: every reading of every round is stored,
/// once, and the rounds are evenly spaced (none lost while cut off).
#[tokio::test]
async fn the_simulator_sends_every_reading_once_through_an_outage() {
    use crate::helpers::vigil_command;
    use crate::proxy::CutProxy;
    use std::time::{Duration, Instant};

    // The backlog after the outage goes out at once: the default rate limit
    // would answer part of it 429 (retried, so nothing lost, but "refused"
    // is what this test looks for).
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = CutProxy::start(([127, 0, 0, 1], port).into()).await;
    let photos = tempfile::tempdir().unwrap();
    for (i, path) in identities()[2].1.iter().take(3).enumerate() {
        std::fs::copy(path, photos.path().join(format!("{i}.jpg"))).unwrap();
    }
    let child = vigil_command()
        .args([
            "client",
            "--server",
            &format!("http://127.0.0.1:{}", proxy.port),
            "--api-key",
            &key,
        ])
        .args([
            "--timeout-secs",
            "10",
            "telemetry",
            "--device-id",
            "02:00:00:00:00:0a",
            "--every",
            "1s",
        ])
        .args(["--duration", "30s", "--start", "-33.86,151.21", "--photos"])
        .arg(photos.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.restore();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(80),
        "it ends once the queue is sent"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("not sent"), "the outage was felt: {stderr}");
    assert!(!stderr.contains("refused"), "{stderr}");

    let device = "/api/v1/devices/02:00:00:00:00:0A";
    let fixes: PageOf<GpsView> = app
        .fetch_as(&format!("{device}/gps?limit=200"), &user.access_token)
        .await;
    let gyros: PageOf<GyroscopeView> = app
        .fetch_as(&format!("{device}/gyroscope?limit=200"), &user.access_token)
        .await;
    let shots: PageOf<PhotoView> = app
        .fetch_as(&format!("{device}/photos?limit=200"), &user.access_token)
        .await;
    let rounds = fixes.items.len();
    assert!(
        (28..=32).contains(&rounds),
        "about one round a second for 30 s: {rounds}\n{stdout}{stderr}"
    );
    assert_eq!(gyros.items.len(), rounds);
    assert_eq!(shots.items.len(), rounds);
    for kind in ["gps", "gyroscope", "photo"] {
        let answered = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{kind} ")))
            .count();
        assert_eq!(answered, rounds, "one answer per {kind} reading:\n{stdout}");
    }
    // Newest first; a round lost during the outage would leave a gap.
    for pair in fixes.items.windows(2) {
        let gap = pair[0].collected_at - pair[1].collected_at;
        assert!(
            gap <= ChronoDuration::milliseconds(2500),
            "a gap of {gap} in the track"
        );
        assert!(
            pair[1].latitude < 0.0 && pair[1].longitude > 150.0,
            "the track starts where asked"
        );
    }
    let recognised = shots.items.iter().filter(|p| p.recognized).count();
    assert!(
        recognised >= rounds - 1,
        "the same person, again and again: {recognised} of {rounds}"
    );
}

#[tokio::test]
async fn a_photo_past_the_quota_stores_nothing_and_readings_go_on() {
    let app = spawn_app_with(AppOptions::default().flag("--default-quota", 0)).await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let at = millis_ago(60);
    let refused = app
        .send_photo(&key, "van-9", at, test_asset("astronaut.png"))
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(error_code(refused).await, ErrorCode::QuotaExhausted);
    assert_eq!(
        app.telemetry_counts().await,
        [0, 0, 0, 0],
        "not even the device is kept"
    );
    // Readings are not analysed and cost nothing: they go on at zero quota.
    let gps = json!({"device_id": "van-9", "timestamp": at, "latitude": 1.0, "longitude": 2.0});
    assert_eq!(app.send(&key, "/telemetry/gps", &gps).await.status(), 201);
    assert_eq!(app.telemetry_counts().await, [1, 0, 1, 0]);
    assert_eq!(app.quota_used(&user).await, 0);
}

#[tokio::test]
async fn telemetry_is_rate_limited_like_any_request_and_a_batch_is_one_request() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--rate-limit-per-second", 1)
            .flag("--rate-limit-burst", 2),
    )
    .await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let at = millis_ago(60);
    let gyro = |i: i64| json!({"kind": "gyroscope", "device_id": "bus-3", "timestamp": at + i, "x": 0, "y": 0, "z": 1});
    let batch = json!({ "items": (0..5).map(gyro).collect::<Vec<_>>() });
    let response = app.send(&key, "/telemetry/batch", &batch).await;
    assert_eq!(response.status(), 200, "the batch takes one token of two");
    let gps = json!({"device_id": "bus-3", "timestamp": at, "latitude": 1.0, "longitude": 2.0});
    assert_eq!(app.send(&key, "/telemetry/gps", &gps).await.status(), 201);
    let limited = app.send(&key, "/telemetry/gps", &gps).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(error_code(limited).await, ErrorCode::RateLimited);
    assert_eq!(app.telemetry_counts().await, [1, 5, 1, 0]);
}

#[tokio::test]
async fn the_documented_refusals_are_what_the_server_answers() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let document: Value = body(app.get("/api-docs/openapi.json").await).await;
    let example = |path: &str| {
        document["paths"][path]["post"]["responses"]["400"]["content"]["application/json"]["example"].clone()
    };
    let answered: Value = body(app.send(&key, "/telemetry/batch", &json!({})).await).await;
    assert_eq!(answered, example("/telemetry/batch"));
    let form = reqwest::multipart::Form::new()
        .text("device_id", "car-1")
        .text("timestamp", millis_ago(5).to_string());
    let answered: Value = body(
        app.http
            .post(app.url("/telemetry/photo"))
            .header("X-API-Key", &key)
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answered, example("/telemetry/photo"));
    // Both ways of sending a photo are described, field by field.
    let photo = &document["paths"]["/telemetry/photo"]["post"]["requestBody"]["content"];
    for media in ["multipart/form-data", "application/json"] {
        let reference = photo[media]["schema"]["$ref"].as_str().expect(media);
        let name = reference.rsplit('/').next().unwrap();
        let fields = &document["components"]["schemas"][name]["properties"];
        for field in ["device_id", "timestamp", "photo"] {
            assert!(fields.get(field).is_some(), "{media} lacks {field}");
        }
    }
}

#[tokio::test]
async fn the_clock_skew_is_configurable_and_a_photo_form_names_its_missing_fields() {
    let app = spawn_app_with(AppOptions::default().flag("--telemetry-max-skew-secs", 10)).await;
    let user = app.create_user().await;
    let key = app.telemetry_key(&user).await;
    let ahead = |seconds: i64| (Utc::now() + ChronoDuration::seconds(seconds)).timestamp_millis();
    let gps = |at: i64| json!({"device_id": "cab-1", "timestamp": at, "latitude": 1.0, "longitude": 2.0});
    assert_eq!(
        app.send(&key, "/telemetry/gps", &gps(ahead(3))).await.status(),
        201
    );
    let refused = app.send(&key, "/telemetry/gps", &gps(ahead(60))).await;
    assert_eq!(refused.status(), 400);
    let refused: ErrorBody = body(refused).await;
    assert_eq!(refused.error.fields[0].field, "timestamp");

    let form = reqwest::multipart::Form::new().part(
        "photo",
        reqwest::multipart::Part::bytes(test_asset("astronaut.png")).file_name("p.png"),
    );
    let response = app
        .http
        .post(app.url("/telemetry/photo"))
        .header("X-API-Key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let refused: ErrorBody = body(response).await;
    let mut named: Vec<&str> = refused.error.fields.iter().map(|f| f.field.as_str()).collect();
    named.sort();
    assert_eq!(named, ["device_id", "timestamp"]);
    assert_eq!(app.telemetry_counts().await, [1, 0, 1, 0], "only the first fix");
}
