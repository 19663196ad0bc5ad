//! HTTP-level tests: each starts the real application on a random port with
//! its own database on the server named by MONGODB_URI (`make test` starts one).
//! One test binary for all of them keeps link time down.

/// A file of the repository, for tests that read docs, static files or
/// models. These tests belong to `crates/vigil-bin` (they run its binary),
/// so the repository is two folders above that package.
macro_rules! repo_path {
    ($path:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path)
    };
}

mod accounts;
mod agents;
mod alarm_ingest;
mod alarm_ingest_ws;
mod alarm_rules;
mod alarm_rules_dashboard;
mod auth;
mod backup;
mod bounds;
mod browser;
mod camera_leases;
mod capture;
mod client;
mod dashboard;
mod decode_budget;
mod detections;
mod durability;
mod feedback;
mod health;
mod helpers;
mod hub;
mod jobs;
mod jobs_dashboard;
mod jobs_failover;
mod lifecycle;
mod message_log;
mod metrics;
mod migrations;
mod mqtt;
mod openapi;
mod people;
mod people_dashboard;
mod proxy;
mod readiness;
mod retention;
mod search;
mod static_files;
mod telemetry;
mod telemetry_dashboard;
mod visitors;
mod webhooks;
