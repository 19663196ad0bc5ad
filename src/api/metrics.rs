//! `/metrics`: Prometheus text, for scrapers on the internal network.

use actix_web::{get, web, HttpResponse};

use crate::capture::Cameras;
use crate::jobs::JobService;
use crate::vision::DetectorPool;

/// Prometheus metrics (docs/metrics.md lists every series): HTTP requests,
/// detector and recognizer latencies, WebSocket sessions, database errors,
/// per-camera counters and states, the job queue's depth per state and this
/// instance's jobs, process memory, threads and file descriptors.
/// Unauthenticated, like most scrape targets: keep it on the internal network.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(
    cameras: web::Data<Cameras>,
    detector: web::Data<DetectorPool>,
    jobs: web::Data<JobService>,
) -> HttpResponse {
    // The queue's depth is the database's: left out while it is away.
    let depth = tokio::time::timeout(std::time::Duration::from_secs(2), jobs.queue.counts())
        .await
        .ok()
        .and_then(Result::ok);
    let cameras = cameras.list();
    let body = crate::observability::render(|| {
        crate::capture::metrics::record(&cameras);
        detector.record_slots();
        if let Some(depth) = &depth {
            crate::jobs::record_depth(depth);
        }
        crate::observability::process::record();
    });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
