//! The message log keeps every message while the database falls behind: a
//! burst through a slowed, then cut, connection to the database is logged
//! whole and once; what a stop could not write is written by the next start.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use serde_json::json;

use crate::helpers::{
    connect, database_uri, free_port, next_of, send, spawn_child, AppOptions, ServeChild, Ws,
};
use crate::proxy::{single_host, CutProxy};

const CLIENTS: usize = 6;
const WAIT: Duration = Duration::from_secs(60);

struct Client {
    id: String,
    ws: Ws,
}

/// Each client sends `pings` (ids `<client>-<n>`), then reads every pong.
async fn burst(clients: &mut [Client], pings: std::ops::Range<u32>) {
    for client in clients.iter_mut() {
        for n in pings.clone() {
            send(
                &mut client.ws,
                json!({"type": "ping", "id": format!("{}-{n}", client.id)}),
            )
            .await;
        }
    }
    for client in clients.iter_mut() {
        for _ in pings.clone() {
            next_of(&mut client.ws, "pong").await;
        }
    }
}

async fn rows(db: &mongodb::Database, filter: Document) -> Vec<Document> {
    db.collection::<Document>("ws_messages")
        .find(filter)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Waits until every client's pings `expected` are logged, in and out,
/// each exactly once.
async fn wait_until_logged(
    server: &ServeChild,
    db: &mongodb::Database,
    clients: &[Client],
    expected: &[u32],
) {
    let started = Instant::now();
    for client in clients {
        let want: Vec<String> = expected.iter().map(|n| format!("{}-{n}", client.id)).collect();
        for (direction, kind) in [("in", "ping"), ("out", "pong")] {
            let filter = doc! {
                "client_id": &client.id, "direction": direction, "type": kind,
                "payload.id": { "$in": &want },
            };
            loop {
                let logged = rows(db, filter.clone()).await;
                if logged.len() >= want.len() {
                    let mut ids: Vec<&str> = logged
                        .iter()
                        .map(|row| row.get_document("payload").unwrap().get_str("id").unwrap())
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(
                        (ids.len(), logged.len()),
                        (want.len(), want.len()),
                        "each {direction} {kind} of {} logged once",
                        client.id
                    );
                    break;
                }
                assert!(
                    started.elapsed() < WAIT,
                    "{} of {} {direction} {kind} of {} logged after {WAIT:?}; the server's log:\n{}",
                    logged.len(),
                    want.len(),
                    client.id,
                    server.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The value of a counter sample of `/metrics` (0 when absent).
async fn sample(server: &ServeChild, series: &str) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn spill_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("message-log"))
        .map(|files| {
            files
                .filter_map(Result::ok)
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_burst_through_a_slow_then_lost_database_is_logged_whole_and_a_stop_leaves_nothing_behind() {
    let Some(target) = single_host(&database_uri()) else {
        eprintln!("skipped: MONGODB_URI has several hosts or credentials the proxy cannot front");
        return;
    };
    let proxy = CutProxy::start(target).await;
    let data = tempfile::tempdir().unwrap();
    let options = AppOptions::default()
        .mongodb_uri(proxy.uri())
        .data_dir(data.path())
        .port(free_port())
        // A few entries in memory: the rest of the burst must spill.
        .flag("--ws-log-buffer", 16)
        .flag("--ws-log-clock", true)
        .flag("--ws-messages-per-second", 1000)
        .flag("--ws-message-burst", 1000)
        .flag("--db-timeout-secs", 2);
    let db = mongodb::Client::with_uri_str(database_uri())
        .await
        .unwrap()
        .database(&options.database_name);
    let mut server = spawn_child(&options).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let id = format!("log-{}-{i}", &run[..8]);
        let mut ws = connect(&server, &format!("?client_id={id}")).await;
        next_of(&mut ws, "hello").await;
        clients.push(Client { id, ws });
    }

    // Each round trip to the database takes 300 ms or more, then none goes
    // through at all, while the clients keep talking and the clock ticks.
    proxy.slow_down(Duration::from_millis(150));
    burst(&mut clients, 0..30).await;
    proxy.cut();
    burst(&mut clients, 30..60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    wait_until_logged(&server, &db, &clients, &(0..60).collect::<Vec<_>>()).await;
    proxy.slow_down(Duration::ZERO);
    assert!(
        sample(&server, "vigil_ws_log_entries_total{outcome=\"spilled\"}").await > 0.0,
        "the burst went through the spill file"
    );
    assert_eq!(
        sample(&server, "vigil_ws_log_entries_total{outcome=\"dropped\"}").await,
        0.0,
        "nothing dropped"
    );

    // A broadcast is one entry listing its recipients, not one per client.
    let ticks = rows(
        &db,
        doc! { "type": "clock", "recipients.client_id": &clients[0].id },
    )
    .await;
    assert!(
        ticks.len() >= 3,
        "ticks logged while the database was away: {}",
        ticks.len()
    );
    let everyone = ticks.iter().any(|tick| {
        let listed: Vec<&str> = tick
            .get_array("recipients")
            .unwrap()
            .iter()
            .map(|r| r.as_document().unwrap().get_str("client_id").unwrap())
            .collect();
        clients.iter().all(|c| listed.contains(&c.id.as_str()))
    });
    assert!(everyone, "a tick lists every client: {ticks:?}");
    assert!(
        rows(&db, doc! { "type": "clock", "client_id": &clients[0].id })
            .await
            .is_empty(),
        "no per-recipient rows"
    );

    // Stopped while the database is away: what waits is kept on disk, and
    // the next start writes it.
    proxy.cut();
    burst(&mut clients, 60..70).await;
    server.signal(libc::SIGTERM);
    server.exit_within(Duration::from_secs(30)).await;
    assert!(
        spill_bytes(data.path()) > 0,
        "the unwritten entries stayed on disk"
    );
    proxy.restore();
    let restarted = spawn_child(&options).await;
    wait_until_logged(&restarted, &db, &clients, &(60..70).collect::<Vec<_>>()).await;
    let started = Instant::now();
    while spill_bytes(data.path()) > 0 {
        assert!(started.elapsed() < WAIT, "the spill file was never emptied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
