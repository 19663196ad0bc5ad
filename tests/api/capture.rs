//! Cameras end to end: clips made with ffmpeg on the spot, played in real
//! time through the real detector into the real database.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vigil_wire::alarms::AlarmView;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;
use vigil_wire::ErrorCode;

use crate::helpers::{
    body, drop_file, error_code, make_clip, spawn_app_with, spawn_child, stored_images, test_asset,
    AppOptions, Camera, CameraState, TestApp, TestUser,
};

async fn camera_alarms(app: &TestApp, admin: &TestUser, id: &str) -> Vec<AlarmView> {
    let page: PageOf<AlarmView> = app
        .fetch_as("/api/v1/alarms?limit=100", &admin.access_token)
        .await;
    page.items
        .into_iter()
        .filter(|a| a.camera_id.as_deref() == Some(id))
        .collect()
}

/// ffmpeg processes whose parent is `parent`.
pub(crate) fn ffmpeg_children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm == "ffmpeg" && ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// Running (not zombie) processes among `pids`.
pub(crate) fn alive(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, t)| t.trim_start().starts_with('Z')))
                .is_some_and(|zombie| !zombie)
        })
        .collect()
}

fn present(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect()
}

#[tokio::test]
async fn face_then_empty_then_face_gives_two_alarms_with_saved_frames() {
    let clips = tempfile::tempdir().unwrap();
    let clip = make_clip(
        clips.path(),
        "visit.mp4",
        &[("astronaut.png", 3), ("coffee.png", 3), ("astronaut.png", 3)],
        320,
        5,
    );
    let spec = format!("id=door,source=ffmpeg:{},fps=5,cooldown=30", clip.display());
    let app = spawn_app_with(AppOptions::default().flag("--camera", spec)).await;
    let admin = app.create_user().await;

    let status = app
        .wait_for_camera(&admin, "door", Duration::from_secs(60), |c| {
            c.status == CameraState::Finished
        })
        .await;
    assert_eq!(status.alarms_raised, 2, "{status:?}");
    assert!(status.frames_processed >= 6, "{status:?}");
    assert!(status.last_frame_at.is_some(), "{status:?}");
    assert_eq!(status.source, format!("ffmpeg:{}", clip.display()));

    let alarms = camera_alarms(&app, &admin, "door").await;
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    for alarm in &alarms {
        assert_eq!(alarm.source, "door");
        assert_eq!(alarm.face_count, 1);
        assert_eq!(alarm.message, "1 face detected on camera door");
        let image = app.http.get(app.url(&alarm.img)).send().await.unwrap();
        assert_eq!(image.status(), 200);
        let frame = image::load_from_memory(&image.bytes().await.unwrap()).unwrap();
        assert_eq!((frame.width(), frame.height()), (320, 320));
        // A detection document for each alarm frame (the detections API is
        // per uploader, so read the collection).
        let id = mongodb::bson::oid::ObjectId::parse_str(&alarm.detection_id).unwrap();
        let detection = app
            .db
            .collection::<mongodb::bson::Document>("detections")
            .find_one(mongodb::bson::doc! {"_id": id})
            .await
            .unwrap()
            .expect("detection document");
        assert_eq!(detection.get_str("camera_id").unwrap(), "door");
        let faces = detection
            .get("face_count")
            .and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)));
        assert_eq!(faces, Some(1));
    }
    // "Saved in a folder": original and annotated frame per alarm, and the
    // cover of the one visitor both faces are.
    let saved = stored_images(&app.data_dir.path().join("images"));
    assert_eq!(saved.len(), 5, "{saved:?}");
}

#[tokio::test]
async fn a_face_that_stays_25_seconds_alarms_once_per_10_second_cooldown() {
    let clips = tempfile::tempdir().unwrap();
    let clip = make_clip(clips.path(), "stay.mp4", &[("astronaut.png", 25)], 256, 2);
    let spec = format!("id=hall,source=ffmpeg:{},fps=2,cooldown=10", clip.display());
    let app = spawn_app_with(AppOptions::default().flag("--camera", spec)).await;
    let admin = app.create_user().await;
    let status = app
        .wait_for_camera(&admin, "hall", Duration::from_secs(90), |c| {
            c.status == CameraState::Finished
        })
        .await;
    assert_eq!(status.alarms_raised, 3, "{status:?}");
    let alarms = camera_alarms(&app, &admin, "hall").await;
    assert_eq!(alarms.len(), 3);
    let mut dates: Vec<_> = alarms.iter().map(|a| a.date).collect();
    dates.sort();
    // The policy spaces alarms by capture time; `date` is when the alarm was
    // stored, which a loaded machine delays by a second or two.
    for pair in dates.windows(2) {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        assert!(gap >= 6_000, "alarms {gap} ms apart within one visit");
    }
}

#[tokio::test]
async fn a_folder_source_picks_up_a_dropped_image() {
    let inbox = tempfile::tempdir().unwrap();
    std::fs::write(inbox.path().join("old.png"), test_asset("astronaut.png")).unwrap();
    let spec = format!("id=inbox,source=dir:{}", inbox.path().display());
    let app = spawn_app_with(AppOptions::default().flag("--camera", spec)).await;
    let admin = app.create_user().await;
    app.wait_for_camera(&admin, "inbox", Duration::from_secs(10), |c| {
        c.status == CameraState::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.camera(&admin, "inbox").await.frames_captured,
        0,
        "files present at start are not new"
    );

    drop_file(inbox.path(), "visitor.png", &test_asset("astronaut.png"));
    std::fs::write(inbox.path().join("notes.txt"), "not an image").unwrap();
    let status = app
        .wait_for_camera(&admin, "inbox", Duration::from_secs(30), |c| c.alarms_raised == 1)
        .await;
    assert_eq!(status.frames_captured, 1, "{status:?}");
    let alarms = camera_alarms(&app, &admin, "inbox").await;
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].face_count, 1);
}

#[tokio::test]
async fn broken_sources_show_in_the_status_and_the_server_stays_healthy() {
    let refused = "id=street,source=ffmpeg:rtsp://127.0.0.1:1/live";
    let app = spawn_app_with(AppOptions::default().flag("--camera", refused)).await;
    let admin = app.create_user().await;

    let status = app
        .wait_for_camera(&admin, "street", Duration::from_secs(20), |c| c.restarts >= 1)
        .await;
    assert!(
        [CameraState::Backoff, CameraState::Starting].contains(&status.status),
        "{status:?}"
    );
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Connection refused")),
        "{status:?}"
    );

    let missing = app
        .http
        .post(app.url("/api/v1/cameras"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"id": "tape", "source": "ffmpeg:/nowhere/tape.mp4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 201);
    let status = app
        .wait_for_camera(&admin, "tape", Duration::from_secs(10), |c| {
            c.status == CameraState::Failed
        })
        .await;
    assert_eq!(
        status.last_error.as_deref(),
        Some("file not found: /nowhere/tape.mp4")
    );

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("vigil_camera_frames_processed_total{camera=\"street\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("vigil_camera_state{camera=\"tape\",state=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE vigil_camera_restarts_total counter"));
}

#[tokio::test]
async fn only_admins_manage_cameras_and_bad_requests_say_why() {
    let app = spawn_app_with(AppOptions::default()).await;
    let admin = app.create_user().await;
    let user = app.create_user().await;
    let post = |token: &str, camera: Value| {
        app.http
            .post(app.url("/api/v1/cameras"))
            .bearer_auth(token.to_owned())
            .json(&camera)
            .send()
    };
    let inbox = tempfile::tempdir().unwrap();
    let lobby = json!({"id": "lobby", "source": format!("dir:{}", inbox.path().display()), "fps": 2, "cooldown_secs": 5});

    assert_eq!(
        post(&user.access_token, lobby.clone()).await.unwrap().status(),
        403
    );
    assert_eq!(
        app.get_as("/api/v1/cameras", &user.access_token).await.status(),
        403
    );
    assert_eq!(app.get("/api/v1/cameras").await.status(), 401);

    let created = post(&admin.access_token, lobby.clone()).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Camera = body(created).await;
    assert_eq!(created.id, "lobby");
    assert_eq!(created.fps, 2.0);
    assert_eq!(created.cooldown_secs, 5.0);

    let again = post(&admin.access_token, lobby).await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, ErrorCode::CameraExists);

    let bad = post(&admin.access_token, json!({"id": "x", "source": "usb:0"}))
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let refused: ErrorBody = body(bad).await;
    assert!(refused.error.message.contains("usb:0"), "{refused:?}");
    let bad_fps = post(
        &admin.access_token,
        json!({"id": "x", "source": "v4l2:0", "fps": 0}),
    )
    .await
    .unwrap();
    assert_eq!(error_code(bad_fps).await, ErrorCode::ValidationFailed);

    let password = post(
        &admin.access_token,
        json!({"id": "secret", "source": "ffmpeg:rtsp://admin:hunter2@127.0.0.1:1/x"}),
    )
    .await
    .unwrap();
    let shown: Camera = body(password).await;
    assert_eq!(shown.source, "ffmpeg:rtsp://admin:***@127.0.0.1:1/x");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // All of it, not only the fields a test knows of.
    let listed = app.get_as("/api/v1/cameras", &admin.access_token).await;
    let listed: Value = body(listed).await;
    assert!(!listed.to_string().contains("hunter2"), "{listed}");

    let delete = |id: &str| app.delete_as(format!("/api/v1/cameras/{id}"), &admin.access_token);
    assert_eq!(delete("lobby").await.status(), 204);
    assert_eq!(delete("lobby").await.status(), 404);
    let ids: Vec<String> = app.cameras(&admin).await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["secret"]);
}

#[tokio::test]
async fn removing_a_camera_kills_and_reaps_its_ffmpeg() {
    let clips = tempfile::tempdir().unwrap();
    let clip = make_clip(clips.path(), "long.mp4", &[("coffee.png", 2)], 160, 5);
    let app = spawn_app_with(AppOptions::default()).await;
    let admin = app.create_user().await;
    let before = ffmpeg_children(std::process::id());
    let created = app
        .http
        .post(app.url("/api/v1/cameras"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"id": "loop", "source": format!("ffmpeg:{}", clip.display()), "loop": true, "fps": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    app.wait_for_camera(&admin, "loop", Duration::from_secs(20), |c| {
        c.status == CameraState::Running
    })
    .await;
    let ours: Vec<u32> = ffmpeg_children(std::process::id())
        .into_iter()
        .filter(|pid| !before.contains(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("long.mp4"))
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(ours.len(), 1, "one ffmpeg for the camera");

    let removed = app.delete_as("/api/v1/cameras/loop", &admin.access_token).await;
    assert_eq!(removed.status(), 204);
    assert!(
        present(&ours).is_empty(),
        "ffmpeg {ours:?} still exists (orphan or zombie)"
    );
}

#[tokio::test]
async fn shutdown_leaves_no_ffmpeg_behind() {
    let clips = tempfile::tempdir().unwrap();
    let clip = make_clip(clips.path(), "loop.mp4", &[("coffee.png", 2)], 160, 5);
    let mut server = spawn_child(
        &AppOptions::default()
            .flag(
                "--camera",
                format!("id=a,source=ffmpeg:{},loop=true,fps=1", clip.display()),
            )
            .flag(
                "--camera",
                format!("id=b,source=ffmpeg:{},loop=true,fps=1", clip.display()),
            )
            .flag("--camera", "id=c,source=ffmpeg:http://127.0.0.1:1/"),
    )
    .await;
    let started = Instant::now();
    let children = loop {
        let found = ffmpeg_children(server.pid());
        if alive(&found).len() >= 2 {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "vigil never started its ffmpeg children (found {found:?}); its log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    server.signal(libc::SIGTERM);
    let exit = server.exit_within(Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}");
    // Checked at once: an orphan would still be running now, reparented.
    assert!(
        alive(&children).is_empty(),
        "ffmpeg children {children:?} outlived vigil"
    );
}
