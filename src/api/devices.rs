//! Reading telemetry back, for the fleet's front end: the caller's devices
//! and each device's readings, newest first. Another account's device is a
//! 404, as an unknown one is.

use actix_web::{get, web, HttpResponse};
use vigil_wire::paging::PageOf;
use vigil_wire::telemetry::{DeviceView, GpsView, GyroscopeView, PhotoView};
use vigil_wire::ErrorBody;

use super::error::ApiError;
use super::extract::PathId;
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::db::paging::Page;
use crate::telemetry::{DeviceId, Telemetry};

/// The caller's devices, most recently seen first (at most 1000).
#[utoipa::path(
    tag = "devices",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The devices", body = [DeviceView]),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
    )
)]
#[get("/api/v1/devices")]
pub async fn list(principal: Principal, telemetry: web::Data<Telemetry>) -> Result<HttpResponse, ApiError> {
    let devices = telemetry.devices.list(principal.user_id).await?;
    Ok(HttpResponse::Ok().json(devices.iter().map(|d| d.view()).collect::<Vec<_>>()))
}

/// One of the caller's devices.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Device id, e.g. `AA:BB:CC:DD:EE:FF`")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "`not_found` (also another account's device)", body = ErrorBody),
    )
)]
#[get("/api/v1/devices/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<DeviceId>,
    telemetry: web::Data<Telemetry>,
) -> Result<HttpResponse, ApiError> {
    let device = owned(&telemetry, &principal, &id.0).await?;
    Ok(HttpResponse::Ok().json(device.view()))
}

async fn owned(
    telemetry: &Telemetry,
    principal: &Principal,
    id: &DeviceId,
) -> Result<crate::telemetry::StoredDevice, ApiError> {
    telemetry
        .device(principal.user_id, id)
        .await?
        .ok_or_else(PathId::<DeviceId>::not_found)
}

fn page<T: serde::Serialize>(page: Page<T>) -> HttpResponse {
    HttpResponse::Ok().json(PageOf {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

/// A device's gyroscope readings, newest `timestamp` first.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Device id"), ListQuery),
    responses(
        (status = 200, description = "One page (`from`/`to` bound the collection time)", body = PageOf<GyroscopeView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/devices/{id}/gyroscope")]
pub async fn gyroscope(
    principal: Principal,
    id: PathId<DeviceId>,
    query: web::Query<ListQuery>,
    telemetry: web::Data<Telemetry>,
) -> Result<HttpResponse, ApiError> {
    let request = query.page()?;
    owned(&telemetry, &principal, &id.0).await?;
    Ok(page(
        telemetry
            .gyroscope_page(principal.user_id, &id.0, &request)
            .await?,
    ))
}

/// A device's GPS fixes, newest `timestamp` first.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Device id"), ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<GpsView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/devices/{id}/gps")]
pub async fn gps(
    principal: Principal,
    id: PathId<DeviceId>,
    query: web::Query<ListQuery>,
    telemetry: web::Data<Telemetry>,
) -> Result<HttpResponse, ApiError> {
    let request = query.page()?;
    owned(&telemetry, &principal, &id.0).await?;
    Ok(page(
        telemetry.gps_page(principal.user_id, &id.0, &request).await?,
    ))
}

/// A device's photos, newest `timestamp` first, with their faces as named now.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Device id"), ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<PhotoView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/devices/{id}/photos")]
pub async fn photos(
    principal: Principal,
    id: PathId<DeviceId>,
    query: web::Query<ListQuery>,
    telemetry: web::Data<Telemetry>,
) -> Result<HttpResponse, ApiError> {
    let request = query.page()?;
    owned(&telemetry, &principal, &id.0).await?;
    Ok(page(
        telemetry.photo_page(principal.user_id, &id.0, &request).await?,
    ))
}
