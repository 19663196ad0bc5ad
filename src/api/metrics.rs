//! `/metrics`: Prometheus text, for scrapers on the internal network.

use actix_web::{get, web, HttpResponse};

use crate::capture::metrics::{render, ProcessFigures};
use crate::capture::Cameras;
use crate::jobs::{JobMetrics, JobService};
use crate::vision::DetectorPool;

/// Prometheus metrics: per-camera counters and states, detector slots,
/// process memory, threads and file descriptors, the job queue's depth per
/// state and this instance's jobs (running, ended, durations). Unauthenticated, like most
/// scrape targets: keep it on the internal network.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(
    cameras: web::Data<Cameras>,
    detector: web::Data<DetectorPool>,
    jobs: web::Data<JobService>,
    job_metrics: web::Data<JobMetrics>,
) -> HttpResponse {
    let figures = ProcessFigures {
        detector_slots: detector.max_concurrent(),
        detector_slots_free: detector.available_slots(),
    };
    // The queue's depth is the database's: left out while it is away.
    let depth = tokio::time::timeout(std::time::Duration::from_secs(2), jobs.queue.counts())
        .await
        .ok()
        .and_then(Result::ok);
    let mut body = render(&cameras.list(), &figures);
    body.push_str(&job_metrics.render(depth.as_deref()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
