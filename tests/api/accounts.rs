//! Closed and demoted accounts lose their access at once, on every
//! instance: access tokens (which nothing stores), refresh tokens and API
//! keys alike.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, oid::ObjectId, Document};
use serde_json::json;
use vigil_wire::ErrorCode;

use crate::helpers::{
    database_uri, error_code, spawn_app, spawn_app_with, vigil_command, Api, AppOptions, TestApp,
};

pub(crate) fn vigil_user(app: &TestApp, command: &str, name: &str) {
    let output = vigil_command()
        .args(["user", "--database", &app.database_name, command, name])
        .env("MONGODB_URI", database_uri())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "vigil user {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The status of `GET /api/v1/users/me` with a bearer token.
async fn me_status(api: &Api, token: &str) -> u16 {
    api.get_as("/api/v1/users/me", token).await.status().as_u16()
}

/// The status of `GET /api/v1/users/me` with an API key.
async fn me_status_with_key(api: &Api, key: &str) -> u16 {
    let response = api
        .http
        .get(api.url("/api/v1/users/me"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Waits (2 s at most: a change stream's delay) until `check` holds.
async fn within_moments<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deleted_account_loses_tokens_and_keys_on_every_instance_and_mints_nothing() {
    let a = spawn_app().await;
    let b = spawn_app_with(AppOptions::default().database(&a.database_name)).await;
    let _admin = a.create_user().await;
    let user = a.create_user().await;
    let key = a.create_api_key(&user.access_token, "camera").await.key;
    for api in [&a.api, &b.api] {
        assert_eq!(me_status(api, &user.access_token).await, 200);
        assert_eq!(me_status_with_key(api, &key).await, 200);
    }

    vigil_user(&a, "delete", &user.user_name);

    for api in [&a.api, &b.api] {
        within_moments("the access token refused", || async {
            me_status(api, &user.access_token).await == 401
        })
        .await;
        let response = api.get_as("/api/v1/users/me", &user.access_token).await;
        assert_eq!(error_code(response).await, ErrorCode::InvalidToken);
        assert_eq!(me_status_with_key(api, &key).await, 401, "the API key is refused");
        let minted = api
            .http
            .post(api.url("/api/v1/api-keys"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "name": "after" }))
            .send()
            .await
            .unwrap();
        assert_eq!(minted.status(), 401, "no key for a closed account");
        let refreshed = api
            .post_json(
                "/api/v1/auth/refresh",
                &json!({ "refresh_token": &user.refresh_token }),
            )
            .await;
        assert_eq!(refreshed.status(), 401, "the refresh token is gone");
    }
    let id = ObjectId::parse_str(&user.id).unwrap();
    for collection in ["users", "api_keys", "refresh_tokens"] {
        let field = if collection == "users" { "_id" } else { "user_id" };
        let left =
            a.db.collection::<Document>(collection)
                .count_documents(doc! { field: id })
                .await
                .unwrap();
        assert_eq!(left, 0, "{collection} still holds the account's rows");
    }
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_while_its_token_is_still_valid() {
    let a = spawn_app().await;
    let b = spawn_app_with(AppOptions::default().database(&a.database_name)).await;
    let admin = a.create_user().await;
    let user = a.create_user().await;
    let set_quota = |api: &Api, quota: u32| {
        let request = api
            .http
            .patch(api.url(&format!("/api/v1/users/{}/quota", user.id)))
            .bearer_auth(&admin.access_token)
            .json(&json!({ "api_request_quota": quota }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(set_quota(&a.api, 7).await, 200);
    assert_eq!(set_quota(&b.api, 8).await, 200);

    vigil_user(&a, "demote", &admin.user_name);

    for api in [&a.api, &b.api] {
        within_moments("admin rights gone", || async { set_quota(api, 9).await == 403 }).await;
        let refused = api
            .http
            .patch(api.url(&format!("/api/v1/users/{}/quota", user.id)))
            .bearer_auth(&admin.access_token)
            .json(&json!({ "api_request_quota": 10 }))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(refused).await, ErrorCode::Forbidden);
        assert_eq!(me_status(api, &admin.access_token).await, 200, "still a user");
    }
    // Promoted again, on the same token.
    vigil_user(&a, "promote", &admin.user_name);
    within_moments("admin rights back", || async {
        set_quota(&b.api, 11).await == 200
    })
    .await;
}
