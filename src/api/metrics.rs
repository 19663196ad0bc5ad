//! `/metrics`: Prometheus text, for scrapers on the internal network.

use actix_web::{get, web, HttpResponse};

use crate::capture::metrics::{render, ProcessFigures};
use crate::capture::Cameras;
use crate::vision::DetectorPool;

/// Prometheus metrics: per-camera counters and states, detector slots,
/// process memory, threads and file descriptors. Unauthenticated, like most
/// scrape targets: keep it on the internal network.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(cameras: web::Data<Cameras>, detector: web::Data<DetectorPool>) -> HttpResponse {
    let figures = ProcessFigures {
        detector_slots: detector.max_concurrent(),
        detector_slots_free: detector.available_slots(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render(&cameras.list(), &figures))
}
