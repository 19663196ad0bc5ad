//! Failing fast while the database is away: a request that needs it gets
//! 503 `database_unavailable` with `Retry-After` at once instead of waiting
//! for the driver's server-selection timeout, and a request already in
//! flight when the health monitor finds the database gone is answered the
//! same way then. Nothing it was doing is left half-written: what a request
//! stores goes in one transaction, which an abandoned request never commits.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::error::ApiError;
use crate::db::health::Readiness;
use crate::error::{ErrorCode, DATABASE_RETRY_AFTER};

/// The API answers from the database, except the even/odd numbers (the hub's).
pub(crate) fn needs_database(path: &str) -> bool {
    (path.starts_with("/api/v1/") || path.starts_with("/telemetry/")) && !path.starts_with("/api/v1/numbers/")
}

fn unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::DatabaseUnavailable,
        "the database is unavailable, try again shortly",
    )
    .with_retry_after(DATABASE_RETRY_AFTER)
}

/// Middleware: see the module's documentation.
pub async fn database_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let readiness = needs_database(req.path())
        .then(|| req.app_data::<web::Data<Readiness>>().cloned())
        .flatten();
    let Some(readiness) = readiness else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    if readiness.database_down() {
        return Ok(req
            .into_response(unavailable().error_response())
            .map_into_right_body());
    }
    // The request is routed by now and cannot be kept for an answer of our
    // own (actix wants it unshared); an error is rendered the same way.
    tokio::select! {
        response = next.call(req) => response.map(ServiceResponse::map_into_left_body),
        () = readiness.until_database_down() => {
            tracing::warn!("database went away during the request; answered 503");
            Err(unavailable().into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::needs_database;

    #[test]
    fn the_api_needs_the_database_and_probes_files_and_numbers_do_not() {
        for path in ["/api/v1/detections", "/api/v1/auth/login", "/telemetry/gps"] {
            assert!(needs_database(path), "{path}");
        }
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/ws",
            "/",
            "/api/v1/numbers/even",
            "/media/x",
        ] {
            assert!(!needs_database(path), "{path}");
        }
    }
}
