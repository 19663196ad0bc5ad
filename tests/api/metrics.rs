//! `/metrics` of a real `vigil serve` process (the recorder is installed once
//! per process, by `serve`): the series move with the requests, uploads,
//! WebSocket sessions and database failures that should move them; and the
//! Grafana dashboard names only series that docs/metrics.md describes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use mongodb::bson::doc;
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{hello, next, quiet, spawn_child, try_connect_with, Api, AppOptions, DatabaseServer};

/// One scrape's samples: `name{labels}` (as written) and value.
struct Scrape {
    text: String,
    samples: Vec<(String, String, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("a sample: {line}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
                (name.to_owned(), labels.to_owned(), value)
            })
            .collect();
        Self { text, samples }
    }

    /// The sum over the samples of `name` that carry every label of `labels`
    /// (`key="value"`); 0 when there is none.
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|want| l.split(',').any(|have| have == *want)))
            .map(|(_, _, v)| v)
            .sum()
    }
}

async fn scrape(api: &Api) -> Scrape {
    let response = api.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    Scrape::parse(response.text().await.unwrap())
}

/// Scrapes until `moved` holds, for at most ten seconds.
async fn scrape_until(api: &Api, what: &str, moved: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        let now = scrape(api).await;
        if moved(&now) {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} did not move:\n{}",
            now.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn requests_uploads_and_sessions_move_their_series() {
    let server = spawn_child(&AppOptions::default()).await;
    let before = scrape(&server).await;

    let user = server.create_user().await;
    server.upload_face(&user).await;
    assert_eq!(server.get("/no/such/route").await.status(), 404);
    let (ws, _) = quiet(&server, "?client_id=metrics").await;
    let open = scrape(&server).await;
    assert_eq!(open.sum("vigil_ws_sessions", &[]), 1.0, "{}", open.text);
    drop(ws);
    let after = scrape_until(&server, "vigil_ws_sessions", |s| {
        s.sum("vigil_ws_sessions", &[]) == 0.0
    })
    .await;

    let moved = |name: &str, labels: &[&str]| after.sum(name, labels) - before.sum(name, labels);
    // Requests, by route pattern (never the raw path) and status.
    let upload = ["method=\"POST\"", "route=\"/api/v1/detections\""];
    assert_eq!(
        moved(
            "vigil_http_requests_total",
            &[&upload[..], &["status=\"201\""]].concat()
        ),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(moved("vigil_http_request_duration_seconds_count", &upload), 1.0);
    assert!(moved("vigil_http_request_duration_seconds_sum", &upload) > 0.0);
    assert_eq!(
        moved(
            "vigil_http_requests_total",
            &["method=\"GET\"", "route=\"unmatched\"", "status=\"404\""]
        ),
        1.0,
        "{}",
        after.text
    );
    assert!(!after.text.contains("/no/such/route"), "{}", after.text);
    assert_eq!(
        moved("vigil_http_requests_total", &["route=\"/ws\"", "status=\"101\""]),
        1.0
    );
    assert!(after.text.contains(
        "vigil_http_request_duration_seconds_bucket{method=\"GET\",route=\"/metrics\",le=\"0.005\"}"
    ));
    assert!(after
        .text
        .contains("# TYPE vigil_http_request_duration_seconds histogram"));

    // The upload's face was detected, then embedded; neither waited long.
    for name in [
        "vigil_detector_duration_seconds",
        "vigil_detector_queue_wait_seconds",
        "vigil_recognizer_duration_seconds",
        "vigil_recognizer_queue_wait_seconds",
    ] {
        assert!(
            moved(&format!("{name}_count"), &[]) >= 1.0,
            "{name}: {}",
            after.text
        );
        assert!(
            after.text.contains(&format!("# TYPE {name} histogram")),
            "{name}: {}",
            after.text
        );
    }
    assert!(moved("vigil_detector_duration_seconds_sum", &[]) > 0.0);

    // The upload was stored: its commands were timed, by name.
    assert!(moved("vigil_db_command_duration_seconds_count", &["command=\"insert\""]) >= 1.0);
    // Read at scrape time.
    assert!(after.sum("process_resident_memory_bytes", &[]) > 0.0);
    assert!(after.sum("vigil_detector_slots", &[]) >= 1.0);
    assert_eq!(after.sum("vigil_jobs", &["state=\"queued\""]), 0.0);
    assert!(
        after.text.contains("vigil_jobs{state=\"queued\"} 0"),
        "{}",
        after.text
    );
    assert!(after.text.contains("# HELP vigil_ws_sessions "));
}

#[tokio::test]
async fn a_slow_websocket_client_dropped_is_counted() {
    let server = spawn_child(
        &AppOptions::default()
            .flag("--ws-queue", 8)
            .flag("--ws-messages-per-second", 100_000)
            .flag("--ws-message-burst", 100_000),
    )
    .await;
    assert_eq!(
        scrape(&server)
            .await
            .sum("vigil_ws_slow_clients_dropped_total", &[]),
        0.0
    );

    // A client that reads nothing, with a tiny receive window, asking for
    // ~21 kB answers: the socket buffers fill, then its queue.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = try_connect_with(&server, "?client_id=slow", socket)
        .await
        .unwrap();
    hello(next(&mut slow).await);
    let started = Instant::now();
    let mut requests = 0;
    loop {
        let now = scrape(&server).await;
        if now.sum("vigil_ws_slow_clients_dropped_total", &[]) == 1.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the slow client was never dropped:\n{}",
            now.text
        );
        for _ in 0..20 {
            requests += 1;
            let message = json!({"type": "fib", "id": requests, "n": 100_000}).to_string();
            let sent = tokio::time::timeout(Duration::from_secs(5), slow.send(Message::text(message))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
    }
}

#[tokio::test]
async fn failed_database_commands_are_counted_by_command() {
    let Some(database) = DatabaseServer::launch_with_test_commands().await else {
        return;
    };
    let server = spawn_child(&AppOptions::default().mongodb_uri(database.uri())).await;
    let before = scrape(&server).await;
    assert_eq!(
        before.sum("vigil_db_command_errors_total", &["command=\"aggregate\""]),
        0.0,
        "{}",
        before.text
    );

    // The server refuses vigil's next `aggregate` (and only vigil's: the
    // failpoint names its application). Scraping counts the job queue
    // with one.
    let client = mongodb::Client::with_uri_str(format!("{}?directConnection=true", database.uri()))
        .await
        .unwrap();
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["aggregate"], "errorCode": 2, "appName": "vigil" },
        })
        .await
        .expect("the failpoint is set");
    let after = scrape_until(&server, "vigil_db_command_errors_total", |s| {
        s.sum("vigil_db_command_errors_total", &["command=\"aggregate\""]) == 1.0
    })
    .await;
    assert!(after
        .text
        .contains("# TYPE vigil_db_command_errors_total counter"));
}

/// Every `vigil_*` series a query of the dashboard names, without the
/// suffixes Prometheus adds to histograms.
fn dashboard_series(dashboard: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut queries = Vec::new();
    collect_exprs(dashboard, &mut queries);
    assert!(!queries.is_empty(), "the dashboard has no queries");
    for query in queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("vigil_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            found.insert(base.to_owned());
        }
    }
    found
}

fn collect_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query", Value::String(expr)) => into.push(expr.clone()),
                    _ => collect_exprs(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, into)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_parses_and_names_only_documented_series() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path!("docs/grafana/vigil.json")).unwrap())
            .expect("docs/grafana/vigil.json is JSON");
    // Import-ready: the data source is an input of the import.
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 10));
    let docs = std::fs::read_to_string(repo_path!("docs/metrics.md")).unwrap();
    let documented = |name: &str| docs.contains(&format!("`{name}`"));
    let series = dashboard_series(&dashboard);
    for required in [
        "vigil_http_requests_total",
        "vigil_http_request_duration_seconds",
        "vigil_detector_duration_seconds",
        "vigil_recognizer_queue_wait_seconds",
        "vigil_ws_sessions",
        "vigil_camera_state",
        "vigil_jobs",
        "vigil_db_command_errors_total",
        "vigil_mqtt_messages_total",
        "vigil_webhook_deliveries_total",
        "vigil_retention_deleted_total",
        "vigil_disk_free_bytes",
    ] {
        assert!(
            series.contains(required),
            "the dashboard does not graph {required}"
        );
    }
    let undocumented: Vec<_> = series.iter().filter(|name| !documented(name)).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/metrics.md: {undocumented:?}"
    );
}

#[test]
fn docs_metrics_describes_every_series_the_server_exports() {
    let docs = std::fs::read_to_string(repo_path!("docs/metrics.md")).unwrap();
    let source = std::fs::read_to_string(repo_path!("src/observability/series.rs")).unwrap();
    let names: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": &str = \""))
        .map(|(_, value)| value.trim_end_matches("\";"))
        .collect();
    assert!(names.len() >= 30, "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
}
