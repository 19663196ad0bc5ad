//! The WebSocket hub, end to end: real server, real database, a real
//! WebSocket client (tokio-tungstenite).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mongodb::bson::{doc, Document};
use num_bigint::BigUint;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use vigil_wire::alarms::AlarmView;
use vigil_wire::hub::{NumberView, Parity, ServerMessage, Topic};
use vigil_wire::ErrorCode;

use crate::helpers::{
    alarm, body, close_code, close_frame, connect, expect_message, hello, keep_reading, next, next_of, parse,
    quiet, send, spawn_app, spawn_app_with, sync, try_connect_with, ws_error, AppOptions, ClientList,
    TestApp, Ws, WS_WAIT,
};

const WAIT: Duration = WS_WAIT;

fn fib_by_addition(n: u32) -> BigUint {
    let (mut a, mut b) = (BigUint::from(0u32), BigUint::from(1u32));
    for _ in 0..n {
        let next = &a + &b;
        a = std::mem::replace(&mut b, next);
    }
    a
}

/// For the tests that send as fast as they can on purpose.
fn unlimited_messages(options: AppOptions) -> AppOptions {
    options
        .flag("--ws-messages-per-second", 100_000)
        .flag("--ws-message-burst", 100_000)
}

async fn count(app: &TestApp, collection: &str, filter: Document) -> u64 {
    app.db
        .collection::<Document>(collection)
        .count_documents(filter)
        .await
        .unwrap()
}

async fn wait_for_count(app: &TestApp, collection: &str, filter: Document, want: u64, within: Duration) {
    let started = Instant::now();
    loop {
        let now = count(app, collection, filter.clone()).await;
        if now == want {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{collection} {filter}: {now} documents, expected {want} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn hello_then_fib_is_exact_and_only_for_the_caller() {
    let app = spawn_app().await;
    let (mut asker, hello) = quiet(&app, "").await;
    assert_eq!(hello.value.get(), 0);
    assert!(!hello.authenticated);
    assert!(!hello.client_id.as_str().is_empty());
    let (mut bystander, _) = quiet(&app, "").await;

    send(&mut asker, json!({"type": "fib", "id": "f1", "n": 1000})).await;
    assert_eq!(
        next(&mut asker).await,
        ServerMessage::FibResult {
            id: json!("f1"),
            n: 1000,
            value: fib_by_addition(1000).to_string(),
        }
    );

    send(&mut asker, json!({"type": "fib", "id": 2, "n": 0})).await;
    assert_eq!(
        next(&mut asker).await,
        ServerMessage::FibResult {
            id: json!(2),
            n: 0,
            value: "0".into(),
        }
    );
    assert!(
        sync(&mut bystander).await.is_empty(),
        "the other client got nothing"
    );
}

#[tokio::test]
async fn bad_input_is_answered_with_errors_and_the_session_goes_on() {
    let app = spawn_app().await;
    let (mut ws, _) = quiet(&app, "").await;
    for (frame, code) in [
        (
            json!({"type": "fib", "id": 1, "n": -5}).to_string(),
            ErrorCode::InvalidFibN,
        ),
        (
            json!({"type": "fib", "id": 2, "n": 100_001}).to_string(),
            ErrorCode::InvalidFibN,
        ),
        (
            r#"{"type":"fib","id":3,"n":1e30}"#.to_owned(),
            ErrorCode::InvalidFibN,
        ),
        (
            json!({"type": "fib", "id": 4, "n": "7"}).to_string(),
            ErrorCode::InvalidFibN,
        ),
        ("not json at all".to_owned(), ErrorCode::InvalidJson),
        (json!({"no": "type"}).to_string(), ErrorCode::MissingType),
        (json!({"type": "teleport"}).to_string(), ErrorCode::UnknownType),
        (
            json!({"type": "number", "kind": "prime"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "value", "value": 100}).to_string(),
            ErrorCode::InvalidValue,
        ),
        (
            json!({"type": "subscribe", "topics": ["alarms"]}).to_string(),
            ErrorCode::Unauthenticated,
        ),
    ] {
        ws.send(Message::text(frame.clone())).await.unwrap();
        let error = ws_error(next(&mut ws).await);
        assert_eq!(error.code, code, "{frame} → {error:?}");
        assert!(!error.message.is_empty(), "{frame} → {error:?}");
    }
    ws.send(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
    assert_eq!(ws_error(next(&mut ws).await).code, ErrorCode::BinaryNotSupported);
    // An error names the request it answers.
    send(&mut ws, json!({"type": "fib", "id": "mine", "n": -1})).await;
    assert_eq!(ws_error(next(&mut ws).await).id, json!("mine"));

    assert!(sync(&mut ws).await.is_empty(), "alive after the errors");
    send(&mut ws, json!({"type": "fib", "id": 5, "n": 10})).await;
    assert_eq!(
        next(&mut ws).await,
        ServerMessage::FibResult {
            id: json!(5),
            n: 10,
            value: "55".into(),
        }
    );
}

#[tokio::test]
async fn twenty_consecutive_errors_close_the_session_with_1008() {
    // 60 messages at once: this test is about the errors, not the rate.
    let app = spawn_app_with(unlimited_messages(AppOptions::default())).await;
    let (mut ws, _) = quiet(&app, "").await;
    // A good message in between resets the count.
    for _ in 0..19 {
        ws.send(Message::text("garbage")).await.unwrap();
    }
    let errors = sync(&mut ws).await;
    assert_eq!(errors.len(), 19);
    for _ in 0..19 {
        ws.send(Message::text("garbage")).await.unwrap();
    }
    assert_eq!(sync(&mut ws).await.len(), 19, "still open after 19 + ping + 19");

    for _ in 0..20 {
        ws.send(Message::text("garbage")).await.unwrap();
    }
    let mut errors = 0;
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("in time") {
            Some(Ok(Message::Text(text))) => {
                assert_eq!(ws_error(parse(text.as_str())).code, ErrorCode::InvalidJson);
                errors += 1;
            }
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(errors, 20, "every error is answered before the close");
    assert_eq!(code, 1008);
}

#[tokio::test]
async fn even_and_odd_numbers_have_their_parity_and_range() {
    let app = spawn_app_with(unlimited_messages(
        AppOptions::default().flag("--rate-limit-per-second", 10_000),
    ))
    .await;
    let (mut ws, _) = quiet(&app, "").await;
    for kind in [Parity::Even, Parity::Odd] {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            send(&mut ws, json!({"type": "number", "kind": kind})).await;
            let (got, value) = expect_message!(
                next(&mut ws).await,
                ServerMessage::Number { kind, value } => (kind, value)
            );
            assert_eq!(got, kind);
            assert!(value <= 99, "{value}");
            assert_eq!(Parity::of(value), kind, "{kind:?} {value}");
            seen.insert(value);
        }
        // 300 uniform draws from 50 values leave out any one with p ≈ 0.3%.
        assert!(seen.len() >= 45, "{kind:?}: only {} distinct values", seen.len());

        let mut seen = std::collections::HashSet::new();
        let path = match kind {
            Parity::Even => "/api/v1/numbers/even",
            Parity::Odd => "/api/v1/numbers/odd",
        };
        for _ in 0..100 {
            let response = app.get(path).await;
            assert_eq!(response.status(), 200);
            let number: NumberView = body(response).await;
            assert_eq!(number.kind, kind);
            let value = number.value;
            assert!(value <= 99 && Parity::of(value) == kind, "{kind:?} {value}");
            seen.insert(value);
        }
        assert!(
            seen.len() >= 25,
            "HTTP {kind:?}: only {} distinct values",
            seen.len()
        );
    }
}

#[tokio::test]
async fn the_last_value_comes_back_on_reconnect() {
    let app = spawn_app().await;
    let client_id = format!("counter-{}", uuid::Uuid::new_v4().simple());
    let query = format!("?client_id={client_id}");
    let (mut ws, hello) = quiet(&app, &query).await;
    assert_eq!(hello.client_id.as_str(), client_id);
    assert_eq!(hello.value.get(), 0, "never seen: 0");
    send(&mut ws, json!({"type": "value", "value": 17})).await;
    send(&mut ws, json!({"type": "value", "value": 42})).await;
    assert!(sync(&mut ws).await.is_empty(), "values are not answered");
    ws.close(None).await.unwrap();

    let (_ws, hello) = quiet(&app, &query).await;
    assert_eq!(hello.value.get(), 42);

    // The same id under a user is that user's own counter.
    let user = app.create_user().await;
    let (mut ws, hello) = quiet(&app, &format!("{query}&token={}", user.access_token)).await;
    assert!(hello.authenticated);
    assert_eq!(hello.value.get(), 0);
    send(&mut ws, json!({"type": "value", "value": 7})).await;
    sync(&mut ws).await;
    let (_ws, hello) = quiet(&app, &format!("{query}&token={}", user.access_token)).await;
    assert_eq!(hello.value.get(), 7);
    let (_ws, hello) = quiet(&app, &query).await;
    assert_eq!(hello.value.get(), 42, "the anonymous one is untouched");
}

#[tokio::test]
async fn the_clock_ticks_about_once_a_second() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    let hello = hello(next(&mut ws).await);
    assert_eq!(hello.topics, [Topic::Clock], "clock is on by default");
    let mut ticks = Vec::new();
    while ticks.len() < 4 {
        let now = expect_message!(next_of(&mut ws, "clock").await, ServerMessage::Clock { now } => now);
        ticks.push((now, Instant::now()));
    }
    for pair in ticks.windows(2) {
        let stamped = (pair[1].0 - pair[0].0).num_milliseconds();
        let arrived = pair[1].1.duration_since(pair[0].1).as_millis();
        assert!(
            (800..=1200).contains(&stamped),
            "ticks stamped {stamped} ms apart"
        );
        assert!(
            (600..=1400).contains(&arrived),
            "ticks arrived {arrived} ms apart"
        );
    }
    // Aligned to the wall clock's second.
    let millis = ticks[3].0.timestamp_subsec_millis();
    assert!(!(200..=800).contains(&millis), "tick at .{millis:03}");

    send(&mut ws, json!({"type": "unsubscribe", "topics": ["clock"]})).await;
    next_of(&mut ws, "subscribed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = sync(&mut ws).await;
    assert!(
        after.iter().all(|m| m.kind() != "clock"),
        "no ticks once unsubscribed: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connects_disconnects_and_dead_connections() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--ws-heartbeat-secs", 1)
            .flag("--ws-client-timeout-secs", 4),
    )
    .await;
    let admin = app.create_user().await; // the first user is the admin
    let clients = doc! {};
    wait_for_count(&app, "ws_clients", clients.clone(), 0, WAIT).await;

    // These two keep reading, so they answer the server's pings.
    let (mut closing, closing_reader) = keep_reading(quiet(&app, "?client_id=closes").await.0);
    let (dropping, dropping_reader) = keep_reading(quiet(&app, "?client_id=drops").await.0);
    let (silent, _) = quiet(&app, "?client_id=silent").await;
    let silent_since = Instant::now();
    wait_for_count(&app, "ws_clients", clients.clone(), 3, WAIT).await;
    let row = app
        .db
        .collection::<Document>("ws_clients")
        .find_one(doc! { "client_id": "closes" })
        .await
        .unwrap()
        .expect("a row per session");
    assert!(row.get_str("instance_id").is_ok());
    assert!(row.get_datetime("connected_at").is_ok());
    assert!(row.get_str("remote_addr").unwrap().starts_with("127.0.0.1:"));

    let listed: ClientList = app.fetch_as("/api/v1/clients", &admin.access_token).await;
    assert_eq!(listed.count, 3, "{listed:?}");
    let mut listed: Vec<&str> = listed.items.iter().map(|c| c.client_id.as_str()).collect();
    listed.sort();
    assert_eq!(listed, ["closes", "drops", "silent"]);
    let user = app.create_user().await;
    assert_eq!(
        app.get_as("/api/v1/clients", &user.access_token).await.status(),
        403
    );

    closing.close().await.unwrap();
    let _ = closing_reader.await;
    wait_for_count(&app, "ws_clients", doc! { "client_id": "closes" }, 0, WAIT).await;
    assert_eq!(
        count(&app, "ws_clients", doc! { "client_id": "drops" }).await,
        1,
        "only the closed one left"
    );

    // TCP goes away without a close frame.
    dropping_reader.abort();
    let _ = dropping_reader.await;
    drop(dropping);
    wait_for_count(&app, "ws_clients", doc! { "client_id": "drops" }, 0, WAIT).await;

    // TCP stays up but nothing answers the pings: the heartbeat timeout ends it.
    wait_for_count(&app, "ws_clients", doc! { "client_id": "silent" }, 0, WAIT).await;
    assert!(
        silent_since.elapsed() >= Duration::from_secs(4),
        "removed by the 4 s timeout, not before"
    );
    assert_eq!(count(&app, "ws_clients", clients).await, 0);
    drop(silent);
}

#[tokio::test]
async fn the_sessions_of_a_dead_instance_are_removed_by_the_others() {
    let app = spawn_app_with(AppOptions::default().flag("--instance-heartbeat-secs", 1)).await;
    let stale =
        mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 60_000);
    app.db
        .collection::<Document>("instances")
        .insert_one(doc! { "_id": "crashed", "heartbeat_at": stale, "started_at": stale })
        .await
        .unwrap();
    app.db
        .collection::<Document>("ws_clients")
        .insert_one(doc! {
            "_id": "ghost", "client_id": "ghost", "instance_id": "crashed",
            "connected_at": stale,
        })
        .await
        .unwrap();
    wait_for_count(&app, "ws_clients", doc! { "instance_id": "crashed" }, 0, WAIT).await;
    wait_for_count(&app, "instances", doc! { "_id": "crashed" }, 0, WAIT).await;
    assert!(
        count(&app, "instances", doc! {}).await >= 1,
        "the live instance stays"
    );
}

#[tokio::test]
async fn every_message_in_and_out_is_logged() {
    let app = spawn_app().await;
    let client_id = format!("logged-{}", uuid::Uuid::new_v4().simple());
    let (mut ws, _) = quiet(&app, &format!("?client_id={client_id}")).await;
    send(&mut ws, json!({"type": "fib", "id": 9, "n": 20})).await;
    assert_eq!(
        next(&mut ws).await,
        ServerMessage::FibResult {
            id: json!(9),
            n: 20,
            value: "6765".into(),
        }
    );
    ws.send(Message::text("oops")).await.unwrap();
    next(&mut ws).await;
    sync(&mut ws).await;

    let expected = [
        ("out", "hello"),
        ("in", "unsubscribe"),
        ("out", "subscribed"),
        ("in", "fib"),
        ("out", "fib_result"),
        ("in", "invalid"),
        ("out", "error"),
        ("in", "ping"),
        ("out", "pong"),
    ];
    let filter = doc! { "client_id": &client_id };
    wait_for_count(&app, "ws_messages", filter.clone(), expected.len() as u64, WAIT).await;
    let log: Vec<Document> = futures_util::TryStreamExt::try_collect(
        app.db
            .collection::<Document>("ws_messages")
            .find(filter)
            .sort(doc! { "at": 1, "_id": 1 })
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    for (direction, kind) in expected {
        let entry = log
            .iter()
            .find(|e| e.get_str("direction") == Ok(direction) && e.get_str("type") == Ok(kind))
            .unwrap_or_else(|| panic!("no {direction} {kind} in {log:?}"));
        let at = entry.get_datetime("at").unwrap().timestamp_millis();
        let expires = entry.get_datetime("expires_at").unwrap().timestamp_millis();
        assert_eq!((expires - at) / 1000, 7 * 24 * 3600, "kept 7 days by default");
        assert!(entry.get_str("session_id").is_ok() && entry.get_str("instance_id").is_ok());
    }
    let fib_in = log.iter().find(|e| e.get_str("type") == Ok("fib")).unwrap();
    let n = fib_in.get_document("payload").unwrap().get("n").unwrap();
    assert_eq!(
        n.as_i64().or(n.as_i32().map(i64::from)),
        Some(20),
        "payload kept: {n}"
    );
    let raw = log.iter().find(|e| e.get_str("type") == Ok("invalid")).unwrap();
    assert_eq!(raw.get_str("payload").unwrap(), "oops");
    assert!(
        log.iter().all(|e| e.get_str("type") != Ok("clock")),
        "clock ticks are not logged by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_every_instance_exactly_once_and_only_those_allowed() {
    let a = spawn_app().await;
    let b = spawn_app_with(AppOptions::default().database(&a.database_name)).await;
    let admin = a.create_user().await;
    let owner = a.create_user().await;
    let other = a.create_user().await;

    let mut subscribers = Vec::new();
    for (app, token) in [
        (&b, &owner.access_token),
        (&a, &owner.access_token),
        (&b, &admin.access_token),
    ] {
        let (mut ws, hello) = quiet(app, &format!("?token={token}")).await;
        assert!(hello.authenticated);
        send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
        assert_eq!(
            next(&mut ws).await,
            ServerMessage::Subscribed {
                topics: vec![Topic::Alarms]
            }
        );
        subscribers.push(ws);
    }
    // Someone else's alarm is not this user's business.
    let (mut outsider, _) = quiet(&b, "").await;
    send(
        &mut outsider,
        json!({"type": "auth", "token": other.access_token}),
    )
    .await;
    assert!(
        hello(next(&mut outsider).await).authenticated,
        "auth message → new hello"
    );
    send(&mut outsider, json!({"type": "subscribe", "topics": ["alarms"]})).await;
    next_of(&mut outsider, "subscribed").await;

    let detection = a.upload_face(&owner).await;
    let alarm_id = detection.alarm_id.expect("an alarm");
    let stored: AlarmView = a
        .fetch_as(&format!("/api/v1/alarms/{alarm_id}"), &owner.access_token)
        .await;

    for ws in &mut subscribers {
        let alarm = alarm(next_of(ws, "alarm").await);
        assert_eq!(alarm.id, alarm_id);
        assert!(alarm.img.starts_with("/media/"), "{alarm:?}");
        // The image's URL is signed when sent, so it expires at another time.
        assert_eq!(
            AlarmView {
                img: stored.img.clone(),
                ..alarm
            },
            stored,
            "same as GET /api/v1/alarms/{{id}}"
        );
    }
    // Both paths (bus and change stream) have had time to deliver twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for ws in &mut subscribers {
        let extra = sync(ws).await;
        assert!(
            extra.iter().all(|m| m.kind() != "alarm"),
            "delivered twice: {extra:?}"
        );
    }
    assert!(sync(&mut outsider).await.is_empty(), "not the outsider's alarm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_all_receive_an_alarm() {
    const CLIENTS: usize = 500;
    // Subscribers wait unread while the others connect: no heartbeat timeout meanwhile.
    let app = spawn_app_with(AppOptions::default().flag("--ws-client-timeout-secs", 600)).await;
    let user = app.create_user().await;
    let query = format!("?token={}", user.access_token);
    let mut clients = Vec::with_capacity(CLIENTS);
    for chunk in 0..CLIENTS / 50 {
        let connecting = (0..50).map(|i| {
            let query = format!("{query}&client_id=many-{chunk}-{i}");
            let app = &app;
            async move {
                let (mut ws, _) = quiet(app, &query).await;
                send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
                next_of(&mut ws, "subscribed").await;
                ws
            }
        });
        clients.extend(futures_util::future::join_all(connecting).await);
    }
    assert_eq!(clients.len(), CLIENTS);

    let started = Instant::now();
    let alarm_id = app.upload_face(&user).await.alarm_id.expect("an alarm");
    let received = futures_util::future::join_all(
        clients
            .iter_mut()
            .map(|ws| async { alarm(next_of(ws, "alarm").await).id }),
    )
    .await;
    assert!(received.iter().all(|id| *id == alarm_id));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "500 deliveries took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_with_1013_without_delaying_a_fast_one() {
    let app = spawn_app_with(unlimited_messages(AppOptions::default().flag("--ws-queue", 8))).await;
    let (mut fast, _) = quiet(&app, "?client_id=fast").await;

    // A client that reads nothing, with a tiny receive window.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = try_connect_with(&app, "?client_id=slow", socket).await.unwrap();
    hello(next(&mut slow).await);

    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut requests = 0;
    // Each fib(100000) answer is ~21 kB: the socket buffers fill, then the queue.
    while count(&app, "ws_clients", doc! { "client_id": "slow" }).await == 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "slow client never dropped"
        );
        for _ in 0..20 {
            requests += 1;
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                slow.send(Message::text(
                    json!({"type": "fib", "id": requests, "n": 100_000}).to_string(),
                )),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        let ping = Instant::now();
        sync(&mut fast).await;
        worst = worst.max(ping.elapsed());
    }
    assert!(worst < Duration::from_secs(1), "the fast client waited {worst:?}");
    assert!(
        sync(&mut fast).await.is_empty(),
        "the fast client is still served"
    );

    // What the slow client finally reads ends with 1013.
    assert_eq!(close_code(&mut slow, Duration::from_secs(60)).await, 1013);
    let _ = CloseCode::Again; // 1013, for the reader
}

/// A message of `len` bytes in frames of at most `chunk` bytes, the way a
/// client library fragments a long message.
async fn send_fragmented(ws: &mut Ws, text: &str, chunk: usize) {
    let pieces: Vec<&[u8]> = text.as_bytes().chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i + 1 == pieces.len();
        ws.send(Message::Frame(Frame::message(
            piece.to_vec(),
            OpCode::Data(opcode),
            last,
        )))
        .await
        .unwrap();
    }
}

/// A `ping` whose frame text is exactly `len` bytes long.
fn ping_of_len(len: usize) -> (String, serde_json::Value) {
    let frame = |id: &str| json!({"type": "ping", "id": id}).to_string();
    let id = "x".repeat(len - frame("").len());
    let text = frame(&id);
    assert_eq!(text.len(), len);
    (text, json!(id))
}

#[tokio::test]
async fn a_message_over_16_kib_is_closed_with_1009() {
    let app = spawn_app().await;

    // Up to the limit, in one frame or in several, a message is handled.
    let (mut ws, _) = quiet(&app, "").await;
    let (text, id) = ping_of_len(16 * 1024);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, ServerMessage::Pong { id: id.clone() });
    send_fragmented(&mut ws, &text, 5000).await;
    assert_eq!(next(&mut ws).await, ServerMessage::Pong { id });

    // A 20 KiB frame: a close frame that says why, not a dropped connection.
    let (text, _) = ping_of_len(20 * 1024);
    ws.send(Message::text(text.clone())).await.unwrap();
    let (code, reason, before) = close_frame(&mut ws, WAIT).await;
    assert_eq!(code, u16::from(CloseCode::Size));
    assert_eq!(code, 1009);
    assert!(reason.contains("16384"), "{reason}");
    assert!(before.is_empty(), "{before:?}");

    // Fragments each under the limit, over it together.
    let (mut ws, _) = quiet(&app, "").await;
    send_fragmented(&mut ws, &text, 6000).await;
    let (code, _, before) = close_frame(&mut ws, WAIT).await;
    assert_eq!(code, 1009);
    assert!(before.is_empty(), "{before:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_rate_are_refused_and_a_flood_is_closed_with_1008() {
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--ws-messages-per-second", 2)
            .flag("--ws-message-burst", 4),
    )
    .await;

    // A client at the allowed rate is served, for longer than one burst.
    let paced = {
        let (mut ws, _) = quiet(&app, "").await;
        tokio::spawn(async move {
            for i in 0..8 {
                tokio::time::sleep(Duration::from_millis(600)).await;
                send(&mut ws, json!({"type": "ping", "id": i})).await;
                assert_eq!(next(&mut ws).await, ServerMessage::Pong { id: json!(i) });
            }
        })
    };

    // Over the burst: the extra messages are answered with rate_limited
    // and not handled (their values are not kept); the session goes on.
    let client_id = format!("rate-{}", uuid::Uuid::new_v4().simple());
    let query = format!("?client_id={client_id}");
    let (mut ws, _) = quiet(&app, &query).await;
    for value in 11..=16 {
        send(&mut ws, json!({"type": "value", "value": value})).await;
    }
    // Long enough for a token for the sync's ping, and to forgive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = sync(&mut ws).await;
    let refusals = refused.len() as u64;
    // The unsubscribe of `quiet` took one of the four tokens.
    assert!((2..=3).contains(&refusals), "{refused:?}");
    for message in refused {
        let error = ws_error(message);
        assert_eq!(error.code, ErrorCode::RateLimited, "{error:?}");
        assert!(error.message.contains("2 messages a second"), "{error:?}");
    }
    assert!(sync(&mut ws).await.is_empty(), "served again after a pause");
    ws.close(None).await.unwrap();
    let (_ws, hello) = quiet(&app, &query).await;
    let kept = hello.value.get();
    assert!(
        (13..16).contains(&kept),
        "the refused last value is not kept: {kept}"
    );
    // Refused or not, every message exchanged is in the log.
    let logged = |kind: &str| doc! { "client_id": &client_id, "type": kind };
    wait_for_count(&app, "ws_messages", logged("value"), 6, WAIT).await;
    wait_for_count(&app, "ws_messages", logged("error"), refusals, WAIT).await;

    // A flood: some answers, then rate_limited naming each refused request,
    // then 1008.
    let (mut flood, _) = quiet(&app, "").await;
    for i in 0..40 {
        send(&mut flood, json!({"type": "ping", "id": i})).await;
    }
    let (code, reason, before) = close_frame(&mut flood, WAIT).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("rate limit"), "{reason}");
    let pongs = before
        .iter()
        .take_while(|m| matches!(m, ServerMessage::Pong { .. }))
        .count();
    assert!(pongs <= 4, "{before:?}");
    let errors: Vec<_> = before[pongs..].iter().cloned().map(ws_error).collect();
    assert_eq!(
        errors.len(),
        5,
        "a refusal more than the burst closes: {before:?}"
    );
    for (i, error) in errors.iter().enumerate() {
        assert_eq!(error.code, ErrorCode::RateLimited);
        assert_eq!(error.id, json!(pongs + i), "the refusal names its request");
    }

    paced.await.expect("the paced client was served throughout");
}

#[tokio::test]
async fn a_long_message_is_logged_as_its_beginning_length_and_digest() {
    let app = spawn_app().await;
    let client_id = format!("digest-{}", uuid::Uuid::new_v4().simple());
    let (mut ws, _) = quiet(&app, &format!("?client_id={client_id}")).await;
    send(&mut ws, json!({"type": "fib", "id": "big", "n": 100_000})).await;
    let answer = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(text) => break text.to_string(),
            _ => continue,
        }
    };
    assert!(answer.len() > 20_000, "F(100000) has 20899 digits");
    // Long in, long out: a ping with a 5000-byte id, and its pong.
    let (ping, id) = ping_of_len(5000);
    ws.send(Message::text(ping.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, ServerMessage::Pong { id });
    send(&mut ws, json!({"type": "fib", "id": "small", "n": 10})).await;
    next(&mut ws).await;

    let filter = doc! { "client_id": &client_id };
    // hello, unsubscribe, subscribed, 2 × (fib, fib_result), ping, pong.
    wait_for_count(&app, "ws_messages", filter.clone(), 9, WAIT).await;
    let entry = |direction: &'static str, kind: &'static str, id: &'static str| {
        let collection = app.db.collection::<Document>("ws_messages");
        let mut filter = filter.clone();
        filter.insert("direction", direction);
        filter.insert("type", kind);
        async move {
            let rows: Vec<Document> =
                futures_util::TryStreamExt::try_collect(collection.find(filter).await.unwrap())
                    .await
                    .unwrap();
            rows.into_iter()
                .find(|row| {
                    id.is_empty()
                        || row
                            .get_document("payload")
                            .ok()
                            .and_then(|p| p.get_str("id").ok())
                            == Some(id)
                        || row
                            .get_document("truncated")
                            .is_ok_and(|t| t.get_str("prefix").unwrap().contains(id))
                })
                .unwrap_or_else(|| panic!("no {direction} {kind} {id}"))
        }
    };
    let digest_of = |row: &Document, text: &str| {
        assert!(!row.contains_key("payload"), "not kept in full: {row}");
        let truncated = row.get_document("truncated").unwrap();
        let prefix = truncated.get_str("prefix").unwrap();
        assert!(text.starts_with(prefix) && prefix.len() == 256, "{prefix}");
        let bytes = truncated.get("bytes").unwrap();
        assert_eq!(
            bytes.as_i64().or(bytes.as_i32().map(i64::from)),
            Some(text.len() as i64)
        );
        // SHA-256 in hex, the digest stored API keys are kept under.
        assert_eq!(
            truncated.get_str("sha256").unwrap(),
            vigil::auth::tokens::secret_digest(text)
        );
    };
    digest_of(&entry("out", "fib_result", "\"big\"").await, &answer);
    digest_of(&entry("in", "ping", "").await, &ping);
    let pong = entry("out", "pong", "").await;
    assert!(pong.contains_key("truncated"), "{pong}");
    // Short messages as ever, in full.
    let small = entry("out", "fib_result", "small").await;
    assert_eq!(
        small.get_document("payload").unwrap().get_str("value").unwrap(),
        "55"
    );
    assert!(!small.contains_key("truncated"));
}

#[tokio::test]
async fn credentials_in_the_handshake_and_by_message() {
    let app = spawn_app_with(AppOptions::default().flag("--ws-allow-anonymous", false)).await;
    let user = app.create_user().await;

    let refused = try_connect_with(&app, "?token=not-a-token", TcpSocket::new_v4().unwrap()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let refused = try_connect_with(&app, "?client_id=bad%20id", TcpSocket::new_v4().unwrap()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }

    // Without anonymous access: nothing but auth (and ping) before credentials.
    let mut ws = connect(&app, "").await;
    send(&mut ws, json!({"type": "number", "kind": "odd"})).await;
    assert_eq!(ws_error(next(&mut ws).await).code, ErrorCode::Unauthenticated);
    send(&mut ws, json!({"type": "auth", "token": "wrong"})).await;
    assert_eq!(ws_error(next(&mut ws).await).code, ErrorCode::InvalidToken);

    // An API key works like a token.
    let key = app.create_api_key(&user.access_token, "ws").await.key;
    send(&mut ws, json!({"type": "auth", "token": key})).await;
    let hello = hello(next_of(&mut ws, "hello").await);
    assert!(hello.authenticated);
    assert_eq!(hello.user_id.as_deref(), Some(user.id.as_str()));
    send(&mut ws, json!({"type": "auth", "token": key})).await;
    assert_eq!(
        ws_error(next_of(&mut ws, "error").await).code,
        ErrorCode::AlreadyAuthenticated
    );
    send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
    assert_eq!(
        next_of(&mut ws, "subscribed").await,
        ServerMessage::Subscribed {
            topics: vec![Topic::Alarms, Topic::Clock]
        }
    );
}

#[test]
fn docs_describe_every_message_and_error_code() {
    let docs = std::fs::read_to_string(repo_path!("docs/websocket.md")).unwrap();
    for kind in [
        "hello",
        "clock",
        "alarm",
        "subscribed",
        "fib_result",
        "number",
        "pong",
        "error",
        "telemetry",
        "job",
        "ack",
    ]
    .into_iter()
    .chain(vigil_wire::hub::CLIENT_TYPES.iter().copied())
    {
        assert!(
            docs.contains(&format!("\"type\": \"{kind}\"")),
            "docs/websocket.md lacks an example of {kind}"
        );
    }
    // Every code the server can send appears in the table.
    for code in vigil_wire::hub::ERROR_CODES {
        assert!(
            docs.contains(&format!("`{code}`")),
            "docs/websocket.md lacks error code {code}"
        );
    }
}
