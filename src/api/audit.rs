//! The audit log, for admins: who searched by face or exported a person.

use actix_web::{get, web, HttpResponse};

use super::error::ApiError;
use super::extract::Admin;
use super::listing::ListQuery;
use crate::audit::{AuditEntryView, AuditLog};
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

/// Audit entries, newest first: every search by face and every export of a
/// subject's data. Admins only; entries cannot be changed or deleted.
#[utoipa::path(
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<AuditEntryView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
    )
)]
#[get("/api/v1/audit-log")]
pub async fn list(
    _admin: Admin,
    audit: web::Data<AuditLog>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = audit.list(&query.page()?).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|e| e.view()).collect(),
        next_cursor: page.next_cursor,
    }))
}
