//! The job queue: listing, reading and cancelling jobs. Users see their
//! own; admins see all.

use actix_web::http::header::LOCATION;
use actix_web::{delete, get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::PathId;
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::jobs::{Cancelled, JobId, JobRecord, JobScope, JobService, JobState, JobView};
use vigil_wire::paging::PageOf;
use vigil_wire::ErrorBody;

fn scope(principal: &Principal) -> JobScope {
    if principal.is_admin() {
        JobScope::All
    } else {
        JobScope::Owner(principal.user_id)
    }
}

/// 202 with the job and where to follow it.
pub fn accepted(job: &JobRecord) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(job.view())
}

/// [`ListQuery`]'s parameters and `state`. Written out rather than
/// `#[serde(flatten)]`: the query parser hands a flattened struct strings,
/// which `limit` (a number) refuses.
#[derive(Debug, Deserialize, IntoParams)]
pub struct JobListQuery {
    /// Only jobs in this state.
    #[param(inline)]
    pub state: Option<JobState>,
    /// Only jobs created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only jobs created at or before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Jobs, newest first.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = []), ("api_key" = [])),
    params(JobListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<JobView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/jobs")]
pub async fn list(
    principal: Principal,
    jobs: web::Data<JobService>,
    query: web::Query<JobListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let state = query.state;
    let page = ListQuery {
        from: query.from,
        to: query.to,
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    let page = jobs.queue.list(scope(&principal), state, &page).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(JobRecord::view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One job: its state, progress and result.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "`not_found` (also for other users' jobs)", body = ErrorBody),
    )
)]
#[get("/api/v1/jobs/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<JobId>,
    jobs: web::Data<JobService>,
) -> Result<HttpResponse, ApiError> {
    let job = jobs
        .queue
        .get(scope(&principal), id.0)
        .await?
        .ok_or_else(PathId::<JobId>::not_found)?;
    Ok(HttpResponse::Ok().json(job.view()))
}

/// Cancels a queued or running job. A running one stops within about a
/// frame; what it recorded until then stays.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled", body = JobView),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`job_finished`: it had ended already", body = ErrorBody),
    )
)]
#[delete("/api/v1/jobs/{id}")]
pub async fn cancel(
    principal: Principal,
    id: PathId<JobId>,
    jobs: web::Data<JobService>,
) -> Result<HttpResponse, ApiError> {
    match jobs.cancel(scope(&principal), id.0).await? {
        Cancelled::Now(job) => Ok(HttpResponse::Ok().json(job.view())),
        Cancelled::Finished(job) => Err(ApiError::new(
            ErrorCode::JobFinished,
            format!("the job is {} already", job.state.as_str()),
        )),
        Cancelled::NotFound => Err(PathId::<JobId>::not_found()),
    }
}
