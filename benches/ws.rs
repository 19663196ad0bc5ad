//! `make bench-ws`: alarm fan-out latency and server memory per connection.
//!
//! Starts the real `vigil serve` as a child process (so its memory is its
//! own), connects N subscribers over loopback, inserts a burst of alarms
//! straight into `alarms` (the path alarms from other instances take: change
//! stream, then fan-out) and measures, per delivered alarm, the time from
//! the insert to its arrival at each subscriber.
//!
//! Needs MONGODB_URI (a replica set); uses a throwaway database.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mongodb::bson::{doc, oid::ObjectId, DateTime};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const BURST: usize = 20;
const SECRET: &str = "bench-secret-that-is-long-enough-for-production-use";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds the process has used so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    // SAFETY: sysconf only reads a constant of the system.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(uri: &str, database: &str) -> Server {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    // BENCH_VIGIL_BIN: another build to compare with, run the same way.
    let binary = std::env::var("BENCH_VIGIL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_vigil").to_owned());
    let child = Command::new(binary)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database",
            database,
        ])
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "--models-dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"),
        ])
        .args(["--rate-limit-per-second", "100000", "--ws-queue", "1024"])
        .env("MONGODB_URI", uri)
        .env("VIGIL_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vigil starts");
    Server {
        child,
        port,
        _data: data,
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("vigil not ready within 60 s");
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(subscribers: usize, uri: &str) {
    let database = format!("vigil_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let server = start_server(uri, &database);
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let name = "bencher";
    http.post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"user_name": name, "email": "bench@example.org", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let tokens: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": name, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().expect("admin token").to_owned();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(server.child.id());

    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(subscribers);
    let mut clients = Vec::with_capacity(subscribers);
    let connecting = Arc::new(tokio::sync::Semaphore::new(100));
    for i in 0..subscribers {
        let url = format!(
            "ws://127.0.0.1:{}/ws?client_id=bench-{i}&token={token}",
            server.port
        );
        let arrivals = arrivals.clone();
        let ready = ready_tx.clone();
        let connecting = connecting.clone();
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.unwrap();
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
            ws.send(Message::text(r#"{"type":"unsubscribe","topics":["clock"]}"#))
                .await
                .unwrap();
            ws.send(Message::text(r#"{"type":"subscribe","topics":["alarms"]}"#))
                .await
                .unwrap();
            let mut subscribed = 0;
            let mut mine = Vec::with_capacity(BURST);
            while let Some(Ok(frame)) = ws.next().await {
                let Message::Text(text) = frame else { continue };
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("subscribed") => {
                        subscribed += 1;
                        if subscribed == 2 {
                            drop(permit);
                            let _ = ready.send(()).await;
                            break;
                        }
                    }
                    _ => continue,
                }
            }
            while mine.len() < BURST {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let at = Instant::now();
                        let v: Value = serde_json::from_str(text.as_str()).unwrap();
                        if v["type"] == "alarm" {
                            mine.push((v["id"].as_str().unwrap().to_owned(), at));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("subscriber {i} lost: {other:?}"),
                }
            }
            arrivals.lock().await.extend(mine);
            ws
        }));
    }
    drop(ready_tx);
    let connect_started = Instant::now();
    let cpu_before = cpu_s(server.child.id());
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("every subscriber ready");
    }
    let connect_time = connect_started.elapsed();
    let connect_cpu = cpu_s(server.child.id()) - cpu_before;
    // BENCH_WS_SETTLE_SECS: how long the burst waits after the last connect
    // (1 s: while the message log still writes the storm's entries).
    let settle: u64 = std::env::var("BENCH_WS_SETTLE_SECS").map_or(1, |s| s.parse().expect("seconds"));
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let rss_after = rss_kib(server.child.id());

    let mongo = mongodb::Client::with_uri_str(uri).await.unwrap();
    let db = mongo.database(&database);
    let alarms = db.collection::<mongodb::bson::Document>("alarms");
    let mut inserted = HashMap::new();
    for _ in 0..BURST {
        let id = ObjectId::new();
        let at = Instant::now();
        alarms
            .insert_one(doc! {
                "_id": id, "message": "1 face detected on bench", "date": DateTime::now(),
                "image": format!("{}.jpg", ObjectId::new().to_hex()), "face_count": 1,
                "source": "bench", "detection_id": ObjectId::new(),
            })
            .await
            .unwrap();
        inserted.insert(id.to_hex(), at);
    }
    let mut sockets = Vec::with_capacity(subscribers);
    for client in clients {
        sockets.push(client.await.expect("subscriber finished"));
    }
    let arrivals = arrivals.lock().await;
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .map(|(id, at)| at.duration_since(inserted[id]))
        .collect();
    latencies.sort();
    let per_connection = rss_after.saturating_sub(rss_before) as f64 / subscribers as f64;
    let (logged, dropped) = message_log(&db, server.port, subscribers).await;
    println!(
        "subscribers={subscribers} alarms={BURST} deliveries={} connect_s={:.1} connect_server_cpu_ms_per_client={:.2} latency_p50_ms={:.1} latency_p99_ms={:.1} latency_max_ms={:.1} server_rss_kib={rss_after} server_kib_per_connection={per_connection:.1} alarm_log_entries={logged} log_entries_dropped={dropped}",
        latencies.len(),
        connect_time.as_secs_f64(),
        connect_cpu * 1000.0 / subscribers as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    drop(sockets);
    let _ = db.drop().await;
}

/// The burst's alarms in the message log once it caught up (one entry per
/// alarm per 10 000 recipients, each listing them all), and the entries the
/// server could not log at all (`vigil_ws_log_entries_total{outcome="dropped"}`).
async fn message_log(db: &mongodb::Database, port: u16, subscribers: usize) -> (u64, f64) {
    let log = db.collection::<mongodb::bson::Document>("ws_messages");
    let listed_everyone = doc! { "type": "alarm", "recipients": { "$size": subscribers.min(10_000) as i64 } };
    let want = (BURST * subscribers.div_ceil(10_000)) as u64;
    let started = Instant::now();
    let mut logged = 0;
    while started.elapsed() < Duration::from_secs(60) {
        logged = log.count_documents(listed_everyone.clone()).await.unwrap();
        if logged >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("vigil_ws_log_entries_total{outcome=\"dropped\"}")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    (logged, dropped)
}

fn main() {
    let uri = std::env::var("MONGODB_URI").expect("MONGODB_URI must name a MongoDB replica set");
    let sizes: Vec<usize> = std::env::var("BENCH_WS_SUBSCRIBERS")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a number of subscribers"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        runtime.block_on(run(n, &uri));
    }
}
