//! Corrections with the real models and photos: a stranger taken for an
//! enrolled person is corrected with "not", is no longer taken for them on
//! either instance, and is again once the correction is undone; "is"
//! enrols a detected face, and undoing it removes the face.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use vigil_wire::detections::DetectionView;
use vigil_wire::people::{FeedbackKind, FeedbackView, Identity};
use vigil_wire::ErrorCode;

use crate::helpers::{error_code, spawn_app_with, AppOptions, TestApp, TestUser};
use crate::people::{identities, wait_for_identity};

/// Loose enough that anyone is taken for the only enrolled person.
fn loose() -> AppOptions {
    AppOptions::default()
        .flag("--recognition-threshold", "1")
        .flag("--recognition-margin", "0")
        .flag("--rate-limit-per-second", 100)
}

/// The largest face's position and identity.
fn main_face(detection: &DetectionView) -> (u32, Option<Identity>) {
    let (index, face) = detection
        .faces
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| a.face.bbox.area().total_cmp(&b.face.bbox.area()))
        .expect("a face");
    (index as u32, face.identity.clone())
}

fn name_of(identity: Option<Identity>) -> Option<String> {
    match identity {
        Some(Identity::Recognised(known)) => Some(known.name),
        _ => None,
    }
}

impl TestApp {
    async fn feedback(&self, user: &TestUser, detection: &str, index: u32, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/v1/detections/{detection}/faces/{index}/feedback")))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn correct(&self, user: &TestUser, detection: &str, index: u32, body: Value) -> FeedbackView {
        let response = self.feedback(user, detection, index, body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    async fn undo(&self, user: &TestUser, id: &str) -> reqwest::Response {
        self.delete_as(format!("/api/v1/feedback/{id}"), &user.access_token)
            .await
    }

    /// Who the largest face of `photo` is taken for.
    async fn who(&self, user: &TestUser, photo: &PathBuf) -> Option<String> {
        name_of(main_face(&self.detect(user, std::fs::read(photo).unwrap()).await).1)
    }

    /// Waits (up to 5 s) until `photo` is taken for `expected` here.
    async fn until_named(&self, user: &TestUser, photo: &PathBuf, expected: Option<&str>) {
        wait_for_identity(self, user, photo, Duration::from_secs(5), |identity| {
            name_of(identity.clone()).as_deref() == expected
        })
        .await;
    }
}

#[tokio::test]
async fn a_not_correction_stops_a_false_accept_everywhere_and_undo_brings_it_back() {
    let people = identities();
    let (ann, stranger) = (&people[0].1, &people[4].1);
    let first = spawn_app_with(loose()).await;
    let second = spawn_app_with(AppOptions {
        database_name: first.database_name.clone(),
        ..loose()
    })
    .await;
    let user = first.create_user().await;
    let subject = first.create_subject(&user, "Ann").await;
    for photo in &ann[..4] {
        first.enrol_photo(&user, &subject.id, photo).await;
    }
    second.until_named(&user, &ann[5], Some("Ann")).await;

    // The stranger's photos are taken for Ann: the false accept to correct.
    let seen = first.detect(&user, std::fs::read(&stranger[0]).unwrap()).await;
    let (index, identity) = main_face(&seen);
    assert_eq!(name_of(identity).as_deref(), Some("Ann"), "{seen:?}");
    let later = &stranger[1..4];
    for photo in later {
        assert_eq!(
            first.who(&user, photo).await.as_deref(),
            Some("Ann"),
            "{}",
            photo.display()
        );
    }

    let correction = first
        .correct(&user, &seen.id, index, json!({ "not": subject.id }))
        .await;
    assert_eq!(correction.kind, FeedbackKind::Not);
    assert_eq!(
        (
            correction.subject_id.as_str(),
            correction.detection_id.as_str(),
            correction.face_index
        ),
        (subject.id.as_str(), seen.id.as_str(), index)
    );
    // At once on this instance, and through the change stream on the other.
    for photo in later {
        assert_eq!(first.who(&user, photo).await, None, "{}", photo.display());
        second.until_named(&user, photo, None).await;
    }
    // Ann herself is still Ann, and the correction is not one of her faces.
    for photo in &ann[5..8] {
        assert_eq!(
            first.who(&user, photo).await.as_deref(),
            Some("Ann"),
            "{}",
            photo.display()
        );
    }
    let faces = first.subject_faces(&user, &subject.id).await;
    assert_eq!(faces.len(), 4, "a correction is not listed among her faces");

    // Undone on the second instance: the stranger is taken for Ann again on both.
    let undone = second.undo(&user, &correction.id).await;
    assert_eq!(undone.status(), 204);
    assert_eq!(
        second.undo(&user, &correction.id).await.status(),
        404,
        "undone once"
    );
    for photo in later {
        assert_eq!(
            second.who(&user, photo).await.as_deref(),
            Some("Ann"),
            "{}",
            photo.display()
        );
        first.until_named(&user, photo, Some("Ann")).await;
    }
    let stored = first
        .db
        .collection::<mongodb::bson::Document>("subject_faces")
        .count_documents(mongodb::bson::doc! { "polarity": "negative" })
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the correction is kept");
}

#[tokio::test]
async fn an_is_correction_enrols_the_face_and_undo_removes_it() {
    let people = identities();
    let (ann, bob) = (&people[0].1, &people[3].1);
    let app = spawn_app_with(loose()).await;
    let user = app.create_user().await;
    let ann_subject = app.create_subject(&user, "Ann").await;
    for photo in &ann[..3] {
        app.enrol_photo(&user, &ann_subject.id, photo).await;
    }
    let bob_subject = app.create_subject(&user, "Bob").await;
    // Under the loose rule Bob's face may be taken for Ann or for no one,
    // depending on the detector's box; never for Bob, who has no face yet.
    let before = app.who(&user, &bob[5]).await;
    assert_ne!(before.as_deref(), Some("Bob"), "Bob has no face yet");

    let seen = app.detect(&user, std::fs::read(&bob[0]).unwrap()).await;
    let (index, _) = main_face(&seen);
    let correction = app
        .correct(&user, &seen.id, index, json!({ "is": bob_subject.id }))
        .await;
    assert_eq!(correction.kind, FeedbackKind::Is);
    assert_eq!(app.who(&user, &bob[5]).await.as_deref(), Some("Bob"));
    let faces = app.subject_faces(&user, &bob_subject.id).await;
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0].id, correction.id);

    assert_eq!(app.undo(&user, &correction.id).await.status(), 204);
    assert_eq!(
        app.who(&user, &bob[5]).await,
        before,
        "the answer before the correction"
    );
    let bob_now: Value = app
        .get_as(
            &format!("/api/v1/subjects/{}", bob_subject.id),
            &user.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_now["face_count"], 0, "{bob_now}");
}

#[tokio::test]
async fn corrections_name_only_the_callers_faces_and_subjects() {
    let people = identities();
    let app = spawn_app_with(loose()).await;
    let (user, other) = (app.create_user().await, app.create_user().await);
    let subject = app.create_subject(&user, "Ann").await;
    let enrolled = app.enrol_photo(&user, &subject.id, &people[0].1[0]).await;
    let theirs = app.create_subject(&other, "Theirs").await;
    let seen = app.detect(&user, std::fs::read(&people[1].1[0]).unwrap()).await;
    let (index, _) = main_face(&seen);
    let not_ann = json!({ "not": subject.id });

    let cases: [(&str, u32, Value, u16, ErrorCode); 8] = [
        (
            &seen.id,
            index,
            json!({ "not": theirs.id }),
            404,
            ErrorCode::NotFound,
        ),
        (
            &seen.id,
            index,
            json!({ "is": "not-an-id" }),
            404,
            ErrorCode::NotFound,
        ),
        (&seen.id, 99, not_ann.clone(), 404, ErrorCode::NotFound),
        (
            "6650f1c2a4b1c2d3e4f5a6c1",
            0,
            not_ann.clone(),
            404,
            ErrorCode::NotFound,
        ),
        (
            &seen.id,
            index,
            json!({ "not": subject.id, "is": subject.id }),
            422,
            ErrorCode::ValidationFailed,
        ),
        (&seen.id, index, json!({}), 422, ErrorCode::ValidationFailed),
        (
            &seen.id,
            index,
            json!({ "maybe": subject.id }),
            422,
            ErrorCode::ValidationFailed,
        ),
        (
            &seen.id,
            index,
            json!({ "not": 7 }),
            422,
            ErrorCode::ValidationFailed,
        ),
    ];
    for (detection, face, body, status, code) in cases {
        let response = app.feedback(&user, detection, face, body.clone()).await;
        assert_eq!(response.status(), status, "{detection}/{face} {body}");
        assert_eq!(error_code(response).await, code, "{detection}/{face} {body}");
    }
    // Someone else's detection is not theirs to correct.
    let refused = app
        .feedback(&other, &seen.id, index, json!({ "not": theirs.id }))
        .await;
    assert_eq!(refused.status(), 404);

    // Fields the schema does not name are ignored.
    let correction = app
        .correct(
            &user,
            &seen.id,
            index,
            json!({ "not": subject.id, "comment": "the neighbour" }),
        )
        .await;
    assert_eq!(correction.kind, FeedbackKind::Not);
    assert_eq!(
        app.undo(&other, &correction.id).await.status(),
        404,
        "not theirs to undo"
    );
    assert_eq!(
        app.undo(&user, &enrolled.id).await.status(),
        404,
        "an enrolment from an upload is not a correction"
    );
    assert_eq!(app.undo(&user, "nonsense").await.status(), 404);
    assert_eq!(app.undo(&user, &correction.id).await.status(), 204);
}
