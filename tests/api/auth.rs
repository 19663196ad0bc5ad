use std::time::Duration;

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use vigil_wire::auth::TokenPair;
use vigil_wire::{ErrorBody, ErrorCode};

use crate::helpers::{
    body, database_uri, error_code, spawn_app, spawn_app_with, vigil_command, AppOptions, Role, User,
    TEST_SECRET,
};

#[tokio::test]
async fn register_creates_the_first_user_as_admin_without_secrets() {
    let app = spawn_app().await;
    let response = app
        .register("Alice", "Alice@Example.ORG", "correct horse battery")
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "no secrets: {text}"
    );
    let user: User = serde_json::from_str(&text).unwrap();
    assert_eq!(user.user_name, "Alice");
    assert_eq!(user.email, "alice@example.org", "email stored lower-cased");
    assert_eq!(user.role, Role::Admin, "first user is the admin");
    assert_eq!(user.api_request_quota, 100);
    assert_eq!(user.api_requests_used, 0);

    let second: User = body(
        app.register("bob", "bob@example.org", "correct horse battery")
            .await,
    )
    .await;
    assert_eq!(second.role, Role::User);
}

#[tokio::test]
async fn duplicates_are_conflicts_with_codes() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("carol", "carol@example.org", "password123")
            .await
            .status(),
        201
    );
    let same_name = app.register("CAROL", "other@example.org", "password123").await;
    assert_eq!(same_name.status(), 409);
    assert_eq!(error_code(same_name).await, ErrorCode::UserNameTaken);
    let same_email = app.register("carol2", "Carol@example.org", "password123").await;
    assert_eq!(same_email.status(), 409);
    assert_eq!(error_code(same_email).await, ErrorCode::EmailTaken);
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_the_error_body() {
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    for (name, email, password) in [
        ("ab", "a@example.org", "password123"),
        ("has space", "a@example.org", "password123"),
        ("dave", "not-an-email", "password123"),
        ("dave", "dave@example.org", "short"),
        ("dave", "dave@example.org", &"x".repeat(129)),
    ] {
        let response = app.register(name, email, password).await;
        assert_eq!(response.status(), 422, "{name} {email} {password}");
        assert_eq!(error_code(response).await, ErrorCode::ValidationFailed);
    }
    let missing = app
        .post_json("/api/v1/auth/register", &json!({ "user_name": "dave" }))
        .await;
    assert_eq!(missing.status(), 422);
    let garbage = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(error_code(garbage).await, ErrorCode::InvalidJson);
    let wrong_type = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
}

#[tokio::test]
async fn login_by_name_or_email_and_use_the_token() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let by_email = app.login(&user.email.to_uppercase(), &user.password).await;
    assert_eq!(by_email.status(), 200);
    let tokens: TokenPair = body(by_email).await;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);

    let me: User = app.fetch_as("/api/v1/users/me", &tokens.access_token).await;
    assert_eq!(me.id, user.id);
    assert_eq!(me.api_request_quota, 100);
    assert_eq!(me.api_requests_used, 0);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let wrong = app.login(&user.user_name, "wrong password!").await;
    let unknown = app.login("nobody-here", "wrong password!").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    // The whole body, byte for byte the same JSON.
    let wrong: Value = body(wrong).await;
    let unknown: Value = body(unknown).await;
    assert_eq!(wrong, unknown);
    let wrong: ErrorBody = serde_json::from_value(wrong).unwrap();
    assert_eq!(wrong.error.code, ErrorCode::InvalidCredentials);
}

#[tokio::test]
async fn protected_routes_need_credentials() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/users/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, ErrorCode::Unauthenticated);
    let basic = app
        .http
        .get(app.url("/api/v1/users/me"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.create_user().await;

    let first = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(first.status(), 200);
    let rotated: TokenPair = body(first).await;
    let next = rotated.refresh_token;
    assert_ne!(next, user.refresh_token);
    assert_eq!(
        app.get_as("/api/v1/users/me", &rotated.access_token)
            .await
            .status(),
        200
    );

    // The old token again: theft assumed, the whole family dies.
    let reused = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(reused.status(), 401);
    assert_eq!(error_code(reused).await, ErrorCode::InvalidToken);
    let after = app
        .post_json("/api/v1/auth/refresh", &json!({ "refresh_token": next }))
        .await;
    assert_eq!(
        after.status(),
        401,
        "the rotated token was revoked with its family"
    );

    let garbage = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": "vrt_nonsense" }),
        )
        .await;
    assert_eq!(garbage.status(), 401);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let out = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(out.status(), 204);
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(refresh.status(), 401);
    let again = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(again.status(), 204, "logout is idempotent");
}

fn sign(claims: &Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_garbage_tokens_are_401() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    let user = app.create_user().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, role: &str| json!({ "sub": user.id, "iat": now - 10, "exp": exp, "jti": "x", "role": role });

    let valid = sign(
        &claims(now + 600, "user"),
        TEST_SECRET.as_bytes(),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(
        app.get_as("/api/v1/users/me", &valid).await.status(),
        200,
        "a correctly signed token works"
    );

    // Signature of another payload: claim admin with the user's signature.
    let (_, rest) = user.access_token.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let header = user.access_token.split('.').next().unwrap();
    let admin_payload = b64.encode(claims(now + 600, "admin").to_string());
    let tampered = format!("{header}.{admin_payload}.{signature}");

    let none_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!(
        "{none_header}.{}.",
        b64.encode(claims(now + 600, "admin").to_string())
    );
    let expired = sign(
        &claims(now - 1, "user"),
        TEST_SECRET.as_bytes(),
        jsonwebtoken::Algorithm::HS256,
    );
    let other_secret = sign(
        &claims(now + 600, "user"),
        b"some-other-secret-of-enough-length!!",
        jsonwebtoken::Algorithm::HS256,
    );
    let other_alg = sign(
        &claims(now + 600, "user"),
        TEST_SECRET.as_bytes(),
        jsonwebtoken::Algorithm::HS512,
    );

    for (what, token) in [
        ("tampered payload", tampered.as_str()),
        ("alg none", &alg_none),
        ("expired", &expired),
        ("other secret", &other_secret),
        ("other algorithm", &other_alg),
        ("garbage", "garbage"),
        ("empty segments", ".."),
    ] {
        let response = app.get_as("/api/v1/users/me", token).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(error_code(response).await, ErrorCode::InvalidToken, "{what}");
    }
}

#[tokio::test]
async fn api_keys_create_use_list_and_revoke() {
    let app = spawn_app().await;
    let owner = app.create_user().await;
    let other = app.create_user().await;

    let created = app.create_api_key(&owner.access_token, "uploader").await;
    assert_eq!(created.name, "uploader");
    let key = created.key;
    let id = created.id;
    assert!(key.starts_with(&created.prefix));

    let me: User = body(
        app.http
            .get(app.url("/api/v1/users/me"))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me.id, owner.id, "the key acts as its owner");

    let listed = app
        .get_as("/api/v1/api-keys", &owner.access_token)
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(&id) && listed.contains("uploader"));
    assert!(
        !listed.contains(&key) && !listed.contains("\"key\""),
        "no key material in lists: {listed}"
    );
    let stored = app
        .db
        .collection::<Document>("api_keys")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.to_string().contains(&key), "stored as a digest");

    let theirs = app
        .delete_as(&format!("/api/v1/api-keys/{id}"), &other.access_token)
        .await;
    assert_eq!(theirs.status(), 404, "someone else's key looks absent");

    let revoke = app
        .delete_as(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(revoke.status(), 204);
    let after = app
        .http
        .get(app.url("/api/v1/users/me"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    assert_eq!(error_code(after).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn rapid_requests_are_rate_limited_with_retry_after() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let responses =
        futures_util::future::join_all((0..40).map(|_| app.get_as("/api/v1/users/me", &user.access_token)))
            .await;
    let limited: Vec<_> = responses.into_iter().filter(|r| r.status() == 429).collect();
    assert!(!limited.is_empty(), "40 requests at once exceed 10/s");
    assert!(
        limited.len() <= 30,
        "the burst of 10 passes, got {} refused",
        limited.len()
    );
    let first = limited.into_iter().next().unwrap();
    let retry_after: u64 = first.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(error_code(first).await, ErrorCode::RateLimited);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.get_as("/api/v1/users/me", &user.access_token).await.status(),
        200,
        "the bucket refills"
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_then_forgiven() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--login-max-failures", 3)
            .flag("--login-failure-window-secs", 2),
    )
    .await;
    let user = app.create_user().await;
    for _ in 0..3 {
        assert_eq!(app.login(&user.user_name, "wrong password!").await.status(), 401);
    }
    let blocked = app.login(&user.user_name, &user.password).await;
    assert_eq!(blocked.status(), 429, "even the right password waits");
    assert!(blocked.headers().contains_key("retry-after"));
    assert_eq!(error_code(blocked).await, ErrorCode::LoginThrottled);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.login(&user.user_name, &user.password).await.status(),
        200,
        "not locked forever"
    );
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_with_owasp_parameters() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let stored = app
        .db
        .collection::<Document>("users")
        .find_one(doc! { "user_name": &user.user_name })
        .await
        .unwrap()
        .unwrap();
    let hash = stored.get_str("password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(&user.password));
}

#[tokio::test]
async fn only_admins_set_quotas() {
    let app = spawn_app().await;
    let admin = app.create_user().await; // first user: admin
    let user = app.create_user().await;
    let set = |token: String, id: String, quota: u32| {
        let app = &app;
        async move {
            app.http
                .patch(app.url(&format!("/api/v1/users/{id}/quota")))
                .bearer_auth(token)
                .json(&json!({ "api_request_quota": quota }))
                .send()
                .await
                .unwrap()
        }
    };
    let refused = set(user.access_token.clone(), user.id.clone(), 5000).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, ErrorCode::Forbidden);
    let done = set(admin.access_token.clone(), user.id.clone(), 5).await;
    assert_eq!(done.status(), 200);
    let me: User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.api_request_quota, 5);
    let missing = set(admin.access_token.clone(), "0123456789abcdef01234567".into(), 5).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn user_promote_command_makes_an_admin() {
    let app = spawn_app().await;
    let _admin = app.create_user().await;
    let user = app.create_user().await;
    let output = vigil_command()
        .args([
            "user",
            "--database",
            &app.database_name,
            "promote",
            &user.user_name.to_uppercase(),
        ])
        .env("MONGODB_URI", database_uri())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = app
        .db
        .collection::<Document>("users")
        .find_one(doc! { "user_name": &user.user_name })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_str("role").unwrap(), "admin");

    let unknown = vigil_command()
        .args([
            "user",
            "--database",
            &app.database_name,
            "promote",
            "no-such-user",
        ])
        .env("MONGODB_URI", database_uri())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}
