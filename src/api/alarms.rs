//! Alarms, read-only. Users see their own; admins see all, cameras included.

use actix_web::{get, web, HttpResponse};

use super::error::ApiError;
use super::extract::PathId;
use super::listing::ListQuery;
use crate::alarms::{AlarmId, AlarmScope, AlarmView};
use crate::auth::Principal;
use crate::detections::Recorder;
use crate::media::signed::UrlSigner;
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

/// Alarms, newest first.
#[utoipa::path(
    tag = "alarms",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<AlarmView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/alarms")]
pub async fn list(
    principal: Principal,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = recorder
        .alarms
        .list(AlarmScope::of(&principal), &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|a| a.view(&signer)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One alarm.
#[utoipa::path(
    tag = "alarms",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Alarm id")),
    responses(
        (status = 200, description = "The alarm", body = AlarmView),
        (status = 404, description = "`not_found` (also for alarms the caller may not see)", body = ErrorBody),
    )
)]
#[get("/api/v1/alarms/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<AlarmId>,
    recorder: web::Data<Recorder>,
    signer: web::Data<UrlSigner>,
) -> Result<HttpResponse, ApiError> {
    let alarm = recorder
        .alarms
        .get(AlarmScope::of(&principal), id.0)
        .await?
        .ok_or_else(PathId::<AlarmId>::not_found)?;
    Ok(HttpResponse::Ok().json(alarm.view(&signer)))
}
