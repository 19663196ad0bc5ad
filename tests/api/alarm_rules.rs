//! Alarm rules with the real models and photos: who raises an alarm is
//! decided by the owner's rule (strangers only, a watch-list, everyone but
//! the household, a time window, a source's own rule), the detection is
//! stored either way, and the cameras' rules are the admins'.

use std::time::{Duration, Instant};

use chrono::{Local, Timelike};
use serde_json::{json, Value};
use vigil_wire::alarms::AlarmView;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{error_code, spawn_app_with, AppOptions, TestApp, TestUser, Upload};
use crate::people::identities;

impl TestApp {
    async fn put_rules(&self, user: &TestUser, body: Value) -> reqwest::Response {
        self.http
            .put(self.url("/api/v1/alarm-rules"))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn set_rules(&self, user: &TestUser, body: Value) -> Value {
        let response = self.put_rules(user, body).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Uploads a photo from `source`; the detection is stored whatever the rule.
    async fn detect_from(&self, user: &TestUser, photo: &std::path::Path, source: &str) -> DetectionView {
        let form = reqwest::multipart::Form::new()
            .text("source", source.to_owned())
            .part(
                "image",
                reqwest::multipart::Part::bytes(std::fs::read(photo).unwrap())
                    .file_name("photo.jpg")
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        let response = self.upload(user, Upload::Form(form)).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let detection: DetectionView = response.json().await.unwrap();
        assert!(detection.face_count > 0, "{}: {detection:?}", photo.display());
        detection
    }

    /// Whether the photo raised an alarm, from `source`.
    async fn alarms_for(&self, user: &TestUser, photo: &std::path::Path, source: &str) -> bool {
        self.detect_from(user, photo, source).await.alarm_id.is_some()
    }
}

/// Whether each of the porch camera's detections has an alarm, oldest
/// first (camera detections have no owner: no account lists them).
async fn porch_detections(app: &TestApp) -> Vec<bool> {
    use futures_util::TryStreamExt;
    let found: Vec<mongodb::bson::Document> = app
        .db
        .collection::<mongodb::bson::Document>("detections")
        .find(mongodb::bson::doc! { "camera_id": "porch" })
        .sort(mongodb::bson::doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    found
        .iter()
        .map(|d| d.get_object_id("alarm_id").is_ok())
        .collect()
}

/// "HH:MM" of the server's local time `minutes` from now.
fn local_in(minutes: i64) -> String {
    let t = Local::now() + chrono::Duration::minutes(minutes);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[tokio::test]
async fn each_rule_decides_whose_faces_raise_alarms_and_detections_are_kept() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    // The first account is the admin; the owner of these rules is not.
    app.create_user().await;
    let user = app.create_user().await;
    let (ann, bob, stranger) = (&people[0], &people[1], &people[3]);
    let mut subjects = Vec::new();
    for (name, photos) in [ann, bob] {
        let subject = app.create_subject(&user, name).await;
        for photo in &photos[..3] {
            app.enrol_photo(&user, &subject.id, photo).await;
        }
        subjects.push(subject.id);
    }
    let (ann_id, bob_id) = (&subjects[0], &subjects[1]);
    let (ann_photo, bob_photo, stranger_photo) = (&ann.1[6], &bob.1[6], &stranger.1[6]);
    // The photos are who the test says: named, named, unknown.
    let seen = app.detect_from(&user, ann_photo, "check").await;
    assert!(seen.faces.iter().any(|f| f
        .identity
        .as_ref()
        .and_then(|i| i.recognised())
        .is_some_and(|r| &r.subject_id == ann_id)));

    // No rule: everyone.
    let who = |rules: Value| {
        let app = &app;
        let user = &user;
        async move {
            app.set_rules(user, rules).await;
            [
                app.alarms_for(user, ann_photo, "door").await,
                app.alarms_for(user, bob_photo, "door").await,
                app.alarms_for(user, stranger_photo, "door").await,
            ]
        }
    };
    assert_eq!(who(json!({"rules": []})).await, [true, true, true]);
    assert_eq!(
        who(json!({"rules": [{"when": "unknown"}]})).await,
        [false, false, true]
    );
    assert_eq!(
        who(json!({"rules": [{"when": "watch_list", "subjects": [ann_id]}]})).await,
        [true, false, false]
    );
    assert_eq!(
        who(json!({"rules": [{"when": "household", "subjects": [ann_id]}]})).await,
        [false, true, true]
    );
    // A time window that ends a minute before now (and started an hour
    // after it): nothing; one around now: the rule as before.
    assert_eq!(
        who(json!({"rules": [{"when": "any", "schedule": {"from": local_in(60), "to": local_in(-1)}}]}))
            .await,
        [false, false, false]
    );
    assert_eq!(
        who(json!({"rules": [{"when": "unknown", "schedule": {"from": local_in(-5), "to": local_in(30)}}]}))
            .await,
        [false, false, true]
    );

    // A source's own rule wins over the general one.
    app.set_rules(
        &user,
        json!({"rules": [{"when": "unknown"}, {"source": "garden", "when": "watch_list", "subjects": [bob_id]}]}),
    )
    .await;
    assert!(app.alarms_for(&user, bob_photo, "garden").await);
    assert!(!app.alarms_for(&user, stranger_photo, "garden").await);
    assert!(!app.alarms_for(&user, bob_photo, "door").await);
    assert!(app.alarms_for(&user, stranger_photo, "door").await);

    // Every upload was stored; only the alarms followed the rules.
    let page: PageOf<DetectionView> = app
        .fetch_as("/api/v1/detections?limit=100", &user.access_token)
        .await;
    assert_eq!(page.items.len(), 1 + 6 * 3 + 4);
    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms?limit=100", &user.access_token).await;
    let raised = page.items.iter().filter(|d| d.alarm_id.is_some()).count();
    assert_eq!(alarms.items.len(), raised);

    // What was stored is what GET answers, in order; a user has no camera rules.
    let stored: Value = app.fetch_as("/api/v1/alarm-rules", &user.access_token).await;
    assert_eq!(
        stored,
        json!({"rules": [{"when": "unknown"}, {"source": "garden", "when": "watch_list", "subjects": [bob_id]}]})
    );

    // Erasing Bob takes him out of the rule that listed him.
    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/subjects/{bob_id}")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let stored: Value = app.fetch_as("/api/v1/alarm-rules", &user.access_token).await;
    assert_eq!(
        stored["rules"][1],
        json!({"source": "garden", "when": "watch_list"})
    );
    let rules = app
        .db
        .collection::<mongodb::bson::Document>("alarm_rules")
        .find_one(
            mongodb::bson::doc! { "subjects": mongodb::bson::oid::ObjectId::parse_str(bob_id).unwrap() },
        )
        .await
        .unwrap();
    assert!(rules.is_none(), "{rules:?}");
}

#[tokio::test]
async fn rules_are_checked_and_the_cameras_rules_are_the_admins() {
    let people = identities();
    let inbox = tempfile::tempdir().unwrap();
    let spec = format!("id=porch,source=dir:{},cooldown=1", inbox.path().display());
    let app = spawn_app_with(AppOptions::default().flag("--camera", spec)).await;
    let admin = app.create_user().await;
    let user = app.create_user().await;
    let margaret = app.create_subject(&admin, "Margaret").await;
    app.enrol_photo(&admin, &margaret.id, &people[2].1[0]).await;
    let theirs = app.create_subject(&user, "Someone").await;

    // Refusals say which field, and store nothing.
    for (body, field, code) in [
        (
            json!({"rules": [{"when": "any"}, {"when": "unknown", "source": " "}]}),
            "rules[1].source",
            ErrorCode::RuleExists,
        ),
        (
            json!({"rules": [{"when": "any", "schedule": {"from": "25:00", "to": "06:00"}}]}),
            "rules[0].schedule.from",
            ErrorCode::ValidationFailed,
        ),
        // Another account's subject is not the user's to list.
        (
            json!({"rules": [{"when": "household", "subjects": [margaret.id]}]}),
            "rules",
            ErrorCode::NotFound,
        ),
    ] {
        let response = app.put_rules(&user, body.clone()).await;
        let error: vigil_wire::ErrorBody = response.json().await.unwrap();
        assert_eq!(error.error.code, code, "{body}: {error:?}");
        assert_eq!(error.error.fields[0].field, field, "{body}: {error:?}");
    }
    let untouched: Value = app.fetch_as("/api/v1/alarm-rules", &user.access_token).await;
    assert_eq!(untouched, json!({"rules": []}));
    // A field the body does not have is refused, not ignored.
    let response = app.put_rules(&user, json!({"rules": [], "when": "any"})).await;
    assert_eq!(error_code(response).await, ErrorCode::ValidationFailed);
    let response = app
        .put_rules(&user, json!({"rules": [], "camera_rules": []}))
        .await;
    assert_eq!(error_code(response).await, ErrorCode::Forbidden);
    app.set_rules(
        &user,
        json!({"rules": [{"when": "household", "subjects": [theirs.id]}]}),
    )
    .await;
    let mine: Value = app.fetch_as("/api/v1/alarm-rules", &user.access_token).await;
    assert_eq!(
        mine,
        json!({"rules": [{"when": "household", "subjects": [theirs.id]}]})
    );
    let admins: Value = app.fetch_as("/api/v1/alarm-rules", &admin.access_token).await;
    assert_eq!(admins, json!({"rules": [], "camera_rules": []}));

    // The porch camera alarms only for Margaret; a stranger's frame is
    // still recorded, without an alarm.
    app.set_rules(
        &admin,
        json!({"rules": [], "camera_rules": [{"source": "porch", "when": "watch_list", "subjects": [margaret.id]}]}),
    )
    .await;
    for (i, photo) in [&people[3].1[4], &people[2].1[4]].into_iter().enumerate() {
        let name = format!("{i}.jpg");
        std::fs::copy(photo, inbox.path().join(format!(".{name}"))).unwrap();
        std::fs::rename(inbox.path().join(format!(".{name}")), inbox.path().join(&name)).unwrap();
        let started = Instant::now();
        while porch_detections(&app).await.len() <= i {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "frame {i} not recorded"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Past the camera's one-second alarm cooldown.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // The stranger's frame without an alarm, Margaret's with one.
    assert_eq!(porch_detections(&app).await, [false, true]);
    let alarms: PageOf<AlarmView> = app
        .fetch_as("/api/v1/alarms?limit=100", &admin.access_token)
        .await;
    let messages: Vec<&str> = alarms
        .items
        .iter()
        .filter(|a| a.camera_id.as_deref() == Some("porch"))
        .map(|a| a.message.as_str())
        .collect();
    assert_eq!(messages, ["Margaret at porch"]);
}
