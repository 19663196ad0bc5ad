//! People: subjects, enrolment and an identity on every face, with the real
//! models and real photos of five people (../shared/data/identities, eleven
//! photos each).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use vigil_wire::detections::DetectionView;
use vigil_wire::paging::PageOf;
use vigil_wire::people::{Identity, SubjectFaceView, SubjectView};
use vigil_wire::ErrorCode;

use crate::helpers::{
    database_uri, error_code, models_dir, plain_jpeg, spawn_app, spawn_app_with, stored_images, test_asset,
    vigil_command, AppOptions, TestApp, TestUser, Upload,
};

/// One folder per person, photos sorted by name.
pub(crate) fn identities() -> Vec<(String, Vec<PathBuf>)> {
    let dir = std::env::var_os("VIGIL_TEST_IDENTITIES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(repo_path!("../shared/data/identities")));
    let mut people: Vec<(String, Vec<PathBuf>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set VIGIL_TEST_IDENTITIES_DIR)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let mut photos: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|f| f.extension().is_some_and(|x| x == "jpg"))
                .collect();
            photos.sort();
            (p.file_name().unwrap().to_string_lossy().into_owned(), photos)
        })
        .collect();
    people.sort();
    assert!(
        people.len() >= 5 && people.iter().all(|(_, p)| p.len() >= 8),
        "five people with photos"
    );
    people
}

impl TestApp {
    pub(crate) async fn create_subject(&self, user: &TestUser, name: &str) -> SubjectView {
        let response = self
            .http
            .post(self.url("/api/v1/subjects"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    async fn enrol_image(&self, user: &TestUser, subject: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/v1/subjects/{subject}/faces")))
            .bearer_auth(&user.access_token)
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Enrols face `face_index` of detection `detection_id` (any JSON, to test refusals too).
    async fn enrol_seen(
        &self,
        user: &TestUser,
        subject: &str,
        detection_id: &str,
        face_index: u32,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/v1/subjects/{subject}/faces")))
            .bearer_auth(&user.access_token)
            .json(&json!({ "detection_id": detection_id, "face_index": face_index }))
            .send()
            .await
            .unwrap()
    }

    /// Runs a `vigil` subcommand against this app's database and data
    /// folder; asserts it succeeds and returns what it printed.
    fn vigil_against(&self, args: &[&str]) -> String {
        let output = vigil_command()
            .args(args)
            .args([
                "--mongodb-uri",
                &database_uri(),
                "--database",
                &self.database_name,
            ])
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub(crate) async fn enrol_photo(
        &self,
        user: &TestUser,
        subject: &str,
        photo: &PathBuf,
    ) -> SubjectFaceView {
        let response = self
            .enrol_image(user, subject, std::fs::read(photo).unwrap())
            .await;
        assert_eq!(
            response.status(),
            201,
            "{}: {}",
            photo.display(),
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }

    /// The subject's enrolled faces, as its owner lists them.
    pub(crate) async fn subject_faces(&self, user: &TestUser, subject: &str) -> Vec<SubjectFaceView> {
        let response = self
            .get_as(&format!("/api/v1/subjects/{subject}/faces"), &user.access_token)
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let page: PageOf<SubjectFaceView> = response.json().await.unwrap();
        page.items
    }

    pub(crate) async fn detect(&self, user: &TestUser, bytes: Vec<u8>) -> DetectionView {
        let response = self.upload(user, Upload::body(bytes, "image/jpeg")).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    async fn subject(&self, user: &TestUser, id: &str) -> reqwest::Response {
        self.get_as(&format!("/api/v1/subjects/{id}"), &user.access_token)
            .await
    }

    async fn count(&self, collection: &str) -> u64 {
        self.db
            .collection::<mongodb::bson::Document>(collection)
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap()
    }
}

/// Recognised as nobody (grouped with a visitor or not).
pub(crate) fn is_unknown(identity: &Option<Identity>) -> bool {
    matches!(identity, Some(Identity::Unknown(_)))
}

/// The identity of the largest face.
pub(crate) fn main_identity(detection: &DetectionView) -> Option<Identity> {
    detection
        .faces
        .iter()
        .max_by(|a, b| a.face.bbox.area().total_cmp(&b.face.bbox.area()))
        .and_then(|f| f.identity.clone())
}

fn quantiles(values: &mut [f32]) -> String {
    values.sort_by(f32::total_cmp);
    let q = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    format!("min {:.3} median {:.3} max {:.3}", q(0.0), q(0.5), q(1.0))
}

#[tokio::test]
async fn enrolled_people_are_named_and_strangers_stay_unknown() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let (enrolled, strangers) = people.split_at(3);
    let mut subjects = Vec::new();
    for (name, photos) in enrolled {
        let subject = app.create_subject(&user, name).await;
        for photo in &photos[..3] {
            let face = app.enrol_photo(&user, &subject.id, photo).await;
            assert_eq!(face.subject_id, subject.id);
            assert_eq!(face.model, "dlib_resnet_v1+sp5");
        }
        subjects.push(subject);
    }

    let (mut right, mut wrong, mut unnamed) = (0, Vec::new(), Vec::new());
    let mut genuine = Vec::new();
    for ((name, photos), subject) in enrolled.iter().zip(&subjects) {
        for photo in &photos[3..] {
            let detection = app.detect(&user, std::fs::read(photo).unwrap()).await;
            match main_identity(&detection) {
                Some(Identity::Recognised(known)) if known.subject_id == subject.id => {
                    assert_eq!(&known.name, name);
                    assert!(known.confidence > 0.5 && known.confidence <= 1.0, "{known:?}");
                    genuine.push(known.distance);
                    right += 1;
                }
                Some(Identity::Recognised(known)) => {
                    wrong.push(format!("{} as {}", photo.display(), known.name))
                }
                other => unnamed.push(format!("{}: {other:?}", photo.display())),
            }
        }
    }
    let mut false_accepts = Vec::new();
    let mut stranger_faces = 0;
    for (_, photos) in strangers {
        for photo in photos {
            let detection = app.detect(&user, std::fs::read(photo).unwrap()).await;
            for face in &detection.faces {
                match &face.identity {
                    Some(Identity::Recognised(known)) => {
                        false_accepts.push(format!("{} as {}", photo.display(), known.name))
                    }
                    Some(Identity::Unknown(_)) => stranger_faces += 1,
                    Some(Identity::Erased(_)) => panic!("nobody was erased"),
                    None => {}
                }
            }
        }
    }
    eprintln!(
        "recognised {right}, misnamed {}, unnamed {}, strangers' faces unknown {stranger_faces}, \
         false accepts {}; genuine distances: {}",
        wrong.len(),
        unnamed.len(),
        false_accepts.len(),
        quantiles(&mut genuine)
    );
    assert!(false_accepts.is_empty(), "strangers named: {false_accepts:?}");
    assert!(wrong.is_empty(), "misnamed: {wrong:?}");
    assert!(unnamed.is_empty(), "not recognised: {unnamed:?}");
    assert!(stranger_faces >= 22, "every stranger photo has an unknown face");

    // The alarm names the person.
    let detection = app.detect(&user, std::fs::read(&enrolled[0].1[5]).unwrap()).await;
    let alarm: vigil_wire::alarms::AlarmView = app
        .fetch_as(
            &format!("/api/v1/alarms/{}", detection.alarm_id.unwrap()),
            &user.access_token,
        )
        .await;
    let message = &alarm.message;
    assert!(message.starts_with(&enrolled[0].0), "{message}");
    assert!(message.ends_with(" on upload"), "{message}");
    assert_eq!(alarm.identities.len(), detection.faces.len());
    assert_eq!(
        alarm.identities,
        detection
            .faces
            .iter()
            .map(|f| f.identity.clone())
            .collect::<Vec<_>>()
    );

    // Listing shows counts and thumbnails.
    let page: PageOf<SubjectView> = app
        .get_as("/api/v1/subjects", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    for subject in &page.items {
        assert_eq!(subject.face_count, 3);
        let thumbnail = app.get(subject.thumbnail_url.as_deref().unwrap()).await;
        assert_eq!(thumbnail.status(), 200);
        assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    }
}

#[tokio::test]
async fn galleries_are_private_and_names_unique_without_case() {
    let people = identities();
    let app = spawn_app().await;
    let alice = app.create_user().await;
    let bob = app.create_user().await;
    let subject = app.create_subject(&alice, "Grace").await;
    app.enrol_photo(&alice, &subject.id, &people[0].1[0]).await;

    let photo = std::fs::read(&people[0].1[4]).unwrap();
    let seen_by_alice = app.detect(&alice, photo.clone()).await;
    assert!(matches!(
        main_identity(&seen_by_alice),
        Some(Identity::Recognised(_))
    ));
    let seen_by_bob = app.detect(&bob, photo).await;
    assert!(is_unknown(&main_identity(&seen_by_bob)));

    for path in [
        format!("/api/v1/subjects/{}", subject.id),
        format!("/api/v1/subjects/{}/faces", subject.id),
    ] {
        let response = app.get_as(&path, &bob.access_token).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = app
        .delete_as(format!("/api/v1/subjects/{}", subject.id), &bob.access_token)
        .await;
    assert_eq!(response.status(), 404);
    let response = app
        .enrol_image(&bob, &subject.id, test_asset("astronaut.png"))
        .await;
    assert_eq!(response.status(), 404);

    let taken = app
        .http
        .post(app.url("/api/v1/subjects"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "name": " GRACE " }))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    assert_eq!(error_code(taken).await, ErrorCode::SubjectNameTaken);
    // Another owner may use the name.
    app.create_subject(&bob, "Grace").await;

    let renamed = app
        .http
        .patch(app.url(&format!("/api/v1/subjects/{}", subject.id)))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "name": "Grace Hopper", "note": "admiral" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let renamed: SubjectView = renamed.json().await.unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.note.as_deref()),
        ("Grace Hopper", Some("admiral"))
    );
    let again = app.detect(&alice, std::fs::read(&people[0].1[6]).unwrap()).await;
    match main_identity(&again) {
        Some(Identity::Recognised(known)) => assert_eq!(known.name, "Grace Hopper"),
        other => panic!("{other:?}"),
    }
    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(65) }),
        json!({ "nom": "x" }),
    ] {
        let response = app
            .http
            .post(app.url("/api/v1/subjects"))
            .bearer_auth(&alice.access_token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
    }
}

/// A BMP header claiming 50000×50000 pixels, with no pixels behind it.
fn huge_bmp_header() -> Vec<u8> {
    let mut bmp = b"BM".to_vec();
    bmp.extend(54u32.to_le_bytes()); // file size (a lie; never read that far)
    bmp.extend([0; 4]);
    bmp.extend(54u32.to_le_bytes()); // pixel data offset
    bmp.extend(40u32.to_le_bytes()); // BITMAPINFOHEADER
    bmp.extend(50_000i32.to_le_bytes());
    bmp.extend(50_000i32.to_le_bytes());
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    bmp.extend([0; 24]);
    bmp
}

#[tokio::test]
async fn refused_enrolments_store_nothing_and_cost_no_quota() {
    let people = identities();
    let app = spawn_app().await;
    let user = app.create_user().await;
    let other = app.create_user().await;
    let subject = app.create_subject(&user, "Ada").await;
    let others_detection = app.detect(&other, std::fs::read(&people[1].1[0]).unwrap()).await;
    let used_before: crate::helpers::User = app.fetch_as("/api/v1/users/me", &user.access_token).await;

    let no_face = app.enrol_image(&user, &subject.id, plain_jpeg(320, 240)).await;
    assert_eq!(no_face.status(), 422);
    assert_eq!(error_code(no_face).await, ErrorCode::NoFace);

    let huge = app
        .http
        .post(app.url(&format!("/api/v1/subjects/{}/faces", subject.id)))
        .bearer_auth(&user.access_token)
        .header("content-type", "image/bmp")
        .body(huge_bmp_header())
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(error_code(huge).await, ErrorCode::ImageTooLarge);

    let foreign = app.enrol_seen(&user, &subject.id, &others_detection.id, 0).await;
    assert_eq!(foreign.status(), 404);
    assert_eq!(error_code(foreign).await, ErrorCode::NotFound);

    let mine = app.detect(&user, std::fs::read(&people[1].1[1]).unwrap()).await;
    let out_of_range = app.enrol_seen(&user, &subject.id, &mine.id, 7).await;
    assert_eq!(out_of_range.status(), 422);
    assert_eq!(error_code(out_of_range).await, ErrorCode::ValidationFailed);

    assert_eq!(app.count("subject_faces").await, 0);
    let subject_now: SubjectView = app.subject(&user, &subject.id).await.json().await.unwrap();
    assert_eq!(subject_now.face_count, 0);
    let used_after: crate::helpers::User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(
        used_after.api_requests_used,
        used_before.api_requests_used + 1,
        "only the upload of `mine` took quota"
    );

    // A face of one's own detection enrols, and says where it came from.
    let from_detection = app.enrol_seen(&user, &subject.id, &mine.id, 0).await;
    assert_eq!(
        from_detection.status(),
        201,
        "{}",
        from_detection.text().await.unwrap()
    );
    let face: SubjectFaceView = from_detection.json().await.unwrap();
    assert_eq!(
        face.origin,
        vigil_wire::people::FaceOrigin::Detection {
            detection_id: mine.id.clone(),
            face_index: 0
        }
    );
    let crop = app.get(&face.crop_url).await;
    assert_eq!(crop.status(), 200);
    let crop = image::load_from_memory(&crop.bytes().await.unwrap()).unwrap();
    assert_eq!((crop.width(), crop.height()), (150, 150));

    // A face below the minimum size gets no embedding, and is not enrolled.
    let strict = spawn_app_with(AppOptions::default().flag("--recognition-min-face-px", 1024)).await;
    let user = strict.create_user().await;
    let subject = strict.create_subject(&user, "Ada").await;
    let small = strict
        .enrol_image(&user, &subject.id, std::fs::read(&people[2].1[0]).unwrap())
        .await;
    assert_eq!(small.status(), 422);
    assert_eq!(error_code(small).await, ErrorCode::FaceTooSmall);
    let detection = strict
        .detect(&user, std::fs::read(&people[2].1[0]).unwrap())
        .await;
    assert!(
        detection.faces.iter().all(|f| f.identity.is_none()),
        "too small to embed: no identity"
    );
    assert_eq!(strict.count("subject_faces").await, 0);
}

#[tokio::test]
async fn enrolments_and_deletions_reach_every_instance() {
    let people = identities();
    let first = spawn_app_with(AppOptions::default().flag("--media-store", "gridfs")).await;
    let second = spawn_app_with(
        AppOptions {
            database_name: first.database_name.clone(),
            ..AppOptions::default()
        }
        .flag("--media-store", "gridfs"),
    )
    .await;
    let user = first.create_user().await;
    let probe = std::fs::read(&people[3].1[5]).unwrap();
    // The second instance has seen this person before anyone enrolled them.
    assert!(is_unknown(&main_identity(
        &second.detect(&user, probe.clone()).await
    )));

    let subject = first.create_subject(&user, "Linus").await;
    let face = first.enrol_photo(&user, &subject.id, &people[3].1[0]).await;
    let enrolled_at = Instant::now();
    let recognised = loop {
        let seen = second.detect(&user, probe.clone()).await;
        if let Some(Identity::Recognised(known)) = main_identity(&seen) {
            break known;
        }
        assert!(
            enrolled_at.elapsed() < Duration::from_secs(5),
            "never recognised on the second instance"
        );
    };
    eprintln!(
        "recognised on the other instance {:?} after enrolment",
        enrolled_at.elapsed()
    );
    assert!(
        enrolled_at.elapsed() < Duration::from_secs(2),
        "{:?}",
        enrolled_at.elapsed()
    );
    assert_eq!(recognised.name, "Linus");

    // Deleting on the second instance erases the faces, crops and index entries everywhere.
    let deleted = second
        .delete_as(format!("/api/v1/subjects/{}", subject.id), &user.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(first.subject(&user, &subject.id).await.status(), 404);
    assert_eq!(first.count("subject_faces").await, 0);
    assert_eq!(first.get(&face.crop_url).await.status(), 404, "the crop is gone");
    let deleted_at = Instant::now();
    loop {
        let seen = first.detect(&user, probe.clone()).await;
        if is_unknown(&main_identity(&seen)) {
            break;
        }
        assert!(
            deleted_at.elapsed() < Duration::from_secs(5),
            "still recognised after deletion"
        );
    }
    let again = second
        .delete_as(format!("/api/v1/subjects/{}", subject.id), &user.access_token)
        .await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn deleting_one_face_keeps_the_others_and_moves_the_thumbnail() {
    let people = identities();
    let app = spawn_app().await;
    let user = app.create_user().await;
    let subject = app.create_subject(&user, "Barbara").await;
    let first = app.enrol_photo(&user, &subject.id, &people[4].1[0]).await;
    let second = app.enrol_photo(&user, &subject.id, &people[4].1[1]).await;
    let before: SubjectView = app.subject(&user, &subject.id).await.json().await.unwrap();
    assert_eq!(before.face_count, 2);

    let path = format!("/api/v1/subjects/{}/faces/{}", subject.id, first.id);
    assert_eq!(app.delete_as(&path, &user.access_token).await.status(), 204);
    assert_eq!(app.delete_as(&path, &user.access_token).await.status(), 404);
    let malformed = format!("/api/v1/subjects/{}/faces/not-an-id", subject.id);
    assert_eq!(app.delete_as(&malformed, &user.access_token).await.status(), 404);

    let after: SubjectView = app.subject(&user, &subject.id).await.json().await.unwrap();
    assert_eq!(after.face_count, 1);
    assert_ne!(
        after.thumbnail_url, before.thumbnail_url,
        "the cover moved to the remaining face"
    );
    let faces = app.subject_faces(&user, &subject.id).await;
    assert_eq!(
        faces.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str()]
    );
    let seen = app.detect(&user, std::fs::read(&people[4].1[7]).unwrap()).await;
    assert!(matches!(main_identity(&seen), Some(Identity::Recognised(_))));
}

/// Uploads `photo` until its main face's identity satisfies `want`, for at most `within`.
pub(crate) async fn wait_for_identity(
    app: &TestApp,
    user: &TestUser,
    photo: &PathBuf,
    within: Duration,
    want: impl Fn(&Option<Identity>) -> bool,
) -> Option<Identity> {
    let started = Instant::now();
    loop {
        let identity = main_identity(&app.detect(user, std::fs::read(photo).unwrap()).await);
        if want(&identity) {
            return identity;
        }
        assert!(
            started.elapsed() < within,
            "{}: still {identity:?}",
            photo.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn faces_of_another_model_are_never_compared_until_reindexed() {
    use mongodb::bson::{doc, spec::BinarySubtype, Binary, Document};
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let subject = app.create_subject(&user, "Ken").await;
    let enrolled = app.enrol_photo(&user, &subject.id, &people[1].1[0]).await;
    let probe = &people[1].1[3];
    let recognised = |i: &Option<Identity>| matches!(i, Some(Identity::Recognised(_)));
    wait_for_identity(&app, &user, probe, Duration::from_secs(5), recognised).await;

    // As an older model would have left it: the running server stops using it.
    let faces = app.db.collection::<Document>("subject_faces");
    let original = faces.find_one(doc! {}).await.unwrap().unwrap();
    let zeros = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0; 512],
    };
    faces
        .update_one(
            doc! {},
            doc! { "$set": { "model": "dlib_resnet_v0", "embedding": zeros } },
        )
        .await
        .unwrap();
    let unknown = is_unknown;
    wait_for_identity(&app, &user, probe, Duration::from_secs(5), unknown).await;

    let stdout = app.vigil_against(&["reindex", "--models-dir", models_dir().to_str().unwrap()]);
    assert!(
        stdout.contains("reindexed=1 failed=0 model=dlib_resnet_v1+sp5"),
        "{stdout}"
    );

    let reindexed = faces.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(reindexed.get_str("model").unwrap(), "dlib_resnet_v1+sp5");
    assert_eq!(
        reindexed.get_binary_generic("embedding").unwrap(),
        original.get_binary_generic("embedding").unwrap(),
        "the same model on the same source gives the same embedding"
    );
    assert_ne!(
        reindexed.get_str("crop").unwrap(),
        enrolled.crop_url.split('?').next().unwrap()
    );
    wait_for_identity(&app, &user, probe, Duration::from_secs(5), recognised).await;
}

#[tokio::test]
async fn admin_subjects_are_named_on_camera_frames() {
    let people = identities();
    let inbox = tempfile::tempdir().unwrap();
    let spec = format!("id=porch,source=dir:{},cooldown=1", inbox.path().display());
    let app = spawn_app_with(AppOptions::default().flag("--camera", spec)).await;
    let admin = app.create_user().await;
    let user = app.create_user().await;
    let subject = app.create_subject(&admin, "Margaret").await;
    app.enrol_photo(&admin, &subject.id, &people[2].1[0]).await;
    // A plain user's subject of another person is not for cameras.
    let theirs = app.create_subject(&user, "Someone").await;
    app.enrol_photo(&user, &theirs.id, &people[3].1[0]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    for (name, photo) in [("a.jpg", &people[2].1[4]), ("b.jpg", &people[3].1[4])] {
        std::fs::copy(photo, inbox.path().join(format!(".{name}"))).unwrap();
        std::fs::rename(inbox.path().join(format!(".{name}")), inbox.path().join(name)).unwrap();
        // Past the camera's one-second alarm cooldown.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let started = Instant::now();
    let alarms = loop {
        let page: PageOf<vigil_wire::alarms::AlarmView> = app
            .get_as("/api/v1/alarms?limit=100", &admin.access_token)
            .await
            .json()
            .await
            .unwrap();
        let camera: Vec<_> = page
            .items
            .into_iter()
            .filter(|a| a.camera_id.as_deref() == Some("porch"))
            .collect();
        if camera.len() >= 2 {
            break camera;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "camera alarms: {camera:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let messages: Vec<&str> = alarms.iter().map(|a| a.message.as_str()).collect();
    assert!(messages.contains(&"Margaret at porch"), "{messages:?}");
    assert!(
        alarms.iter().all(|a| a
            .identities
            .iter()
            .flatten()
            .all(|i| i.recognised().is_none_or(|r| r.name == "Margaret"))),
        "a user's subject named on a camera: {messages:?}"
    );
}

/// Every document of `collection`, as extended JSON text.
async fn dump(app: &TestApp, collection: &str) -> String {
    use futures_util::TryStreamExt;
    let docs: Vec<mongodb::bson::Document> = app
        .db
        .collection::<mongodb::bson::Document>(collection)
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

/// The names of every file under `dir`.
/// Asserts that no collection and no stored image holds anything of the subject.
async fn nothing_remains_of(app: &TestApp, subject: &SubjectView, images: &[String]) {
    for collection in [
        "subjects",
        "subject_faces",
        "detections",
        "alarms",
        "ws_messages",
        "seen_faces",
        "audit_log",
    ] {
        let text = dump(app, collection).await;
        assert!(
            !text.contains(&subject.id),
            "{collection} still names the subject: {text}"
        );
        assert!(
            !text.contains(&subject.name),
            "{collection} still has the name: {text}"
        );
    }
    let stored = stored_images(&app.data_dir.path().join("images"));
    for image in images {
        assert!(
            !stored.iter().any(|f| f.starts_with(image)),
            "image {image} is still stored"
        );
    }
}

#[tokio::test]
async fn erasing_a_person_leaves_nothing_of_them() {
    use crate::helpers::{alarm, next_of, quiet, send};
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let subject = app.create_subject(&user, "Zelda Erasable").await;
    let mut images = Vec::new();
    for photo in &people[0].1[..2] {
        let face = app.enrol_photo(&user, &subject.id, photo).await;
        // `/media/<oid>.jpg?…`: the crop's file; the source image is named in the document.
        images.push(
            face.crop_url
                .trim_start_matches("/media/")
                .split('.')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    let enrolled = dump(&app, "subject_faces").await;
    for source in enrolled.split("\"source_image\": \"").skip(1) {
        images.push(source.split('.').next().unwrap().to_owned());
    }
    assert_eq!(images.len(), 4, "two crops and two source images");

    // A live subscriber, so that the message log keeps an alarm naming her.
    let (mut ws, _) = quiet(&app, &format!("?token={}", user.access_token)).await;
    send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
    next_of(&mut ws, "subscribed").await;
    let seen = app.detect(&user, std::fs::read(&people[0].1[6]).unwrap()).await;
    assert!(matches!(main_identity(&seen), Some(Identity::Recognised(_))));
    let live = alarm(next_of(&mut ws, "alarm").await);
    assert!(live.message.starts_with("Zelda Erasable"), "{}", live.message);
    let logged = Instant::now();
    while !dump(&app, "ws_messages").await.contains("Zelda Erasable") {
        assert!(
            logged.elapsed() < Duration::from_secs(10),
            "the alarm never reached the message log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let deleted = app
        .delete_as(format!("/api/v1/subjects/{}", subject.id), &user.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    nothing_remains_of(&app, &subject, &images).await;
    let after: DetectionView = app
        .fetch_as(&format!("/api/v1/detections/{}", seen.id), &user.access_token)
        .await;
    assert_eq!(main_identity(&after), Some(Identity::erased()));
    let rewritten: vigil_wire::alarms::AlarmView = app
        .fetch_as(&format!("/api/v1/alarms/{}", live.id), &user.access_token)
        .await;
    assert_eq!(rewritten.message, "1 face detected on upload");
    let later = app.detect(&user, std::fs::read(&people[0].1[7]).unwrap()).await;
    assert!(is_unknown(&main_identity(&later)));

    // From the shell, whoever owns the subject.
    let subject = app.create_subject(&user, "Yorick Erasable").await;
    let face = app.enrol_photo(&user, &subject.id, &people[1].1[0]).await;
    let seen = app.detect(&user, std::fs::read(&people[1].1[5]).unwrap()).await;
    assert!(matches!(main_identity(&seen), Some(Identity::Recognised(_))));
    let stdout = app.vigil_against(&["erase", "--subject", &subject.id]);
    assert!(
        stdout.contains("with 1 faces") && stdout.contains("detections=1 alarms=1"),
        "{stdout}"
    );
    let crop = face
        .crop_url
        .trim_start_matches("/media/")
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    nothing_remains_of(&app, &subject, &[crop]).await;
    // The running server learns of it through its change streams.
    wait_for_identity(&app, &user, &people[1].1[6], Duration::from_secs(5), |i| {
        is_unknown(i)
    })
    .await;
}

#[tokio::test]
async fn a_subject_takes_at_most_a_hundred_faces() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 1000)).await;
    let user = app.create_user().await;
    let subject = app.create_subject(&user, "Many").await;
    let seen = app.detect(&user, std::fs::read(&people[0].1[0]).unwrap()).await;
    for _ in 0..100 {
        let enrolled = app.enrol_seen(&user, &subject.id, &seen.id, 0).await;
        assert_eq!(enrolled.status(), 201);
    }
    let refused = app.enrol_seen(&user, &subject.id, &seen.id, 0).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(error_code(refused).await, ErrorCode::LimitReached);
    let subject: SubjectView = app.subject(&user, &subject.id).await.json().await.unwrap();
    assert_eq!(subject.face_count, 100);
    assert_eq!(app.count("subject_faces").await, 100);
}
