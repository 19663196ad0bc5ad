//! vigil: one binary that finds human faces in camera feeds, video files and
//! uploaded images, stores every detection in MongoDB and pushes alarms live.
//!
//! The binary (`crates/vigil-bin`) is a thin CLI over this library and the
//! `vigil-client` crate, so that the integration tests can start the real
//! application in-process.

pub mod agents;
pub mod alarm_rules;
pub mod alarms;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod capture;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod detections;
pub mod disk;
pub mod error;
pub mod hub;
pub mod idempotency;
pub mod jobs;
pub mod logging;
pub mod media;
pub mod mqtt;
pub mod notify;
pub mod observability;
pub mod people;
pub mod retention;
pub mod search;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod users;
pub mod vision;
pub mod visitors;
