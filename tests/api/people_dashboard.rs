//! The dashboard's People view and the names on detection pages, in a real
//! headless Chromium against the real server and models. Screenshots land in
//! target/screenshots/.

use std::path::PathBuf;

use serde_json::json;
use vigil_wire::detections::DetectionView;
use vigil_wire::people::SubjectView;

use crate::browser::Browser;
use crate::dashboard::{file_with, log_in, open, SLOW};
use crate::helpers::{spawn_app_with, AppOptions, TestApp, TestUser};
use crate::people::identities;

fn photo(person: usize, index: usize) -> PathBuf {
    identities()[person].1[index].clone()
}

async fn upload(app: &TestApp, user: &TestUser, path: &PathBuf) -> DetectionView {
    app.detect(user, std::fs::read(path).unwrap()).await
}

async fn subjects(app: &TestApp, user: &TestUser) -> Vec<SubjectView> {
    let page: vigil_wire::paging::PageOf<SubjectView> = app
        .get_as("/api/v1/subjects", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    page.items
}

#[tokio::test]
async fn a_person_enrols_names_renames_and_deletes_people_in_the_dashboard() {
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let files = tempfile::tempdir().unwrap();
    let page = Browser::start("people").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open(&page, "#/people").await;
    page.wait_for(
        "the empty list",
        SLOW,
        "return document.querySelector('.people-view [role=status]').textContent.startsWith('Nobody')",
    )
    .await;

    for name in ["Margaret", "Visitor"] {
        page.fill("#new-subject", name).await;
        page.click(".new-subject button[type=submit]").await;
        page.wait_for(
            &format!("{name}'s card"),
            SLOW,
            &format!(
                "return [...document.querySelectorAll('.person h2')].some(e => e.textContent === {name:?})"
            ),
        )
        .await;
    }
    // The same name in other case is refused with words.
    page.fill("#new-subject", "margaret").await;
    page.click(".new-subject button[type=submit]").await;
    page.wait_for(
        "the name-taken message",
        SLOW,
        "return !document.querySelector('.new-subject .error').hidden",
    )
    .await;
    assert!(page.text(".new-subject .error").await.contains("already have"));

    let by_name = |name: &str, all: &[SubjectView]| all.iter().find(|s| s.name == name).unwrap().id.clone();
    let all = subjects(&app, &user).await;
    let (margaret, visitor) = (by_name("Margaret", &all), by_name("Visitor", &all));

    // Enrol by choosing a photo on her card.
    let first = file_with(files.path(), "margaret.jpg", &std::fs::read(photo(2, 0)).unwrap());
    page.find(&format!("#enrol-{margaret}"))
        .await
        .send_keys(&first)
        .await
        .unwrap();
    page.wait_for(
        "Margaret's face count",
        SLOW,
        &format!("return document.querySelector('[data-subject-id=\"{margaret}\"] .face-count')?.textContent === '1 face'"),
    )
    .await;
    page.wait_for(
        "her thumbnail",
        SLOW,
        &format!("const i = document.querySelector('[data-subject-id=\"{margaret}\"] img.thumb'); return i && i.complete && i.naturalWidth === 150"),
    )
    .await;
    // A photo without a face is refused with words, on her card.
    let wall = file_with(files.path(), "wall.jpg", &crate::helpers::plain_jpeg(320, 240));
    page.find(&format!("#enrol-{margaret}"))
        .await
        .send_keys(&wall)
        .await
        .unwrap();
    page.wait_for(
        "the no-face message",
        SLOW,
        &format!("return !document.querySelector('[data-subject-id=\"{margaret}\"] .card-error').hidden"),
    )
    .await;
    assert!(page
        .text(&format!("[data-subject-id=\"{margaret}\"] .card-error"))
        .await
        .contains("No face"));
    page.screenshot("01-people").await;

    // Her next photo is named on its detection page; a stranger is unknown.
    let seen = upload(&app, &user, &photo(2, 5)).await;
    open(&page, &format!("#/detections/{}", seen.id)).await;
    page.wait_for(
        "the name in the faces table",
        SLOW,
        "return document.querySelector('.face-row .who-name')?.textContent === 'Margaret'",
    )
    .await;
    page.wait_for("the name on the box", SLOW, "return [...document.querySelectorAll('.boxes .face.known text')].some(t => t.textContent.includes('Margaret'))").await;
    page.screenshot("02-named").await;

    let stranger = upload(&app, &user, &photo(4, 0)).await;
    open(&page, &format!("#/detections/{}", stranger.id)).await;
    page.wait_for(
        "Unknown in the faces table",
        SLOW,
        "return document.querySelector('.face-row .who-name')?.textContent === 'Unknown'",
    )
    .await;
    // "This is…": enrol the stranger's face as Visitor.
    page.js(
        "const s = document.querySelector('.face-row select.this-is'); s.value = arguments[0]; s.dispatchEvent(new Event('change'))",
        vec![json!(visitor)],
    )
    .await;
    page.click(".face-row .enrol-face").await;
    page.wait_for(
        "the enrolment outcome",
        SLOW,
        "return document.querySelector('.enrol-outcome').textContent.includes('enrolled as Visitor')",
    )
    .await;
    page.screenshot("03-this-is").await;
    let all = subjects(&app, &user).await;
    assert_eq!(all.iter().find(|s| s.id == visitor).unwrap().face_count, 1);

    // Rename in place, then delete with a second click.
    open(&page, "#/people").await;
    page.click(&format!("[data-subject-id=\"{margaret}\"] .rename-button"))
        .await;
    page.fill(
        &format!("[data-subject-id=\"{margaret}\"] input.rename"),
        "Maggie",
    )
    .await;
    page.click(&format!("[data-subject-id=\"{margaret}\"] .rename-form button"))
        .await;
    page.wait_for(
        "the new name",
        SLOW,
        &format!(
            "return document.querySelector('[data-subject-id=\"{margaret}\"] h2')?.textContent === 'Maggie'"
        ),
    )
    .await;
    let delete = format!("[data-subject-id=\"{visitor}\"] .delete");
    page.click(&delete).await;
    assert!(page.text(&delete).await.starts_with("Really delete"));
    page.click(&delete).await;
    page.wait_for(
        "the card to go",
        SLOW,
        &format!("return !document.querySelector('[data-subject-id=\"{visitor}\"]')"),
    )
    .await;
    page.screenshot("04-renamed-and-deleted").await;
    let all = subjects(&app, &user).await;
    assert_eq!(
        all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Maggie"]
    );
    page.close().await;
}
