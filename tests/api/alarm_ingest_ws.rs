//! `alarm` over the WebSocket: an edge agent's session (an API key of scope
//! `alarms:write`) sends alarms with a small image inline; they are checked,
//! stored and fanned out as `POST /api/v1/alarms` does, answered with `ack`,
//! raised once per key; bad ones are refused with the code HTTP gives and
//! nothing is stored; the agent's session may do nothing else.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{Duration as Span, SecondsFormat, Utc};
use serde_json::{json, Value};
use vigil_wire::alarms::AlarmView;
use vigil_wire::hub::{ServerMessage, MAX_INLINE_IMAGE_BYTES};
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorCode;

use crate::helpers::{
    agent_face, alarm, body, connect, expect_message, hello, next, next_of, quiet, send, spawn_app,
    spawn_app_with, sync, test_asset, ws_error, AppOptions, TestApp, User, Ws,
};

/// The astronaut portrait (512×512) scaled to 128×128, as a JPEG of a few KiB.
fn small_portrait() -> Vec<u8> {
    let full = image::load_from_memory(&test_asset("astronaut.png")).unwrap();
    let small = full
        .resize_exact(128, 128, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .unwrap();
    let jpeg = out.into_inner();
    assert!(jpeg.len() <= MAX_INLINE_IMAGE_BYTES, "{} bytes", jpeg.len());
    jpeg
}

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - Span::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A good `alarm` message with `id` and `key`.
fn alarm_message(id: &str, key: &str, image: &[u8]) -> Value {
    json!({
        "type": "alarm", "id": id, "key": key, "date": minutes_ago(3),
        "source": "door-pi/cam1", "message": "1 face at the door",
        "faces": [agent_face(45.0, 0.25)], "image": BASE64.encode(image),
    })
}

async fn alarm_key(app: &TestApp, token: &str) -> String {
    app.create_scoped_key(token, "door-pi", "alarms:write").await.key
}

/// The answer to an `alarm`: its `ack`'s alarm id, echoing `id`.
async fn acked(ws: &mut Ws, id: &str) -> String {
    let (answered, alarm_id) = expect_message!(
        next_of_answer(ws).await,
        ServerMessage::Ack { id, alarm_id } => (id, alarm_id)
    );
    assert_eq!(answered, json!(id));
    alarm_id
}

/// The next `ack` or `error`, skipping broadcasts.
async fn next_of_answer(ws: &mut Ws) -> ServerMessage {
    loop {
        let message = next(ws).await;
        if matches!(message, ServerMessage::Ack { .. } | ServerMessage::Error { .. }) {
            return message;
        }
    }
}

async fn stored(app: &TestApp, token: &str) -> Vec<AlarmView> {
    app.fetch_as::<PageOf<AlarmView>>("/api/v1/alarms", token)
        .await
        .items
}

#[tokio::test]
async fn an_agents_alarm_over_the_websocket_is_acked_pushed_and_raised_once_per_key() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let key = alarm_key(&app, &user.access_token).await;
    let image = small_portrait();
    let (mut owner, _) = quiet(&app.api, &format!("?token={}", user.access_token)).await;
    send(&mut owner, json!({"type": "subscribe", "topics": ["alarms"]})).await;
    next_of(&mut owner, "subscribed").await;

    // The agent's session: authenticated, nothing pushed (not even the clock).
    let mut agent = connect(&app.api, &format!("?token={key}&client_id=door-pi")).await;
    let greeted = hello(next(&mut agent).await);
    assert!(greeted.authenticated);
    assert_eq!(greeted.user_id.as_deref(), Some(user.id.as_str()));
    assert!(greeted.topics.is_empty(), "{:?}", greeted.topics);

    let sent = alarm_message("a-1", "k-1", &image);
    assert!(sent.to_string().len() < 16 * 1024);
    send(&mut agent, sent.clone()).await;
    let alarm_id = acked(&mut agent, "a-1").await;
    let pushed = alarm(next_of(&mut owner, "alarm").await);
    assert_eq!(pushed.id, alarm_id);
    assert_eq!(pushed.source, "door-pi/cam1");
    assert_eq!(pushed.message, "1 face at the door");
    assert_eq!(pushed.face_count, 1);
    assert_eq!(
        pushed.date.to_rfc3339_opts(SecondsFormat::Millis, true),
        sent["date"].as_str().unwrap(),
        "the moment of capture"
    );

    // The same key again (a retry after a lost ack): the same alarm, nothing new.
    let mut again = alarm_message("a-2", "k-1", &image);
    again["date"] = sent["date"].clone();
    send(&mut agent, again).await;
    assert_eq!(acked(&mut agent, "a-2").await, alarm_id);
    // Over HTTP too: one namespace of keys per account.
    let retried = app
        .http
        .post(app.url("/api/v1/alarms"))
        .header("X-API-Key", &key)
        .header("Idempotency-Key", "k-1")
        .multipart(
            reqwest::multipart::Form::new()
                .part(
                    "image",
                    reqwest::multipart::Part::bytes(image.clone()).file_name("f.jpg"),
                )
                .text("date", minutes_ago(3))
                .text("source", "door-pi/cam1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(body::<serde_json::Value>(retried).await["id"], alarm_id.as_str());
    let alarms = stored(&app, &user.access_token).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].id, alarm_id);
    let me: User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.api_requests_used, 1);
    assert!(sync(&mut owner).await.is_empty(), "one alarm pushed, once");

    // The agent's key sends alarms and pings, nothing else.
    send(
        &mut agent,
        json!({"type": "subscribe", "topics": ["alarms"], "id": "s"}),
    )
    .await;
    let refused = ws_error(next(&mut agent).await);
    assert_eq!(refused.code, ErrorCode::ScopeForbidden, "{}", refused.message);
    assert_eq!(refused.id, json!("s"));
    for other in [
        json!({"type": "subscribe", "topics": ["jobs"]}),
        json!({"type": "fib", "id": 1, "n": 10}),
        json!({"type": "value", "value": 3}),
        json!({"type": "auth", "token": user.access_token}),
    ] {
        send(&mut agent, other.clone()).await;
        assert_eq!(
            ws_error(next(&mut agent).await).code,
            ErrorCode::ScopeForbidden,
            "{other}"
        );
    }
    send(&mut agent, json!({"type": "ping", "id": "p"})).await;
    assert_eq!(next(&mut agent).await, ServerMessage::Pong { id: json!("p") });

    // A full credential may send alarms too; its own session gets the push.
    send(&mut owner, alarm_message("o-1", "k-2", &image)).await;
    let (mut own_ack, mut own_push) = (None, None);
    while own_ack.is_none() || own_push.is_none() {
        match next(&mut owner).await {
            ServerMessage::Ack { id, alarm_id } if id == json!("o-1") => own_ack = Some(alarm_id),
            ServerMessage::Alarm(pushed) => own_push = Some(pushed.id),
            other => panic!("expected the ack and the alarm, got {other:?}"),
        }
    }
    assert_eq!(own_ack, own_push, "the ack and the push name one alarm");
    assert_ne!(own_ack.unwrap(), alarm_id);

    // An anonymous session may not; one that authenticates with the
    // agent's key may, and gets nothing pushed.
    let (mut anonymous, _) = quiet(&app.api, "").await;
    send(&mut anonymous, alarm_message("n-1", "k-3", &image)).await;
    let refused = ws_error(next(&mut anonymous).await);
    assert_eq!(refused.code, ErrorCode::Unauthenticated);
    assert_eq!(refused.id, json!("n-1"));
    send(&mut anonymous, json!({"type": "auth", "token": key})).await;
    let greeted = hello(next(&mut anonymous).await);
    assert!(greeted.authenticated && greeted.topics.is_empty(), "{greeted:?}");
    send(&mut anonymous, alarm_message("n-2", "k-3", &image)).await;
    let third = acked(&mut anonymous, "n-2").await;
    assert_eq!(alarm(next_of(&mut owner, "alarm").await).id, third);
    assert_eq!(stored(&app, &user.access_token).await.len(), 3);

    // A burst over the key's request rate (10 a second, as over HTTP):
    // the excess is refused with `rate_limited` and stores nothing.
    let burst_key = alarm_key(&app, &user.access_token).await;
    let mut burst = connect(&app.api, &format!("?token={burst_key}")).await;
    hello(next(&mut burst).await);
    for i in 0..14 {
        send(
            &mut burst,
            alarm_message(&format!("b-{i}"), &format!("b-{i}"), &image),
        )
        .await;
    }
    let (mut acks, mut limited) = (0, 0);
    for _ in 0..14 {
        match next(&mut burst).await {
            ServerMessage::Ack { .. } => acks += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("expected ack or rate_limited, got {other:?}"),
        }
    }
    assert!(limited >= 1 && acks >= 1, "{acks} acked, {limited} limited");
    assert_eq!(stored(&app, &user.access_token).await.len(), 3 + acks);
}

#[tokio::test]
async fn bad_alarms_over_the_websocket_are_refused_and_nothing_is_stored() {
    // A request rate that the many refusals below stay well within.
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let user = app.create_user().await;
    let key = alarm_key(&app, &user.access_token).await;
    let image = small_portrait();
    let mut agent = connect(&app.api, &format!("?token={key}")).await;
    hello(next(&mut agent).await);

    let good = |id: &str| alarm_message(id, &format!("key-{id}"), &image);
    let with = |id: &str, changes: Value| {
        let mut message = good(id);
        for (name, value) in changes.as_object().unwrap() {
            message[name] = value.clone();
        }
        message
    };
    let cases = [
        (
            with(
                "ahead",
                json!({"date": (Utc::now() + Span::hours(2)).to_rfc3339()}),
            ),
            ErrorCode::ValidationFailed,
            "`date`",
        ),
        (
            with("old", json!({"date": (Utc::now() - Span::days(8)).to_rfc3339()})),
            ErrorCode::ValidationFailed,
            "`date`",
        ),
        (
            with("words", json!({"date": "yesterday"})),
            ErrorCode::ValidationFailed,
            "`date`",
        ),
        (
            with("outside", json!({"faces": [agent_face(110.0, 0.25)]})),
            ErrorCode::ValidationFailed,
            "`faces[0].box`",
        ),
        (
            with("shape", json!({"faces": [{"score": 0.5}]})),
            ErrorCode::ValidationFailed,
            "`faces`",
        ),
        (
            with("b64", json!({"image": "not base64!"})),
            ErrorCode::ValidationFailed,
            "`image`",
        ),
        (
            with("nokey", json!({"key": null})),
            ErrorCode::ValidationFailed,
            "`key`",
        ),
        (
            with("badkey", json!({"key": "two words"})),
            ErrorCode::ValidationFailed,
            "`key`",
        ),
        (
            with("nosource", json!({"source": ""})),
            ErrorCode::ValidationFailed,
            "`source`",
        ),
        (
            with("long", json!({"message": "x".repeat(300)})),
            ErrorCode::ValidationFailed,
            "`message`",
        ),
        (
            with("hello", json!({"image": BASE64.encode(b"hello")})),
            ErrorCode::InvalidImage,
            "",
        ),
        (
            with(
                "big",
                json!({"image": BASE64.encode(vec![0xff; MAX_INLINE_IMAGE_BYTES + 1])}),
            ),
            ErrorCode::PayloadTooLarge,
            "POST /api/v1/alarms",
        ),
    ];
    for (message, code, named) in cases {
        let id = message["id"].clone();
        send(&mut agent, message).await;
        let refused = ws_error(next(&mut agent).await);
        assert_eq!(refused.code, code, "{id}: {}", refused.message);
        assert!(
            refused.message.contains(named),
            "{id}: {named} not in {}",
            refused.message
        );
        assert_eq!(refused.id, id);
    }

    assert!(stored(&app, &user.access_token).await.is_empty());
    let me: User = app.fetch_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.api_requests_used, 0);
    // The session goes on: a good alarm after all that is stored.
    send(&mut agent, good("fine")).await;
    acked(&mut agent, "fine").await;
    assert_eq!(stored(&app, &user.access_token).await.len(), 1);
}
