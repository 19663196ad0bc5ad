use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use vigil_wire::alarms::AlarmView;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{
    body, error_code, plain_jpeg, query, spawn_app, spawn_app_with, stored_images, test_asset, AppOptions,
    TestApp, TestUser, Upload, User, TEST_SECRET,
};

/// The user's own account, as `GET /api/v1/users/me` shows it.
async fn me(app: &TestApp, user: &TestUser) -> User {
    app.fetch_as("/api/v1/users/me", &user.access_token).await
}

/// A page of the user's detections for these query parameters.
async fn detections(app: &TestApp, user: &TestUser, params: &[(&str, &str)]) -> PageOf<DetectionView> {
    let path = format!("/api/v1/detections?{}", query(params));
    app.fetch_as(&path, &user.access_token).await
}

#[tokio::test]
async fn a_face_gives_one_face_one_alarm_and_saved_images() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let detection = app.upload_face(&user).await;
    assert_eq!(detection.face_count, 1);
    assert_eq!(detection.faces.len(), 1);
    assert_eq!(detection.width, 512);
    assert_eq!(detection.source, "upload");
    assert_eq!(detection.model, "centerface");
    let face = &detection.faces[0].face;
    assert!(face.score > 0.5);
    assert!(face.bbox.width > 40.0);
    let alarm_id = detection.alarm_id.clone().expect("an alarm was raised");

    // An RFC 3339 `date`, or the page would not read.
    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms", &user.access_token).await;
    assert_eq!(alarms.items.len(), 1);
    let alarm = &alarms.items[0];
    assert_eq!(alarm.id, alarm_id);
    assert_eq!(alarm.message, "1 face detected on upload");
    assert_eq!(alarm.detection_id, detection.id);

    // The images: the original as sent, the annotated copy as JPEG; no headers needed.
    let original = app.http.get(app.url(&detection.image_url)).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(original.headers()["content-type"], "image/png");
    assert_eq!(
        original.bytes().await.unwrap().to_vec(),
        test_asset("astronaut.png")
    );
    let annotated = app.http.get(app.url(&alarm.img)).send().await.unwrap();
    assert_eq!(annotated.status(), 200);
    assert_eq!(annotated.headers()["content-type"], "image/jpeg");
    assert!(annotated.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let marked = image::load_from_memory(&annotated.bytes().await.unwrap()).unwrap();
    assert_eq!((marked.width(), marked.height()), (512, 512));

    let by_id = app
        .get_as(&format!("/api/v1/alarms/{alarm_id}"), &user.access_token)
        .await;
    assert_eq!(by_id.status(), 200);
}

#[tokio::test]
async fn multipart_without_faces_stores_a_result_and_no_alarm() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(test_asset("coffee.png")).file_name("coffee.png"),
        )
        .text("source", "kitchen");
    let response = app.upload(&user, Upload::Form(form)).await;
    assert_eq!(response.status(), 201);
    let raw: Value = body(response).await;
    assert!(raw.get("alarm_id").is_none(), "no alarm, not even null: {raw}");
    let detection: DetectionView = serde_json::from_value(raw).unwrap();
    assert_eq!(detection.face_count, 0);
    assert_eq!(detection.source, "kitchen");
    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms", &user.access_token).await;
    assert!(alarms.items.is_empty());
    assert_eq!(me(&app, &user).await.api_requests_used, 1);
}

#[tokio::test]
async fn results_by_id_time_range_and_pages_for_their_owner_only() {
    // A dozen calls in well under a second: past the default rate limit on an idle machine.
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--detect-max-side", 160)
            .flag("--rate-limit-per-second", 100),
    )
    .await;
    let user = app.create_user().await;
    let other = app.create_user().await;
    let before = chrono::Utc::now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = app
            .upload(&user, Upload::body(plain_jpeg(64, 48), "image/jpeg"))
            .await;
        let d: DetectionView = body(response).await;
        ids.push(d.id);
    }
    app.upload(&other, Upload::body(plain_jpeg(64, 48), "image/jpeg"))
        .await;
    let ids_of = |page: &PageOf<DetectionView>| page.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>();

    let first = detections(&app, &user, &[("limit", "2")]).await;
    assert_eq!(ids_of(&first), [ids[2].clone(), ids[1].clone()], "newest first");
    let cursor = first.next_cursor.as_deref().expect("a second page");
    let last = app
        .get_as(
            &format!(
                "/api/v1/detections?{}",
                query(&[("limit", "2"), ("cursor", cursor)])
            ),
            &user.access_token,
        )
        .await;
    let last: Value = body(last).await;
    assert!(
        last.get("next_cursor").is_none(),
        "absent on the last page: {last}"
    );
    let second: PageOf<DetectionView> = serde_json::from_value(last).unwrap();
    assert_eq!(ids_of(&second), [ids[0].clone()]);

    let from = before.to_rfc3339();
    assert_eq!(detections(&app, &user, &[("from", &from)]).await.items.len(), 3);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert!(detections(&app, &user, &[("from", &future)])
        .await
        .items
        .is_empty());
    assert!(detections(&app, &user, &[("to", &from)]).await.items.is_empty());

    assert_eq!(
        app.get_as(&format!("/api/v1/detections/{}", ids[0]), &user.access_token)
            .await
            .status(),
        200
    );
    let theirs = app
        .get_as(&format!("/api/v1/detections/{}", ids[0]), &other.access_token)
        .await;
    assert_eq!(theirs.status(), 404, "no existence leak");
    assert_eq!(error_code(theirs).await, ErrorCode::NotFound);
    let bad = app
        .get_as("/api/v1/detections?from=yesterday", &user.access_token)
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(error_code(bad).await, ErrorCode::InvalidQuery);
    assert_eq!(
        app.get_as("/api/v1/detections?limit=201", &user.access_token)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn media_urls_must_be_signed_and_fresh() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let d = app.upload_face(&user).await;
    let url = d.annotated_url.as_str();
    assert_eq!(app.http.get(app.url(url)).send().await.unwrap().status(), 200);

    let path = url.split('?').next().unwrap();
    let id: vigil::media::MediaId = path.trim_start_matches("/media/").parse().unwrap();
    let tampered = url.replace("sig=", "sig=AAAA");
    let unsigned = path.to_owned();
    let signer =
        vigil::media::signed::UrlSigner::new(TEST_SECRET.as_bytes(), std::time::Duration::from_secs(60));
    let expired = signer.url_expiring_at(&id, chrono::Utc::now().timestamp() - 5);
    let other_image = url.replacen(&id.oid.to_hex(), "0123456789abcdef01234567", 1);
    for (what, bad) in [
        ("tampered", tampered),
        ("unsigned", unsigned),
        ("expired", expired),
        ("other id", other_image),
    ] {
        let response = app.http.get(app.url(&bad)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
        assert_eq!(error_code(response).await, ErrorCode::InvalidSignature, "{what}");
    }
    let traversal = app
        .http
        .get(app.url("/media/..%2F..%2Fetc%2Fpasswd?exp=1&sig=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);
}

#[tokio::test]
async fn bad_uploads_are_refused_without_costing_quota() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--max-upload-bytes", 200_000)
            .flag("--max-image-pixels", 100_000)
            .flag("--rate-limit-per-second", 100),
    )
    .await;
    let user = app.create_user().await;
    let cases: Vec<(&str, Vec<u8>, &str, u16, ErrorCode)> = vec![
        (
            "too many bytes",
            test_asset("astronaut.png"),
            "image/png",
            413,
            ErrorCode::PayloadTooLarge,
        ),
        (
            "too many pixels",
            plain_jpeg(400, 300),
            "image/jpeg",
            413,
            ErrorCode::ImageTooLarge,
        ),
        (
            "not an image type",
            b"hello".to_vec(),
            "text/plain",
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "no content type",
            b"hello".to_vec(),
            "",
            415,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            "garbage",
            b"definitely not a jpeg".to_vec(),
            "image/jpeg",
            422,
            ErrorCode::InvalidImage,
        ),
        ("empty", Vec::new(), "image/png", 422, ErrorCode::InvalidImage),
        (
            "truncated",
            plain_jpeg(200, 150)[..300].to_vec(),
            "image/jpeg",
            422,
            ErrorCode::InvalidImage,
        ),
    ];
    for (what, bytes, content_type, status, code) in cases {
        let response = app.upload(&user, Upload::body(bytes, content_type)).await;
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(error_code(response).await, code, "{what}");
    }
    let no_field = app
        .upload(
            &user,
            Upload::Form(reqwest::multipart::Form::new().text("source", "x")),
        )
        .await;
    assert_eq!(no_field.status(), 400);
    // The content decides, not the header: a JPEG sent as image/png is accepted as a JPEG.
    let mislabelled = app
        .upload(&user, Upload::body(plain_jpeg(64, 48), "image/png"))
        .await;
    assert_eq!(mislabelled.status(), 201);
    assert_eq!(
        me(&app, &user).await.api_requests_used,
        1,
        "only the accepted image cost a unit"
    );
}

#[tokio::test]
async fn parallel_uploads_never_overdraw_the_quota() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--rate-limit-per-second", 10_000)
            .flag("--detect-max-side", 96),
    )
    .await;
    let user = app.create_user().await;
    let image = plain_jpeg(64, 48);
    let responses = futures_util::future::join_all(
        (0..130).map(|_| app.upload(&user, Upload::body(image.clone(), "image/jpeg"))),
    )
    .await;
    let mut counts: HashMap<u16, usize> = HashMap::new();
    let mut codes: HashMap<ErrorCode, usize> = HashMap::new();
    for response in responses {
        let status = response.status().as_u16();
        *counts.entry(status).or_default() += 1;
        if status == 429 {
            *codes.entry(error_code(response).await).or_default() += 1;
        }
    }
    assert_eq!(counts.get(&201), Some(&100), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&30), "{counts:?}");
    assert_eq!(codes.get(&ErrorCode::QuotaExhausted), Some(&30));
    assert_eq!(me(&app, &user).await.api_requests_used, 100);
    let stored = app
        .db
        .collection::<mongodb::bson::Document>("detections")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(stored, 100);
}

#[tokio::test]
async fn deleting_a_detection_removes_its_alarm_images_and_face_embeddings() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let d = app.upload_face(&user).await;
    let id = &d.id;
    let seen_faces = || async {
        app.db
            .collection::<mongodb::bson::Document>("seen_faces")
            .count_documents(
                mongodb::bson::doc! { "detection_id": mongodb::bson::oid::ObjectId::parse_str(id).unwrap() },
            )
            .await
            .unwrap()
    };
    assert_eq!(seen_faces().await, 1, "the portrait's face is embedded");
    let other = app.create_user().await;
    let refused = app
        .delete_as(&format!("/api/v1/detections/{id}"), &other.access_token)
        .await;
    assert_eq!(refused.status(), 404);

    let deleted = app
        .delete_as(&format!("/api/v1/detections/{id}"), &user.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get_as(&format!("/api/v1/detections/{id}"), &user.access_token)
            .await
            .status(),
        404
    );
    let alarm = d.alarm_id.as_deref().expect("an alarm");
    assert_eq!(
        app.get_as(&format!("/api/v1/alarms/{alarm}"), &user.access_token)
            .await
            .status(),
        404
    );
    for url in [d.image_url.as_str(), d.annotated_url.as_str()] {
        assert_eq!(app.http.get(app.url(url)).send().await.unwrap().status(), 404);
    }
    // The stranger was seen in this detection only: their visitor and its
    // cover went with it.
    let files = stored_images(&app.data_dir.path().join("images"));
    assert!(files.is_empty(), "{files:?}");
    assert_eq!(seen_faces().await, 0);
    let visitors = app
        .db
        .collection::<mongodb::bson::Document>("visitors")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(visitors, 0);
}

#[tokio::test]
async fn orphan_images_are_swept_at_startup() {
    let options = AppOptions::default();
    let database_name = options.database_name.clone();
    let data_dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(options.data_dir(data_dir.path())).await;
    let user = app.create_user().await;
    let d = app.upload_face(&user).await;
    let images = data_dir.path().join("images");
    let orphan_old = images.join(format!("{}.jpg", mongodb::bson::oid::ObjectId::new().to_hex()));
    let orphan_new = images.join(format!("{}.jpg", mongodb::bson::oid::ObjectId::new().to_hex()));
    std::fs::write(&orphan_old, b"left by a crash").unwrap();
    std::fs::write(&orphan_new, b"an upload still in progress").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for name in stored_images(&images) {
        let path = images.join(name);
        if path != orphan_new {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
    }

    let restarted = spawn_app_with(
        AppOptions::default()
            .database(&database_name)
            .data_dir(data_dir.path()),
    )
    .await;
    restarted.wait_for_readiness(200, Duration::from_secs(10)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while orphan_old.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!orphan_old.exists(), "an old unreferenced image is swept");
    assert!(orphan_new.exists(), "a fresh one is left alone");
    let url = d.image_url.as_str();
    assert_eq!(
        restarted
            .http
            .get(restarted.url(url))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "referenced images stay"
    );
}

#[tokio::test]
async fn the_gridfs_store_serves_what_it_stored() {
    let app = spawn_app_with(AppOptions::default().flag("--media-store", "gridfs")).await;
    let user = app.create_user().await;
    let d = app.upload_face(&user).await;
    let original = app.http.get(app.url(&d.image_url)).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(
        original.bytes().await.unwrap().to_vec(),
        test_asset("astronaut.png")
    );
    let files = app
        .db
        .collection::<mongodb::bson::Document>("media.files")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(files, 3, "original, annotated and the visitor's cover in GridFS");
    assert!(
        !app.data_dir.path().join("images").exists()
            || std::fs::read_dir(app.data_dir.path().join("images"))
                .unwrap()
                .count()
                == 0
    );

    let id = &d.id;
    let deleted = app
        .delete_as(&format!("/api/v1/detections/{id}"), &user.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.http.get(app.url(&d.image_url)).send().await.unwrap().status(),
        404
    );
}
