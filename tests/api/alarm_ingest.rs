//! `POST /api/v1/alarms`: alarms raised by edge agents, received, stored and
//! fanned out like the server's own; bad input refused with the field named
//! and nothing stored; retries with one Idempotency-Key raise one alarm.

use chrono::{Duration as Span, SecondsFormat, Utc};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use vigil_wire::alarms::AlarmView;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{
    agent_face, body, error_code, next_of, plain_jpeg, quiet, send, spawn_app, test_asset, TestApp, User,
};

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn form(fields: &[(&str, String)], image: Option<Vec<u8>>) -> Form {
    let mut form = Form::new();
    if let Some(image) = image {
        form = form.part("image", Part::bytes(image).file_name("frame.png"));
    }
    for (name, value) in fields {
        form = form.text(name.to_string(), value.clone());
    }
    form
}

async fn post_alarm(app: &TestApp, key: &str, form: Form, idempotency: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/api/v1/alarms"))
        .header("X-API-Key", key)
        .multipart(form);
    if let Some(k) = idempotency {
        request = request.header("Idempotency-Key", k);
    }
    request.send().await.unwrap()
}

async fn alarm_key(app: &TestApp, token: &str) -> String {
    app.create_scoped_key(token, "door-pi", "alarms:write").await.key
}

#[tokio::test]
async fn an_agents_alarm_is_stored_pushed_and_raised_once_per_key() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = alarm_key(&app, &user.access_token).await;
    let (mut ws, _) = quiet(&app.api, &format!("?token={}", user.access_token)).await;
    send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
    next_of(&mut ws, "subscribed").await;

    let taken = (Utc::now() - Span::minutes(3)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let fields = |message: &str| {
        vec![
            ("date", taken.clone()),
            ("source", "door-pi/cam1".to_owned()),
            ("message", message.to_owned()),
            ("faces", json!([agent_face(180.0, 1.0)]).to_string()),
        ]
    };
    let first = post_alarm(
        &app,
        &key,
        form(&fields("1 face at the door"), Some(test_asset("astronaut.png"))),
        Some("a-1"),
    )
    .await;
    assert_eq!(first.status(), 201);
    // The agent's key is told what was stored, and nothing it could read.
    let receipt: Value = body(first).await;
    assert!(
        receipt.get("identities").is_none() && receipt.get("img").is_none(),
        "{receipt}"
    );
    assert!(receipt.get("message").is_none(), "{receipt}");
    let id = receipt["id"].as_str().unwrap().to_owned();
    let alarm: AlarmView = app
        .fetch_as(&format!("/api/v1/alarms/{id}"), &user.access_token)
        .await;
    assert_eq!(receipt["detection_id"], alarm.detection_id.as_str());
    assert_eq!(alarm.message, "1 face at the door");
    assert_eq!(alarm.source, "door-pi/cam1");
    assert_eq!(alarm.face_count, 1);
    assert_eq!(
        alarm.date.to_rfc3339_opts(SecondsFormat::Millis, true),
        taken,
        "the moment of capture"
    );
    let pushed = next_of(&mut ws, "alarm").await;
    assert_eq!(crate::helpers::alarm(pushed).id, alarm.id);

    // A retry after a lost answer: the same alarm, nothing new.
    let again = post_alarm(
        &app,
        &key,
        form(&fields("1 face at the door"), Some(test_asset("astronaut.png"))),
        Some("a-1"),
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(body::<Value>(again).await["id"], alarm.id.as_str());
    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms", &user.access_token).await;
    assert_eq!(alarms.items.len(), 1);
    let me: User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.api_requests_used, 1);

    // Without faces the server finds them; without a message it writes one.
    let found = post_alarm(
        &app,
        &key,
        form(
            &[("date", now()), ("source", "door-pi/cam2".into())],
            Some(test_asset("astronaut.png")),
        ),
        None,
    )
    .await;
    assert_eq!(found.status(), 201);
    let found = body::<Value>(found).await["id"].as_str().unwrap().to_owned();
    let found: AlarmView = app
        .fetch_as(&format!("/api/v1/alarms/{found}"), &user.access_token)
        .await;
    assert_eq!(found.face_count, 1);
    assert_eq!(found.message, "1 face detected on door-pi/cam2");

    // The agent's key reads nothing and uploads nothing.
    let read = app
        .http
        .get(app.url("/api/v1/alarms"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(read).await, ErrorCode::ScopeForbidden);
}

#[tokio::test]
async fn bad_alarms_are_refused_with_the_field_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = alarm_key(&app, &user.access_token).await;
    let good = || vec![("date", now()), ("source", "door-pi/cam1".to_owned())];
    let image = || Some(test_asset("astronaut.png"));

    let missing = post_alarm(&app, &key, form(&good(), None), None).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(error_code(missing).await, ErrorCode::BadRequest);

    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![
                ("date", (Utc::now() + Span::hours(2)).to_rfc3339()),
                ("source", "x".into()),
            ],
            "date",
        ),
        (vec![("date", "yesterday".into()), ("source", "x".into())], "date"),
        (vec![("source", "x".into())], "date"),
        (vec![("date", now())], "source"),
        (
            [
                good(),
                vec![("faces", json!([agent_face(450.0, 1.0)]).to_string())],
            ]
            .concat(),
            "faces[0].box",
        ),
        (
            [good(), vec![("faces", "[{\"score\": 2}]".into())]].concat(),
            "faces",
        ),
        ([good(), vec![("message", "x".repeat(300))]].concat(), "message"),
    ];
    for (fields, field) in cases {
        let refused = post_alarm(&app, &key, form(&fields, image()), None).await;
        assert_eq!(refused.status(), 422, "{field}");
        let answer: Value = body(refused).await;
        assert_eq!(answer["error"]["code"], "validation_failed", "{answer}");
        let named: Vec<&str> = answer["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(named.contains(&field), "{field} not in {answer}");
    }
    let not_image = post_alarm(&app, &key, form(&good(), Some(b"hello".to_vec())), None).await;
    assert_eq!(error_code(not_image).await, ErrorCode::InvalidImage);
    let small = post_alarm(
        &app,
        &key,
        form(
            &[
                good(),
                vec![("faces", json!([agent_face(10.0, 1.0)]).to_string())],
            ]
            .concat(),
            Some(plain_jpeg(64, 64)),
        ),
        None,
    )
    .await;
    assert_eq!(small.status(), 422, "boxes outside a small image");

    // A telemetry key has no business here.
    let telemetry = app
        .create_scoped_key(&user.access_token, "phone", "telemetry")
        .await
        .key;
    let refused = post_alarm(&app, &telemetry, form(&good(), image()), None).await;
    assert_eq!(error_code(refused).await, ErrorCode::ScopeForbidden);

    let alarms: PageOf<AlarmView> = app.fetch_as("/api/v1/alarms", &user.access_token).await;
    assert!(alarms.items.is_empty(), "nothing stored: {:?}", alarms.items);
    let me: User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.api_requests_used, 0);
}

#[tokio::test]
async fn an_agents_alarm_appears_on_the_dashboards_wall_with_the_agents_name() {
    use crate::browser::Browser;
    use crate::dashboard::{log_in, open, SLOW};

    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = alarm_key(&app, &user.access_token).await;
    let page = Browser::start("agent-alarm").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open(&page, "#/wall").await;
    page.wait_for(
        "the live connection",
        SLOW,
        "return document.querySelector('#conn')?.dataset.state === 'live'",
    )
    .await;
    let sent = post_alarm(
        &app,
        &key,
        form(
            &[
                ("date", now()),
                ("source", "door-pi/cam1".into()),
                ("message", "1 face at the door".into()),
                ("faces", json!([agent_face(180.0, 1.0)]).to_string()),
            ],
            Some(test_asset("astronaut.png")),
        ),
        None,
    )
    .await;
    let alarm = body::<Value>(sent).await["id"].as_str().unwrap().to_owned();
    let card = format!("li.alarm[data-alarm-id='{alarm}']");
    page.wait_for(
        "the agent's alarm card",
        SLOW,
        &format!("return !!document.querySelector(\"{card}\")"),
    )
    .await;
    let text = page.text(&card).await;
    assert!(text.contains("door-pi/cam1"), "{text}");
    assert!(text.contains("1 face at the door"), "{text}");
    page.screenshot("agent-alarm-on-the-wall").await;
    page.close().await;
}
