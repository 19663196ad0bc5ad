//! HTTP twins of the WebSocket `number` message.

use actix_web::{get, HttpResponse};

use super::extract::RateLimitedIp;
use crate::hub::numbers::{draw, NumberView, Parity};
use vigil_wire::ErrorBody;

/// An even number in 0–99, uniformly drawn.
#[utoipa::path(
    tag = "numbers",
    responses(
        (status = 200, description = "The number", body = NumberView,
         example = json!({"kind": "even", "value": 42})),
        (status = 429, description = "`rate_limited` (per client address)", body = ErrorBody),
    )
)]
#[get("/api/v1/numbers/even")]
pub async fn even(_: RateLimitedIp) -> HttpResponse {
    HttpResponse::Ok().json(draw(Parity::Even))
}

/// An odd number in 0–99, uniformly drawn.
#[utoipa::path(
    tag = "numbers",
    responses(
        (status = 200, description = "The number", body = NumberView,
         example = json!({"kind": "odd", "value": 17})),
        (status = 429, description = "`rate_limited` (per client address)", body = ErrorBody),
    )
)]
#[get("/api/v1/numbers/odd")]
pub async fn odd(_: RateLimitedIp) -> HttpResponse {
    HttpResponse::Ok().json(draw(Parity::Odd))
}
