//! Alarms, read-only. Users see their own; admins see all, cameras included.

use actix_web::{get, web, HttpResponse};

use super::listing::{parse_object_id, ListQuery, PageOf};
use crate::alarms::repository_scope;
use crate::alarms::AlarmView;
use crate::auth::principal::Principal;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

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
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .recorder
        .alarms
        .list(repository_scope(&principal), &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page
            .items
            .iter()
            .map(|a| AlarmView::new(a, &state.signer))
            .collect(),
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
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_object_id(&id, "alarm")?;
    let alarm = state
        .recorder
        .alarms
        .get(repository_scope(&principal), id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no alarm with this id"))?;
    Ok(HttpResponse::Ok().json(AlarmView::new(&alarm, &state.signer)))
}
