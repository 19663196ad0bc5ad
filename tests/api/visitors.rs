//! Recurring strangers: unknown faces grouped into visitors, named,
//! merged and erased, with the real models and photos of five people
//! (../shared/data/identities).

use serde_json::json;
use vigil_wire::alarms::AlarmView;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::people::{Identity, SubjectView, UnknownFace, VisitorTag};
use vigil_wire::visitors::{VisitorDetail, VisitorView};
use vigil_wire::ErrorCode;

use crate::helpers::{body, error_code, spawn_app_with, AppOptions, TestApp, TestUser};
use crate::people::{identities, main_identity};

fn tag(identity: Option<Identity>) -> VisitorTag {
    match identity {
        Some(Identity::Unknown(UnknownFace {
            visitor: Some(tag), ..
        })) => tag,
        other => panic!("not a visitor's face: {other:?}"),
    }
}

impl TestApp {
    async fn visitors(&self, user: &TestUser) -> Vec<VisitorView> {
        let page: PageOf<VisitorView> = self.fetch_as("/api/v1/visitors", &user.access_token).await;
        page.items
    }

    async fn post_as(&self, user: &TestUser, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn detection(&self, user: &TestUser, id: &str) -> DetectionView {
        self.fetch_as(&format!("/api/v1/detections/{id}"), &user.access_token)
            .await
    }
}

#[tokio::test]
async fn two_strangers_seen_five_times_are_two_visitors_and_naming_one_makes_them_known() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let other = app.create_user().await;

    let mut seen: Vec<Vec<DetectionView>> = Vec::new();
    for (_, photos) in &people[..2] {
        let mut detections = Vec::new();
        for path in &photos[..5] {
            detections.push(app.detect(&user, std::fs::read(path).unwrap()).await);
        }
        seen.push(detections);
    }
    let visitors = app.visitors(&user).await;
    assert_eq!(visitors.len(), 2, "{visitors:#?}");
    assert!(visitors.iter().all(|v| v.sightings == 5 && !v.camera));
    assert!(visitors.iter().all(|v| v.sources == ["upload"]));
    for detections in &seen {
        let tags: Vec<VisitorTag> = detections.iter().map(|d| tag(main_identity(d))).collect();
        assert!(
            tags.iter()
                .all(|t| t.id == tags[0].id && t.label == tags[0].label),
            "{tags:?}"
        );
        let counts: Vec<u64> = tags.iter().map(|t| t.sightings).collect();
        assert_eq!(counts, [1, 2, 3, 4, 5], "the n-th time this stranger was seen");
    }
    let first = tag(main_identity(&seen[0][0]));
    let second = tag(main_identity(&seen[1][0]));
    assert_ne!(first.id, second.id);
    // The alarm says so too.
    let alarm: AlarmView = app
        .fetch_as(
            &format!("/api/v1/alarms/{}", seen[0][4].alarm_id.as_deref().unwrap()),
            &user.access_token,
        )
        .await;
    let alarm_tag = tag(alarm.identities.iter().flatten().next().cloned());
    assert_eq!(
        (alarm_tag.id.as_str(), alarm_tag.sightings),
        (first.id.as_str(), 5)
    );

    // Sightings, newest first; nobody else's.
    let detail: VisitorDetail = app
        .fetch_as(&format!("/api/v1/visitors/{}", first.id), &user.access_token)
        .await;
    let listed: Vec<&str> = detail
        .sightings
        .items
        .iter()
        .map(|s| s.detection.id.as_str())
        .collect();
    let expected: Vec<&str> = seen[0].iter().rev().map(|d| d.id.as_str()).collect();
    assert_eq!(listed, expected);
    assert_eq!(detail.visitor.cover.detection_id, seen[0][0].id);
    let cover_url = detail.visitor.cover_url.clone().expect("a cover");
    let cover = app.http.get(app.url(&cover_url)).send().await.unwrap();
    assert_eq!(cover.status(), 200);
    let cover = image::load_from_memory(&cover.bytes().await.unwrap()).expect("a JPEG");
    assert_eq!((cover.width(), cover.height()), (150, 150));
    assert!(app.visitors(&other).await.is_empty());
    let hidden = app
        .get_as(&format!("/api/v1/visitors/{}", first.id), &other.access_token)
        .await;
    assert_eq!(error_code(hidden).await, ErrorCode::NotFound);

    // Named: a subject with the visitor's faces, its past sightings named,
    // and the next photo recognised.
    for bad in [
        json!({}),
        json!({ "name": "A", "subject_id": "x" }),
        json!({ "name": "" }),
    ] {
        let refused = app
            .post_as(&user, &format!("/api/v1/visitors/{}/name", first.id), bad.clone())
            .await;
        assert_eq!(error_code(refused).await, ErrorCode::ValidationFailed, "{bad}");
    }
    let response = app
        .post_as(
            &user,
            &format!("/api/v1/visitors/{}/name", first.id),
            json!({ "name": "Nora Named" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let subject: SubjectView = body(response).await;
    assert_eq!((subject.name.as_str(), subject.face_count), ("Nora Named", 5));
    for detection in &seen[0] {
        let now = app.detection(&user, &detection.id).await;
        match main_identity(&now) {
            Some(Identity::Recognised(known)) => {
                assert_eq!(known.subject_id, subject.id);
                assert!(known.confidence > 0.5 && known.distance < 0.6, "{known:?}");
            }
            other => panic!("{}: {other:?}", detection.id),
        }
    }
    let alarm: AlarmView = app
        .fetch_as(
            &format!("/api/v1/alarms/{}", seen[0][4].alarm_id.as_deref().unwrap()),
            &user.access_token,
        )
        .await;
    assert!(alarm.message.starts_with("Nora Named"), "{}", alarm.message);
    let later = app.detect(&user, std::fs::read(&people[0].1[7]).unwrap()).await;
    assert!(
        matches!(main_identity(&later), Some(Identity::Recognised(ref k)) if k.name == "Nora Named"),
        "{:?}",
        main_identity(&later)
    );
    let gone = app
        .get_as(&format!("/api/v1/visitors/{}", first.id), &user.access_token)
        .await;
    assert_eq!(error_code(gone).await, ErrorCode::NotFound);
    let cover = app.http.get(app.url(&cover_url)).send().await.unwrap();
    assert_eq!(cover.status(), 404, "the named visitor's cover went with it");
    let left = app.visitors(&user).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, second.id);
    // The other stranger is still a stranger.
    let again = app.detect(&user, std::fs::read(&people[1].1[7]).unwrap()).await;
    let again = tag(main_identity(&again));
    assert_eq!((again.id.as_str(), again.sightings), (second.id.as_str(), 6));
}

#[tokio::test]
async fn visitors_split_by_a_strict_distance_merge_into_one_and_erase_without_trace() {
    let people = identities();
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--rate-limit-per-second", 100)
            // Strict enough that each photo of one person is a visitor of its own.
            .flag("--visitor-distance", 0.05),
    )
    .await;
    let user = app.create_user().await;
    let mut seen = Vec::new();
    for path in &people[2].1[..3] {
        seen.push(app.detect(&user, std::fs::read(path).unwrap()).await);
    }
    let tags: Vec<VisitorTag> = seen.iter().map(|d| tag(main_identity(d))).collect();
    assert_eq!(app.visitors(&user).await.len(), 3);
    assert_ne!(tags[0].id, tags[1].id);
    let images = || crate::helpers::stored_images(&app.data_dir.path().join("images")).len();
    let before = images();

    let refused = app
        .post_as(
            &user,
            "/api/v1/visitors/merge",
            json!({ "into": tags[0].id, "from": [tags[0].id] }),
        )
        .await;
    assert_eq!(error_code(refused).await, ErrorCode::ValidationFailed);
    let response = app
        .post_as(
            &user,
            "/api/v1/visitors/merge",
            json!({ "into": tags[0].id, "from": [tags[1].id, tags[2].id] }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let merged: VisitorView = body(response).await;
    assert_eq!((merged.id.as_str(), merged.sightings), (tags[0].id.as_str(), 3));
    // One cover each before, one after: the merged visitors' went.
    assert_eq!(images(), before - 2);
    let cover_url = merged.cover_url.clone().expect("the cover");
    assert_eq!(app.visitors(&user).await.len(), 1);
    for detection in &seen {
        let now = app.detection(&user, &detection.id).await;
        assert_eq!(tag(main_identity(&now)).id, tags[0].id);
    }
    let detail: VisitorDetail = app
        .fetch_as(&format!("/api/v1/visitors/{}", tags[0].id), &user.access_token)
        .await;
    assert_eq!(detail.sightings.items.len(), 3);

    // Erased: no embedding of theirs, no tag anywhere, the faces plainly unknown.
    let deleted = app
        .delete_as(format!("/api/v1/visitors/{}", tags[0].id), &user.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(images(), before - 3);
    let cover = app.http.get(app.url(&cover_url)).send().await.unwrap();
    assert_eq!(cover.status(), 404);
    for detection in &seen {
        let now = app.detection(&user, &detection.id).await;
        assert_eq!(main_identity(&now), Some(Identity::unknown()));
    }
    for collection in ["visitors", "seen_faces", "detections", "alarms"] {
        let text = crate::search::dump_all(&app, collection).await;
        for t in &tags {
            assert!(!text.contains(&t.id), "{collection} still names {}", t.id);
        }
    }
    assert!(app.visitors(&user).await.is_empty());
}
