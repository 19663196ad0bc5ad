//! Who is connected to the WebSocket hub, across all instances (admins only).

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::Admin;
use crate::error::ErrorCode;
use crate::hub::presence::ClientView;
use crate::hub::Hub;
use vigil_wire::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ClientsQuery {
    /// Most rows to return, 1–1000 (default 100), oldest connection first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientList {
    /// Sessions connected now, on every instance.
    pub count: u64,
    pub items: Vec<ClientView>,
}

/// WebSocket sessions connected now (admins only).
#[utoipa::path(
    tag = "websocket",
    security(("bearer" = []), ("api_key" = [])),
    params(ClientsQuery),
    responses(
        (status = 200, description = "Connected clients", body = ClientList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin; `scope_forbidden`: an API key restricted to telemetry", body = ErrorBody),
    )
)]
#[get("/api/v1/clients")]
pub async fn list(
    _: Admin,
    hub: web::Data<Hub>,
    query: web::Query<ClientsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    let presence = hub.presence();
    let count = presence.count().await?;
    let items = presence
        .list(limit)
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect();
    Ok(HttpResponse::Ok().json(ClientList { count, items }))
}
