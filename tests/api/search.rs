//! Search by face, the audit log it writes, a subject's export, and how
//! long unknown faces' embeddings are kept: with the real models and photos
//! of five people (../shared/data/identities).

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use chrono::Utc;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use vigil_wire::audit::{AuditAction, AuditEntryView};
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::people::Identity;
use vigil_wire::search::FaceSearchResults;
use vigil_wire::ErrorCode;

use crate::accounts::vigil_user;
use crate::helpers::{body, error_code, plain_jpeg, query, spawn_app_with, AppOptions, TestApp, TestUser};
use crate::people::identities;

/// The probe of a search: an image, or a JSON body.
enum Probe {
    Image(Vec<u8>),
    Json(Value),
}

impl TestApp {
    async fn search(&self, user: &TestUser, probe: &Probe, params: &[(&str, &str)]) -> reqwest::Response {
        let request = self
            .http
            .post(self.url(&format!("/api/v1/faces/search?{}", query(params))))
            .bearer_auth(&user.access_token);
        let request = match probe {
            Probe::Image(bytes) => request.header("content-type", "image/jpeg").body(bytes.clone()),
            Probe::Json(value) => request.json(value),
        };
        request.send().await.unwrap()
    }

    async fn found(&self, user: &TestUser, probe: &Probe, params: &[(&str, &str)]) -> FaceSearchResults {
        let response = self.search(user, probe, params).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Every match, page after page of `limit`.
    async fn all_pages(
        &self,
        user: &TestUser,
        probe: &Probe,
        order: &str,
        limit: &str,
    ) -> Vec<(String, f32)> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .found(
                    user,
                    probe,
                    &[
                        ("order", order),
                        ("limit", limit),
                        ("cursor", &cursor),
                        ("max_distance", "0.6"),
                    ],
                )
                .await;
            all.extend(page.items.iter().map(|m| (m.detection.id.clone(), m.distance)));
            match page.next_cursor {
                Some(next) => cursor = next,
                None => return all,
            }
        }
    }

    async fn audit_log(&self, user: &TestUser) -> reqwest::Response {
        self.get_as("/api/v1/audit-log", &user.access_token).await
    }

    /// Makes `user` an admin, and waits until the server treats them as one.
    async fn promote(&self, user: &TestUser) {
        vigil_user(self, "promote", &user.user_name);
        let started = Instant::now();
        while self.audit_log(user).await.status() != 200 {
            assert!(started.elapsed() < Duration::from_secs(10), "never an admin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ids(results: &FaceSearchResults) -> BTreeSet<String> {
    results.items.iter().map(|m| m.detection.id.clone()).collect()
}

fn photo(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The index of the largest face of a detection.
fn largest(detection: &DetectionView) -> usize {
    (0..detection.faces.len())
        .max_by(|&a, &b| {
            let area = |i: usize| detection.faces[i].face.bbox.area();
            area(a).total_cmp(&area(b))
        })
        .unwrap()
}

#[tokio::test]
async fn search_by_face_finds_exactly_that_persons_detections_for_whoever_may_see_them() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let owner = app.create_user().await;
    let other = app.create_user().await;

    // Three photos of each of five people, none enrolled: all unknown faces.
    let mut seen: Vec<BTreeSet<String>> = Vec::new();
    let mut first: Vec<DetectionView> = Vec::new();
    for (_, photos) in &people {
        let mut detections = BTreeSet::new();
        for path in &photos[1..4] {
            let detection = app.detect(&owner, photo(path)).await;
            assert!(!detection.faces.is_empty(), "{}", path.display());
            if detections.is_empty() {
                first.push(detection.clone());
            }
            detections.insert(detection.id);
        }
        seen.push(detections);
    }

    // A photo nobody uploaded finds exactly its person's three detections.
    for (person, (name, photos)) in people.iter().enumerate() {
        let probe = Probe::Image(photo(&photos[0]));
        let results = app.found(&owner, &probe, &[("max_distance", "0.6")]).await;
        assert_eq!(ids(&results), seen[person], "{name}: {:?}", results.items);
        let distances: Vec<f32> = results.items.iter().map(|m| m.distance).collect();
        assert!(
            distances.windows(2).all(|w| w[0] <= w[1]),
            "nearest first: {distances:?}"
        );
        assert!(distances.iter().all(|d| *d > 0.0 && *d <= 0.6));
        assert!(
            results.scanned >= 15,
            "every stored face compared: {}",
            results.scanned
        );

        // Newest first: the same matches, in the order they were stored.
        let newest = app
            .found(&owner, &probe, &[("order", "newest"), ("max_distance", "0.6")])
            .await;
        assert_eq!(ids(&newest), seen[person]);
        let times: Vec<_> = newest.items.iter().map(|m| m.detection.created_at).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    }

    // Pages of one cover every match once, in both orders.
    let probe = Probe::Image(photo(&people[0].1[0]));
    for order in ["best", "newest"] {
        let paged = app.all_pages(&owner, &probe, order, "1").await;
        let paged_ids: BTreeSet<String> = paged.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(paged.len(), 3, "{order}: {paged:?}");
        assert_eq!(paged_ids, seen[0]);
    }

    // A face of a detection: that detection (distance 0) and the others.
    let face = Probe::Json(json!({ "detection_id": first[1].id, "face_index": largest(&first[1]) }));
    let by_face = app.found(&owner, &face, &[("max_distance", "0.6")]).await;
    assert_eq!(ids(&by_face), seen[1]);
    assert_eq!(by_face.items[0].detection.id, first[1].id);
    assert!(by_face.items[0].distance < 1e-4);

    // A subject: its enrolled faces, averaged.
    let subject = app.create_subject(&owner, "Searched").await;
    app.enrol_photo(&owner, &subject.id, &people[2].1[0]).await;
    app.enrol_photo(&owner, &subject.id, &people[2].1[4]).await;
    let by_subject = app
        .found(
            &owner,
            &Probe::Json(json!({ "subject_id": subject.id })),
            &[("max_distance", "0.6")],
        )
        .await;
    assert_eq!(ids(&by_subject), seen[2]);

    // A time window: nothing stored after now.
    let later = (Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let empty = app
        .found(&owner, &probe, &[("from", &later), ("max_distance", "0.6")])
        .await;
    assert!(empty.items.is_empty() && empty.scanned == 0);

    // Another user sees none of it (nor the audit log); an admin sees all
    // of it. (The first account, `owner`, is an admin too, whose own
    // uploads these are.)
    assert_eq!(
        error_code(app.audit_log(&other).await).await,
        ErrorCode::Forbidden
    );
    assert!(app
        .found(&other, &probe, &[("max_distance", "0.6")])
        .await
        .items
        .is_empty());
    assert_eq!(
        error_code(app.search(&other, &face, &[]).await).await,
        ErrorCode::NotFound
    );
    assert_eq!(
        error_code(
            app.search(&other, &Probe::Json(json!({ "subject_id": subject.id })), &[])
                .await
        )
        .await,
        ErrorCode::NotFound
    );
    let own = app.detect(&other, photo(&people[4].1[5])).await;
    let mine = app
        .found(
            &other,
            &Probe::Image(photo(&people[4].1[0])),
            &[("max_distance", "0.6")],
        )
        .await;
    assert_eq!(ids(&mine), BTreeSet::from([own.id.clone()]), "a user's own, only");
    app.promote(&other).await;
    assert_eq!(
        ids(&app.found(&other, &probe, &[("max_distance", "0.6")]).await),
        seen[0]
    );

    // Refusals.
    for (params, code) in [
        (vec![("cursor", "not-a-cursor")], ErrorCode::InvalidQuery),
        (vec![("max_distance", "0")], ErrorCode::InvalidQuery),
        (vec![("limit", "0")], ErrorCode::InvalidQuery),
    ] {
        assert_eq!(
            error_code(app.search(&owner, &probe, &params).await).await,
            code,
            "{params:?}"
        );
    }
    let best_cursor = app
        .found(&owner, &probe, &[("limit", "1"), ("max_distance", "0.6")])
        .await
        .next_cursor
        .unwrap();
    assert_eq!(
        error_code(
            app.search(&owner, &probe, &[("order", "newest"), ("cursor", &best_cursor)])
                .await
        )
        .await,
        ErrorCode::InvalidQuery,
        "a cursor of the other order"
    );
    for (probe, code) in [
        (Probe::Json(json!({})), ErrorCode::ValidationFailed),
        (
            Probe::Json(json!({ "detection_id": first[0].id, "face_index": 99 })),
            ErrorCode::NoEmbedding,
        ),
        (
            Probe::Json(json!({ "detection_id": "nope", "face_index": 0 })),
            ErrorCode::NotFound,
        ),
        (
            Probe::Json(json!({ "subject_id": "0123456789abcdef01234567" })),
            ErrorCode::NotFound,
        ),
        (Probe::Image(plain_jpeg(64, 64)), ErrorCode::NoFace),
    ] {
        assert_eq!(error_code(app.search(&owner, &probe, &[]).await).await, code);
    }
    let faceless = app.create_subject(&owner, "Faceless").await;
    assert_eq!(
        error_code(
            app.search(&owner, &Probe::Json(json!({ "subject_id": faceless.id })), &[])
                .await
        )
        .await,
        ErrorCode::NoEmbedding
    );

    // Every search that answered is on the audit log, which only admins read.
    let log: PageOf<AuditEntryView> = body(app.audit_log(&other).await).await;
    let searches: Vec<&AuditEntryView> = log
        .items
        .iter()
        .filter(|e| e.action == AuditAction::FaceSearch)
        .collect();
    // 5 × 2 by image, 2 orders × 3 pages, face, subject, window, 3 by
    // `other` (one as admin), the first page for the cursor.
    assert_eq!(searches.len(), 10 + 6 + 1 + 1 + 1 + 3 + 1, "{:#?}", log.items);
    assert!(log.items.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    let by_subject_entry = searches
        .iter()
        .find(|e| e.target == format!("subject {}", subject.id))
        .expect("the subject search is audited");
    assert_eq!(by_subject_entry.actor_id, owner.id);
    assert_eq!(by_subject_entry.results, 3);
    let by_face_entry = searches
        .iter()
        .find(|e| e.target.contains(&first[1].id))
        .expect("the face search is audited");
    assert_eq!(by_face_entry.results, 3);
    assert!(searches.iter().any(|e| e.actor_id == other.id && e.results == 0));
    assert!(searches.iter().any(|e| e.actor_id == other.id && e.results == 3));
    // Nothing in the API changes or removes an entry.
    let entry = &searches[0].id;
    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(&format!("/api/v1/audit-log/{entry}")))
            .bearer_auth(&other.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method}");
    }
    let response = app
        .http
        .delete(app.url("/api/v1/audit-log"))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn an_export_holds_everything_kept_about_a_subject_and_erasure_keeps_only_the_audit_of_it() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let owner = app.create_user().await;
    let stranger = app.create_user().await;
    let subject = app.create_subject(&owner, "Exported Person").await;
    let mut enrolled = Vec::new();
    for path in &people[3].1[..2] {
        enrolled.push(app.enrol_photo(&owner, &subject.id, path).await.id);
    }
    let seen = app.detect(&owner, photo(&people[3].1[5])).await;
    let index = largest(&seen);
    assert!(matches!(
        seen.faces[index].identity,
        Some(Identity::Recognised(_))
    ));

    let refused = app
        .get_as(
            &format!("/api/v1/subjects/{}/export", subject.id),
            &stranger.access_token,
        )
        .await;
    assert_eq!(error_code(refused).await, ErrorCode::NotFound);
    let response = app
        .get_as(
            &format!("/api/v1/subjects/{}/export", subject.id),
            &owner.access_token,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    let mut expected: Vec<String> = enrolled.iter().map(|id| format!("faces/{id}.jpg")).collect();
    expected.push("subject.json".into());
    expected.sort();
    assert_eq!(names, expected);
    for id in &enrolled {
        let mut crop = Vec::new();
        archive
            .by_name(&format!("faces/{id}.jpg"))
            .unwrap()
            .read_to_end(&mut crop)
            .unwrap();
        let image = image::load_from_memory(&crop).expect("a crop is a JPEG");
        assert_eq!((image.width(), image.height()), (150, 150));
    }
    let mut text = String::new();
    archive
        .by_name("subject.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let exported: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(exported["subject"]["name"], "Exported Person");
    let faces = exported["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2);
    assert!(faces
        .iter()
        .all(|f| f["embedding"].as_array().unwrap().len() == 128));
    let sightings = exported["sightings"].as_array().unwrap();
    assert_eq!(sightings.len(), 1, "{sightings:?}");
    assert_eq!(sightings[0]["detection_id"], seen.id);
    assert_eq!(sightings[0]["face_index"], index);
    let alarms = exported["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0]["id"], seen.alarm_id.clone().unwrap());
    assert_eq!(exported["stored_face_embeddings"], 1);

    // Audited, and searched for too.
    app.found(&owner, &Probe::Json(json!({ "subject_id": subject.id })), &[])
        .await;
    let admin = app.create_user().await;
    app.promote(&admin).await;
    let log: PageOf<AuditEntryView> = body(app.audit_log(&admin).await).await;
    let export = log
        .items
        .iter()
        .find(|e| e.action == AuditAction::SubjectExport)
        .expect("the export is audited");
    assert_eq!(export.actor_id, owner.id);
    assert_eq!(export.results, 2);
    assert_eq!(export.target, format!("subject {}", subject.id));
    assert_eq!(log.items.len(), 2);

    // Erased: no collection names the person any more (their stored face
    // embedding included); the audit log keeps who looked, not at whom.
    let deleted = app
        .delete_as(format!("/api/v1/subjects/{}", subject.id), &owner.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    let names = app.db.list_collection_names().await.unwrap();
    assert!(names.contains(&"seen_faces".to_owned()) && names.contains(&"audit_log".to_owned()));
    for collection in names {
        let text = dump_all(&app, &collection).await;
        assert!(
            !text.contains(&subject.id) && !text.contains("Exported Person"),
            "{collection} still names the subject: {text}"
        );
    }
    let log: PageOf<AuditEntryView> = body(app.audit_log(&admin).await).await;
    assert_eq!(log.items.len(), 2, "entries are rewritten, never deleted");
    assert!(
        log.items.iter().all(|e| e.target == "an erased subject"),
        "{:?}",
        log.items
    );
}

pub(crate) async fn dump_all(app: &TestApp, collection: &str) -> String {
    use futures_util::TryStreamExt;
    let docs: Vec<Document> = app
        .db
        .collection::<Document>(collection)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn unknown_faces_embeddings_expire_while_their_detections_and_known_faces_stay() {
    let people = identities();
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--unknown-face-retention-days", 7)
            .flag("--retention-interval-secs", 1)
            .flag("--rate-limit-per-second", 100),
    )
    .await;
    let user = app.create_user().await;
    let subject = app.create_subject(&user, "Known").await;
    app.enrol_photo(&user, &subject.id, &people[0].1[0]).await;
    let known = app.detect(&user, photo(&people[0].1[6])).await;
    assert!(matches!(
        known.faces[largest(&known)].identity,
        Some(Identity::Recognised(_))
    ));
    let stranger = app.detect(&user, photo(&people[1].1[6])).await;
    assert!(matches!(
        stranger.faces[largest(&stranger)].identity,
        Some(Identity::Unknown(_))
    ));
    let fresh = app.detect(&user, photo(&people[1].1[7])).await;

    let prints = app.db.collection::<Document>("seen_faces");
    let count = |detection: &str| {
        let prints = prints.clone();
        let id = mongodb::bson::oid::ObjectId::parse_str(detection).unwrap();
        async move { prints.count_documents(doc! { "detection_id": id }).await.unwrap() }
    };
    assert!(count(&known.id).await >= 1 && count(&stranger.id).await >= 1 && count(&fresh.id).await >= 1);
    let eight_days_ago = mongodb::bson::DateTime::from_chrono(Utc::now() - chrono::Duration::days(8));
    for id in [&known.id, &stranger.id] {
        let id = mongodb::bson::oid::ObjectId::parse_str(id).unwrap();
        prints
            .update_many(
                doc! { "detection_id": id },
                doc! { "$set": { "created_at": eight_days_ago } },
            )
            .await
            .unwrap();
    }
    let started = Instant::now();
    while count(&stranger.id).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the stranger's embedding stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let known_prints = prints
        .find_one(doc! { "detection_id": mongodb::bson::oid::ObjectId::parse_str(&known.id).unwrap() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        known_prints.get_object_id("subject_id").unwrap().to_hex(),
        subject.id,
        "a known face stays"
    );
    assert!(count(&fresh.id).await >= 1, "a young unknown face stays");
    // The detection itself is kept for --retention-days.
    let kept: DetectionView = app
        .fetch_as(&format!("/api/v1/detections/{}", stranger.id), &user.access_token)
        .await;
    assert_eq!(kept.faces, stranger.faces);
    // And the stranger's old face is no longer found; the young one is.
    let results = app
        .found(
            &user,
            &Probe::Image(photo(&people[1].1[0])),
            &[("max_distance", "0.6")],
        )
        .await;
    assert_eq!(ids(&results), BTreeSet::from([fresh.id.clone()]));

    // A recurring stranger last seen longer ago goes too (its prototypes
    // are unknown faces' embeddings).
    let visitors = app.db.collection::<Document>("visitors");
    assert_eq!(visitors.count_documents(doc! {}).await.unwrap(), 1);
    visitors
        .update_many(doc! {}, doc! { "$set": { "last_seen": eight_days_ago } })
        .await
        .unwrap();
    let started = Instant::now();
    while visitors.count_documents(doc! {}).await.unwrap() > 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "the visitor stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
