//! Retention and the disk guard, end to end: detections and alarms aged in
//! the test's database (stored again under ids of the past, which is the
//! time retention goes by), swept by the real server, with their images in
//! the real store; and a disk guard whose threshold no disk meets.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use vigil_wire::alarms::AlarmView;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{
    body, drop_file, error_code, spawn_app_with, stored_images, test_asset, AppOptions, CameraState, TestApp,
    Upload,
};

/// An ObjectId made `days` ago (its first four bytes are the time).
fn id_days_ago(days: i64) -> ObjectId {
    let seconds = u32::try_from((Utc::now() - Span::days(days)).timestamp()).unwrap();
    let mut bytes = ObjectId::new().bytes();
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// Stores a detection and its alarm again as if they had been stored
/// `days` ago (by `camera`, when given); returns the new detection id.
async fn age(app: &TestApp, detection: &str, days: i64, camera: Option<&str>) -> ObjectId {
    let detections = app.db.collection::<Document>("detections");
    let alarms = app.db.collection::<Document>("alarms");
    let old = ObjectId::parse_str(detection).unwrap();
    let mut record = detections
        .find_one(doc! { "_id": old })
        .await
        .unwrap()
        .expect("the detection");
    let new_id = id_days_ago(days);
    record.insert("_id", new_id);
    if let Some(camera) = camera {
        record.insert("camera_id", camera);
    }
    if let Some(mut alarm) = alarms.find_one(doc! { "detection_id": old }).await.unwrap() {
        let alarm_id = id_days_ago(days);
        let old_alarm = alarm.get_object_id("_id").unwrap();
        alarm.insert("_id", alarm_id);
        alarm.insert("detection_id", new_id);
        if let Some(camera) = camera {
            alarm.insert("camera_id", camera);
        }
        record.insert("alarm_id", alarm_id);
        alarms.insert_one(alarm).await.unwrap();
        alarms.delete_one(doc! { "_id": old_alarm }).await.unwrap();
    }
    detections.insert_one(record).await.unwrap();
    detections.delete_one(doc! { "_id": old }).await.unwrap();
    app.db
        .collection::<Document>("seen_faces")
        .update_many(
            doc! { "detection_id": old },
            doc! { "$set": { "detection_id": new_id } },
        )
        .await
        .unwrap();
    new_id
}

/// How many of the detection's faces have their embedding stored.
async fn seen_faces_of(app: &TestApp, detection: ObjectId) -> u64 {
    app.db
        .collection::<Document>("seen_faces")
        .count_documents(doc! { "detection_id": detection })
        .await
        .unwrap()
}

async fn detection_exists(app: &TestApp, id: ObjectId) -> bool {
    app.db
        .collection::<Document>("detections")
        .count_documents(doc! { "_id": id })
        .await
        .unwrap()
        == 1
}

async fn alarms_of(app: &TestApp, detection: ObjectId) -> u64 {
    app.db
        .collection::<Document>("alarms")
        .count_documents(doc! { "detection_id": detection })
        .await
        .unwrap()
}

/// The status of a signed image URL: 200 while the image is stored, 404 after.
async fn image_status(app: &TestApp, url: &str) -> u16 {
    app.http.get(app.url(url)).send().await.unwrap().status().as_u16()
}

async fn images_of(app: &TestApp, detection: &DetectionView) -> [u16; 2] {
    [
        image_status(app, &detection.image_url).await,
        image_status(app, &detection.annotated_url).await,
    ]
}

async fn wait_until_gone(app: &TestApp, id: ObjectId, within: Duration) {
    let started = Instant::now();
    while detection_exists(app, id).await {
        assert!(started.elapsed() < within, "detection {id} never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many images the store holds: files of the folder store, or GridFS files.
async fn stored_image_count(app: &TestApp, backend: &str) -> usize {
    match backend {
        "fs" => stored_images(&app.data_dir.path().join("images")).len(),
        _ => app
            .db
            .collection::<Document>("media.files")
            .count_documents(doc! {})
            .await
            .unwrap() as usize,
    }
}

async fn deletes_exactly_what_expired(backend: &str) {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--media-store", backend)
            .flag("--retention-days", 30)
            .flag("--retention-interval-secs", 1),
    )
    .await;
    let user = app.create_user().await;
    let expired = app.upload_face(&user).await;
    let recent = app.upload_face(&user).await;
    let fresh = app.upload_face(&user).await;
    assert!(expired.alarm_id.is_some() && expired.image_kept);
    for detection in [&expired, &recent, &fresh] {
        assert_eq!(images_of(&app, detection).await, [200, 200]);
    }
    // Two images a detection, and the cover of the one visitor (the same
    // stranger three times), which stays while the visitor does.
    assert_eq!(stored_image_count(&app, backend).await, 7);

    // Before it is aged: the sweep, once a second, may take it at once after.
    let with_alarm = ObjectId::parse_str(&expired.id).unwrap();
    assert_eq!(alarms_of(&app, with_alarm).await, 1);
    let expired_id = age(&app, &expired.id, 31, None).await;
    let recent_id = age(&app, &recent.id, 29, None).await;
    wait_until_gone(&app, expired_id, Duration::from_secs(30)).await;

    assert_eq!(alarms_of(&app, expired_id).await, 0, "its alarm went with it");
    assert_eq!(
        seen_faces_of(&app, expired_id).await,
        0,
        "its faces' embeddings too"
    );
    let started = Instant::now();
    while images_of(&app, &expired).await != [404, 404] {
        assert!(started.elapsed() < Duration::from_secs(10), "its images stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more sweeps: nothing younger goes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(detection_exists(&app, recent_id).await, "29 days old: kept");
    assert_eq!(seen_faces_of(&app, recent_id).await, 1);
    assert_eq!(alarms_of(&app, recent_id).await, 1);
    let fresh_id = ObjectId::parse_str(&fresh.id).unwrap();
    assert!(detection_exists(&app, fresh_id).await);
    assert_eq!(alarms_of(&app, fresh_id).await, 1);
    assert_eq!(images_of(&app, &recent).await, [200, 200]);
    assert_eq!(images_of(&app, &fresh).await, [200, 200]);
    assert_eq!(
        stored_image_count(&app, backend).await,
        5,
        "exactly the expired detection's two images went, no orphan left"
    );
    let listed: PageOf<DetectionView> = app.fetch_as("/api/v1/detections", &user.access_token).await;
    assert_eq!(listed.items.len(), 2);
}

#[tokio::test]
async fn retention_deletes_exactly_what_expired_with_the_folder_store() {
    deletes_exactly_what_expired("fs").await;
}

#[tokio::test]
async fn retention_deletes_exactly_what_expired_with_gridfs() {
    deletes_exactly_what_expired("gridfs").await;
}

#[tokio::test]
async fn an_image_something_else_still_names_is_kept() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--retention-days", 30)
            .flag("--retention-interval-secs", 1),
    )
    .await;
    let user = app.create_user().await;
    let expired = app.upload_face(&user).await;
    // Another (young) detection naming the same original, as an asynchronous
    // upload's job and its detection share one.
    let mut twin = app
        .db
        .collection::<Document>("detections")
        .find_one(doc! { "_id": ObjectId::parse_str(&expired.id).unwrap() })
        .await
        .unwrap()
        .unwrap();
    twin.insert("_id", ObjectId::new());
    twin.remove("alarm_id");
    twin.get_document_mut("media")
        .unwrap()
        .insert("annotated", format!("{}.jpg", ObjectId::new().to_hex()));
    app.db
        .collection::<Document>("detections")
        .insert_one(twin)
        .await
        .unwrap();

    let expired_id = age(&app, &expired.id, 40, None).await;
    wait_until_gone(&app, expired_id, Duration::from_secs(30)).await;
    let started = Instant::now();
    while image_status(&app, &expired.annotated_url).await != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the annotated image stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        image_status(&app, &expired.image_url).await,
        200,
        "the original is still named by another detection"
    );
}

/// A server with `--retention-days days`, sweeping every second, and a
/// camera (a folder nobody writes to) per `(id, retention)`.
async fn app_with_cameras(days: u32, cameras: &[(&str, u32)], folder: &Path) -> TestApp {
    let mut options = AppOptions::default()
        .flag("--retention-days", days)
        .flag("--retention-interval-secs", 1);
    for (id, retention) in cameras {
        let spec = format!("id={id},source=dir:{},retention={retention}", folder.display());
        options = options.flag("--camera", spec);
    }
    spawn_app_with(options).await
}

#[tokio::test]
async fn cameras_keep_their_own_days() {
    let folder = tempfile::tempdir().unwrap();
    let app = app_with_cameras(30, &[("keep", 0), ("short", 2)], folder.path()).await;
    let user = app.create_user().await;
    let mut uploads = Vec::new();
    for _ in 0..5 {
        uploads.push(app.upload_face(&user).await);
    }
    let kept_forever = age(&app, &uploads[0].id, 3650, Some("keep")).await;
    let short_young = age(&app, &uploads[1].id, 1, Some("short")).await;
    let default_young = age(&app, &uploads[2].id, 10, None).await;
    let short_old = age(&app, &uploads[3].id, 3, Some("short")).await;
    let default_old = age(&app, &uploads[4].id, 40, None).await;

    wait_until_gone(&app, short_old, Duration::from_secs(30)).await;
    wait_until_gone(&app, default_old, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        detection_exists(&app, kept_forever).await,
        "retention=0 keeps the camera's"
    );
    assert!(
        detection_exists(&app, short_young).await,
        "a day old, two allowed"
    );
    assert!(
        detection_exists(&app, default_young).await,
        "ten days old, thirty allowed"
    );
    for (upload, gone) in uploads.iter().zip([false, false, false, true, true]) {
        let want = if gone { [404, 404] } else { [200, 200] };
        assert_eq!(images_of(&app, upload).await, want, "{upload:?}");
    }
}

#[tokio::test]
async fn zero_days_keep_everything_but_a_camera_with_days_of_its_own() {
    let folder = tempfile::tempdir().unwrap();
    let app = app_with_cameras(0, &[("short", 2)], folder.path()).await;
    let user = app.create_user().await;
    let ancient = app.upload_face(&user).await;
    let witness = app.upload_face(&user).await;
    let ancient_id = age(&app, &ancient.id, 3650, None).await;
    let witness_id = age(&app, &witness.id, 3, Some("short")).await;
    // The camera's detection going shows that sweeps run.
    wait_until_gone(&app, witness_id, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        detection_exists(&app, ancient_id).await,
        "--retention-days 0 keeps a ten-year-old detection"
    );
    assert_eq!(alarms_of(&app, ancient_id).await, 1);
    assert_eq!(images_of(&app, &ancient).await, [200, 200]);
}

/// A threshold no disk meets: the guard has paused storing from the start.
async fn full_disk_app(cameras: &[String]) -> TestApp {
    let mut options = AppOptions::default().flag("--min-free-disk-mb", 1u64 << 30);
    for camera in cameras {
        options = options.flag("--camera", camera);
    }
    spawn_app_with(options).await
}

#[tokio::test]
async fn a_full_disk_refuses_uploads_with_507_and_readyz_says_why() {
    let app = full_disk_app(&[]).await;
    let user = app.create_user().await;

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "reads and deletions still work");
    let ready: Value = body(ready).await;
    assert_eq!(ready["status"], "storage_paused", "{ready}");
    assert!(
        ready["reason"].as_str().is_some_and(|r| r.contains("MiB free")),
        "{ready}"
    );

    let sync = app.upload(&user, Upload::face()).await;
    assert_eq!(sync.status(), 507);
    assert_eq!(error_code(sync).await, ErrorCode::InsufficientStorage);

    let asynchronous = app.post_portrait(&user.access_token, "mode=async", None).await;
    assert_eq!(asynchronous.status(), 507);
    assert_eq!(error_code(asynchronous).await, ErrorCode::InsufficientStorage);

    let video = app
        .http
        .post(app.url("/api/v1/videos"))
        .bearer_auth(&user.access_token)
        .multipart(Form::new().part("video", Part::bytes(vec![0u8; 4096]).file_name("v.mp4")))
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), 507);
    assert_eq!(error_code(video).await, ErrorCode::InsufficientStorage);

    let agent_key = app
        .create_scoped_key(&user.access_token, "door-pi", "alarms:write")
        .await
        .key;
    let alarm = app
        .http
        .post(app.url("/api/v1/alarms"))
        .header("X-API-Key", &agent_key)
        .multipart(
            Form::new()
                .text("date", Utc::now().to_rfc3339())
                .text("source", "door-pi")
                .part(
                    "image",
                    Part::bytes(test_asset("astronaut.png")).file_name("a.png"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(alarm.status(), 507);
    assert_eq!(error_code(alarm).await, ErrorCode::InsufficientStorage);

    let device_key = app.create_api_key(&user.access_token, "truck").await.key;
    let photo = app
        .http
        .post(app.url("/telemetry/photo"))
        .header("X-API-Key", &device_key)
        .multipart(
            Form::new()
                .text("device_id", "truck-1")
                .text("timestamp", Utc::now().timestamp_millis().to_string())
                .part(
                    "photo",
                    Part::bytes(test_asset("astronaut.png")).file_name("p.png"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), 507);
    assert_eq!(error_code(photo).await, ErrorCode::InsufficientStorage);

    // Nothing was stored, and nothing charged.
    for collection in ["detections", "alarms", "jobs", "telemetry_photos"] {
        let stored = app
            .db
            .collection::<Document>(collection)
            .count_documents(doc! {})
            .await
            .unwrap();
        assert_eq!(stored, 0, "{collection}");
    }
    assert!(stored_images(&app.data_dir.path().join("images")).is_empty());
    let me: Value = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me["api_requests_used"], 0, "{me}");
}

#[tokio::test]
async fn a_camera_on_a_full_disk_still_raises_alarms_without_images() {
    let inbox = tempfile::tempdir().unwrap();
    let app = full_disk_app(&[format!("id=door,source=dir:{}", inbox.path().display())]).await;
    let admin = app.create_user().await;
    app.wait_for_camera(&admin, "door", Duration::from_secs(10), |c| {
        c.status == CameraState::Running
    })
    .await;
    drop_file(inbox.path(), "visitor.png", &test_asset("astronaut.png"));
    app.wait_for_camera(&admin, "door", Duration::from_secs(30), |c| c.alarms_raised == 1)
        .await;

    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms", &admin.access_token).await;
    assert_eq!(alarms.items.len(), 1);
    let alarm = &alarms.items[0];
    assert!(!alarm.image_kept, "{alarm:?}");
    assert_eq!(image_status(&app, &alarm.img).await, 404);
    let detection = app
        .db
        .collection::<Document>("detections")
        .find_one(doc! { "camera_id": "door" })
        .await
        .unwrap()
        .expect("the camera's detection");
    assert_eq!(detection.get_bool("image_kept"), Ok(false));
    assert!(
        stored_images(&app.data_dir.path().join("images")).is_empty(),
        "neither the frame nor its annotated copy was written"
    );
}

/// Ends three real asynchronous uploads' jobs, dates their ends 31, 29 and 0
/// days back, and leaves one job of each kind of state the sweep must not
/// touch: only the job that ended 31 days ago goes.
#[tokio::test]
async fn ended_jobs_go_after_the_retention_days() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--retention-days", 30)
            .flag("--retention-interval-secs", 1),
    )
    .await;
    let user = app.create_user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = app
            .post_portrait(&user.access_token, "mode=async&source=door", None)
            .await;
        assert_eq!(response.status(), 202);
        let job: Value = response.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let ended = app
            .job_ended(&user.access_token, &id, Duration::from_secs(60))
            .await;
        assert_eq!(ended.state.as_str(), "done");
        ids.push(id);
    }
    let jobs = app.db.collection::<Document>("jobs");
    for (id, days) in ids.iter().zip([31, 29, 0]) {
        let ended = mongodb::bson::DateTime::from_chrono(Utc::now() - Span::days(days));
        jobs.update_one(
            doc! { "_id": ObjectId::parse_str(id).unwrap() },
            doc! { "$set": { "finished_at": ended } },
        )
        .await
        .unwrap();
    }
    let exists = |id: &str| {
        let jobs = jobs.clone();
        let id = ObjectId::parse_str(id).unwrap();
        async move { jobs.find_one(doc! { "_id": id }).await.unwrap().is_some() }
    };
    let started = Instant::now();
    while exists(&ids[0]).await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job that ended 31 days ago stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more sweeps: the younger ones stay, and so do their detections.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(exists(&ids[1]).await, "ended 29 days ago: kept");
    assert!(exists(&ids[2]).await, "ended now: kept");
    let listed: PageOf<DetectionView> = app.fetch_as("/api/v1/detections", &user.access_token).await;
    assert_eq!(
        listed.items.len(),
        3,
        "a job's detection expires on its own clock"
    );
}
