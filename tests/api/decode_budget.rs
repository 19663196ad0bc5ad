//! Issue 21, point 3: the pixels decoded at once are bounded. Uploads past
//! `--decode-budget-mpx` wait their turn for `--decode-wait-secs`, then get
//! 503 `busy` with `Retry-After`, and the budget comes back when an image
//! is done with.

use vigil_wire::ErrorCode;

use crate::helpers::{error_code, plain_jpeg, spawn_app_with, AppOptions, TestApp, TestUser, Upload};

/// A 1600×1200 JPEG: 1.92 megapixels, more than a 1-megapixel budget, so
/// each takes all of it.
fn larger_than_the_budget() -> Vec<u8> {
    plain_jpeg(1600, 1200)
}

async fn upload_together(app: &TestApp, user: &TestUser, count: usize) -> Vec<reqwest::Response> {
    let image = larger_than_the_budget();
    let uploads = (0..count).map(|_| app.try_upload(user, Upload::body(image.clone(), "image/jpeg")));
    futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .map(|r| r.expect("an answer"))
        .collect()
}

#[tokio::test]
async fn past_the_budget_uploads_are_refused_busy_with_retry_after_and_the_budget_comes_back() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--decode-budget-mpx", 1)
            .flag("--decode-wait-secs", 0),
    )
    .await;
    let user = app.create_user().await;
    let mut created = 0;
    let mut busy = 0;
    for response in upload_together(&app, &user, 8).await {
        match response.status().as_u16() {
            201 => created += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "2");
                assert_eq!(error_code(response).await, ErrorCode::Busy);
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(created >= 1 && busy >= 1, "{created} created, {busy} busy");
    // Nothing is held once the uploads are answered.
    let again = upload_together(&app, &user, 1).await.remove(0);
    assert_eq!(again.status(), 201);
}

#[tokio::test]
async fn within_the_wait_uploads_take_turns_and_all_succeed() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--decode-budget-mpx", 1)
            .flag("--decode-wait-secs", 120),
    )
    .await;
    let user = app.create_user().await;
    for response in upload_together(&app, &user, 4).await {
        assert_eq!(response.status(), 201);
    }
}
