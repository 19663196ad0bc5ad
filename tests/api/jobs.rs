//! The job queue through the API: asynchronous uploads, videos analysed on
//! the server, idempotency, backpressure, cancellation, quota, and the
//! `jobs` topic of the WebSocket.

use std::time::Duration;

use vigil_wire::detections::DetectionView;
use vigil_wire::hub::{ServerMessage, Topic};
use vigil_wire::jobs::{JobKind, JobState, JobView};
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{
    body, error_code, face_clip, make_clip, next_of, quiet, running, send, spawn_app, spawn_app_with,
    test_asset, AppOptions, TestApp, TestUser, User,
};

const WITHIN: Duration = Duration::from_secs(60);

async fn me(app: &TestApp, user: &TestUser) -> User {
    app.fetch_as("/api/v1/users/me", &user.access_token).await
}

async fn upload_async(app: &TestApp, user: &TestUser, key: Option<&str>) -> reqwest::Response {
    app.post_portrait(&user.access_token, "mode=async&source=door", key)
        .await
}

async fn detections_of(app: &TestApp, user: &TestUser) -> Vec<DetectionView> {
    let page: PageOf<DetectionView> = app
        .fetch_as("/api/v1/detections?limit=200", &user.access_token)
        .await;
    page.items
}

#[tokio::test]
async fn an_async_upload_is_accepted_then_recorded_as_a_synchronous_one_would_be() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let sync = {
        let response = app.post_portrait(&user.access_token, "source=door", None).await;
        assert_eq!(response.status(), 201);
        body::<DetectionView>(response).await
    };

    let response = upload_async(&app, &user, None).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job: JobView = body(response).await;
    assert_eq!(location, format!("/api/v1/jobs/{}", job.id));
    assert_eq!((job.kind, job.source.as_str()), (JobKind::Detect, "door"));
    assert!(
        matches!(job.state, JobState::Queued | JobState::Running),
        "{job:?}"
    );
    // The unit is taken on acceptance.
    assert_eq!(me(&app, &user).await.api_requests_used, 2);

    let done = app.job_ended(&user.access_token, &job.id, WITHIN).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_eq!(
        (done.result.detections, done.result.faces, done.result.alarms),
        (1, 1, 1)
    );
    assert_eq!(done.attempts, 1);
    let detection: DetectionView = app
        .fetch_as(
            &format!(
                "/api/v1/detections/{}",
                done.result.detection_id.as_deref().unwrap()
            ),
            &user.access_token,
        )
        .await;
    assert_eq!(detection.source, sync.source);
    assert_eq!((detection.width, detection.height), (sync.width, sync.height));
    // The same faces and identities; the stranger's second sighting now.
    let visitor = |faces: &[vigil_wire::people::SeenFace]| match &faces[0].identity {
        Some(vigil_wire::people::Identity::Unknown(unknown)) => unknown.visitor.clone().expect("a visitor"),
        other => panic!("{other:?}"),
    };
    let (first, second) = (visitor(&sync.faces), visitor(&detection.faces));
    assert_eq!((first.id, first.sightings + 1), (second.id, second.sightings));
    let faces = |faces: &[vigil_wire::people::SeenFace]| faces.iter().map(|f| f.face).collect::<Vec<_>>();
    assert_eq!(faces(&detection.faces), faces(&sync.faces), "the same faces");
    assert!(detection.alarm_id.is_some());
    // The original is the image as uploaded.
    let original = app.http.get(app.url(&detection.image_url)).send().await.unwrap();
    assert_eq!(
        original.bytes().await.unwrap().to_vec(),
        test_asset("astronaut.png")
    );
    assert_eq!(me(&app, &user).await.api_requests_used, 2, "charged once");

    let listed: PageOf<JobView> = app.fetch_as("/api/v1/jobs?state=done", &user.access_token).await;
    assert_eq!(listed.items.len(), 1);
    let other = app.create_user().await;
    let hidden = app.get_as(&location, &other.access_token).await;
    assert_eq!(hidden.status(), 404, "another user's job");
    let bad = app
        .get_as("/api/v1/jobs?state=sleeping", &user.access_token)
        .await;
    assert_eq!(error_code(bad).await, ErrorCode::InvalidQuery);
    let bad = app.post_portrait(&user.access_token, "mode=later", None).await;
    assert_eq!(error_code(bad).await, ErrorCode::InvalidQuery);
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_first_result_and_costs_once() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let send = |key: &'static str| app.post_portrait(&user.access_token, "", Some(key));
    let first: DetectionView = body(send("retry-1").await).await;
    let again = send("retry-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(body::<DetectionView>(again).await.id, first.id);
    // Concurrent retries too.
    let (a, b) = tokio::join!(send("retry-2"), send("retry-2"));
    let (a, b): (DetectionView, DetectionView) = (body(a).await, body(b).await);
    assert_eq!(a.id, b.id);
    assert_eq!(detections_of(&app, &user).await.len(), 2);
    assert_eq!(me(&app, &user).await.api_requests_used, 2);

    let job: JobView = body(upload_async(&app, &user, Some("async-1")).await).await;
    let same: JobView = body(upload_async(&app, &user, Some("async-1")).await).await;
    assert_eq!(same.id, job.id);
    assert_eq!(me(&app, &user).await.api_requests_used, 3);
    // A key names one request: a sync retry of an async one is refused.
    assert_eq!(
        error_code(send("async-1").await).await,
        ErrorCode::ValidationFailed
    );
    let bad = app.post_portrait(&user.access_token, "", Some("has space")).await;
    assert_eq!(error_code(bad).await, ErrorCode::ValidationFailed);
    // Another account's key is its own.
    let other = app.create_user().await;
    let theirs = app.post_portrait(&other.access_token, "", Some("retry-1")).await;
    assert_ne!(body::<DetectionView>(theirs).await.id, first.id);
    app.job_ended(&user.access_token, &job.id, WITHIN).await;
}

#[tokio::test]
async fn a_video_is_sampled_and_every_frame_recorded_with_its_time() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let (mut ws, _) = quiet(&app.api, &format!("?token={}", user.access_token)).await;
    send(
        &mut ws,
        serde_json::json!({"type": "subscribe", "topics": ["jobs"]}),
    )
    .await;
    assert_eq!(
        next_of(&mut ws, "subscribed").await,
        ServerMessage::Subscribed {
            topics: vec![Topic::Jobs]
        }
    );
    let dir = tempfile::tempdir().unwrap();
    // 2 s of coffee, 3 s of a face, at 25 fps; sampled at 2 fps: 10 frames.
    let clip = make_clip(
        dir.path(),
        "door cam.mp4",
        &[("coffee.png", 2), ("astronaut.png", 3)],
        320,
        25,
    );
    let job = app.video_job(&user.access_token, &clip, "2").await;
    assert_eq!(
        (job.kind, job.source.as_str(), job.fps),
        (JobKind::Video, "door cam.mp4", Some(2.0))
    );
    let done = app.job_ended(&user.access_token, &job.id, WITHIN).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_eq!(done.progress.done, 10);
    assert_eq!(done.progress.total, Some(10));
    assert_eq!(done.result.detections, 10);
    assert_eq!(done.result.faces, 6);
    // The face appears once: one alarm, not one per frame.
    assert_eq!(done.result.alarms, 1);
    assert_eq!(me(&app, &user).await.api_requests_used, 10, "a unit per frame");

    let mut sources: Vec<String> = detections_of(&app, &user)
        .await
        .into_iter()
        .map(|d| d.source)
        .collect();
    sources.sort();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("door cam.mp4@0:0{}.{}", i / 2, if i % 2 == 0 { 0 } else { 5 }))
        .collect();
    assert_eq!(sources, expected);

    // The owner's session saw the job move and end.
    let mut seen_running = false;
    loop {
        if let ServerMessage::Job { job: update } = next_of(&mut ws, "job").await {
            assert_eq!(update.id, job.id);
            seen_running |= update.state == JobState::Running && update.progress.done > 0;
            if update.state == JobState::Done {
                break;
            }
        }
    }
    assert!(seen_running, "progress was pushed");
    // The video itself is gone once the job ended.
    let videos = app.data_dir.path().join("videos");
    let left: Vec<_> = std::fs::read_dir(&videos)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn what_is_not_a_video_is_refused_and_nothing_is_queued() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"not a video at all, just some words").unwrap();
    let refused = app.submit_video(&user.access_token, &text, "1").await;
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, ErrorCode::InvalidVideo);
    let clip = face_clip(dir.path(), "face.mp4", 1);
    let bad_fps = app.submit_video(&user.access_token, &clip, "0").await;
    assert_eq!(error_code(bad_fps).await, ErrorCode::ValidationFailed);
    let wrong_type = app
        .http
        .post(app.url("/api/v1/videos"))
        .bearer_auth(&user.access_token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong_type).await, ErrorCode::UnsupportedMediaType);
    let jobs: PageOf<JobView> = app.fetch_as("/api/v1/jobs", &user.access_token).await;
    assert!(jobs.items.is_empty());
    let incoming = app.data_dir.path().join("videos/.incoming");
    assert_eq!(
        std::fs::read_dir(incoming).unwrap().count(),
        0,
        "no half-received file"
    );
    assert_eq!(me(&app, &user).await.api_requests_used, 0);

    let small = spawn_app_with(AppOptions::default().flag("--max-video-bytes", 1000)).await;
    let user = small.create_user().await;
    let big = small.submit_video(&user.access_token, &clip, "1").await;
    assert_eq!(error_code(big).await, ErrorCode::PayloadTooLarge);
}

#[tokio::test]
async fn a_full_queue_refuses_with_retry_after_and_a_cancelled_job_stops() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--job-workers", 1)
            .flag("--job-queue-limit", 1),
    )
    .await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "long.mp4", 30);
    // The one worker takes the first; the second waits; the third finds the queue full.
    let first = app.video_job(&user.access_token, &clip, "10").await;
    app.wait_for_job(&user.access_token, &first.id, WITHIN, running)
        .await;
    let second = app.video_job(&user.access_token, &clip, "10").await;
    let refused = app.submit_video(&user.access_token, &clip, "10").await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, ErrorCode::QueueFull);
    let jobs: PageOf<JobView> = app.fetch_as("/api/v1/jobs", &user.access_token).await;
    assert_eq!(jobs.items.len(), 2, "nothing half-accepted");

    // Cancelling: the running one stops, the queued one never starts.
    for job in [&first, &second] {
        let cancelled = app
            .delete_as(format!("/api/v1/jobs/{}", job.id), &user.access_token)
            .await;
        assert_eq!(cancelled.status(), 200);
        assert_eq!(body::<JobView>(cancelled).await.state, JobState::Cancelled);
    }
    let again = app
        .delete_as(format!("/api/v1/jobs/{}", first.id), &user.access_token)
        .await;
    assert_eq!(error_code(again).await, ErrorCode::JobFinished);
    let stopped_at = app.job(&user.access_token, &first.id).await.progress.done;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = app.job(&user.access_token, &first.id).await;
    assert_eq!(later.state, JobState::Cancelled);
    assert_eq!(later.progress.done, stopped_at, "no progress after cancelling");
    assert!(later.progress.done < 300, "cancelled long before its end");
    let recorded = detections_of(&app, &user).await.len() as u64;
    assert!(
        recorded <= stopped_at + 1,
        "{recorded} recorded, {stopped_at} reported"
    );
    assert_eq!(app.job(&user.access_token, &second.id).await.attempts, 0);
    let videos = app.data_dir.path().join("videos");
    let left = std::fs::read_dir(&videos)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .count();
    assert_eq!(left, 0, "both videos removed");
}

#[tokio::test]
async fn a_video_stops_cleanly_when_the_quota_runs_out() {
    let app = spawn_app_with(AppOptions::default().flag("--default-quota", 3)).await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "face.mp4", 6);
    let job = app.video_job(&user.access_token, &clip, "1").await;
    let ended = app.job_ended(&user.access_token, &job.id, WITHIN).await;
    assert_eq!(ended.state, JobState::Failed, "{ended:?}");
    let error = ended.error.expect("why it failed");
    assert_eq!(error.code, ErrorCode::QuotaExhausted);
    assert_eq!(ended.result.detections, 3, "what was done is kept: {error:?}");
    assert_eq!(detections_of(&app, &user).await.len(), 3);
    assert_eq!(me(&app, &user).await.api_requests_used, 3);
    // With nothing left, a video is refused at once.
    let refused = app.submit_video(&user.access_token, &clip, "1").await;
    assert_eq!(error_code(refused).await, ErrorCode::QuotaExhausted);
    let refused = upload_async(&app, &user, None).await;
    assert_eq!(error_code(refused).await, ErrorCode::QuotaExhausted);
}

#[tokio::test]
async fn a_cancelled_upload_that_never_ran_gives_its_unit_back() {
    let app = spawn_app_with(AppOptions::default().flag("--job-workers", 1)).await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "long.mp4", 30);
    // The one worker is busy with a video, so the upload waits in the queue.
    let video = app.video_job(&user.access_token, &clip, "10").await;
    app.wait_for_job(&user.access_token, &video.id, WITHIN, running)
        .await;
    let upload: JobView = body(upload_async(&app, &user, None).await).await;
    assert_eq!(upload.state, JobState::Queued);
    let cancelled = app
        .delete_as(format!("/api/v1/jobs/{}", upload.id), &user.access_token)
        .await;
    assert_eq!(body::<JobView>(cancelled).await.state, JobState::Cancelled);
    let stopped = app
        .delete_as(format!("/api/v1/jobs/{}", video.id), &user.access_token)
        .await;
    assert_eq!(stopped.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Every unit paid is a stored frame of the video: the upload's came back.
    let stored = detections_of(&app, &user).await;
    assert!(
        stored.iter().all(|d| d.source.starts_with("long.mp4@")),
        "the upload was never detected"
    );
    assert_eq!(me(&app, &user).await.api_requests_used as usize, stored.len());
}

#[tokio::test]
async fn videos_no_job_needs_are_swept_and_recent_ones_kept() {
    let data = tempfile::tempdir().unwrap();
    let videos = data.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    let old = videos.join("0123456789abcdef01234567.video");
    let recent = videos.join("0123456789abcdef01234568.video");
    for file in [&old, &recent] {
        std::fs::write(file, b"left by a submission whose job never committed").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let _app = spawn_app_with(AppOptions::default().data_dir(data.path())).await;
    let started = std::time::Instant::now();
    while old.exists() {
        assert!(started.elapsed() < WITHIN, "the old video was not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recent.exists(),
        "a video of the last hour may belong to a submission in progress"
    );
}
