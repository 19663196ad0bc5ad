//! HTTP twins of the WebSocket `number` message.

use actix_web::{get, HttpResponse};

use crate::auth::principal::ClientIp;
use crate::error::ErrorBody;
use crate::hub::numbers::{NumberView, Parity};

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
pub async fn even(_ip: ClientIp) -> HttpResponse {
    HttpResponse::Ok().json(NumberView::draw(Parity::Even))
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
pub async fn odd(_ip: ClientIp) -> HttpResponse {
    HttpResponse::Ok().json(NumberView::draw(Parity::Odd))
}
