//! HTTP-level tests: each starts the real application on a random port with
//! its own database on the server named by MONGODB_URI (`make test` starts one).
//! One test binary for all of them keeps link time down.

mod auth;
mod browser;
mod capture;
mod client;
mod dashboard;
mod detections;
mod health;
mod helpers;
mod hub;
mod lifecycle;
mod migrations;
mod openapi;
mod proxy;
mod readiness;
mod static_files;
