//! Recurring strangers: list, look at, name, merge, erase.

use actix_web::{delete, get, post, web, HttpResponse};

use super::error::ApiError;
use super::extract::{JsonBody, Named, PathId};
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::media::signed::UrlSigner;
use crate::people::{NewSubject, PeopleError, SubjectName, SubjectNote, SubjectView};
use crate::visitors::{NameAs, VisitorError, VisitorId, VisitorRecord, VisitorScope, VisitorService};
use vigil_wire::paging::PageOf;
use vigil_wire::visitors::{
    MergeVisitors, NameVisitor, VisitorDetail, VisitorFace, VisitorSightingView, VisitorView,
};
use vigil_wire::ErrorBody;

impl Named for VisitorId {
    const WHAT: &'static str = "visitor";
}

fn scope(principal: &Principal) -> VisitorScope {
    VisitorScope {
        user: principal.user_id,
        admin: principal.is_admin(),
    }
}

fn view(visitor: &VisitorRecord, signer: &UrlSigner) -> VisitorView {
    let cover = visitor.prototypes.first();
    VisitorView {
        cover_url: visitor.cover.map(|c| signer.url(&c)),
        id: visitor.id.to_string(),
        label: visitor.label(),
        first_seen: visitor.first_seen,
        last_seen: visitor.last_seen,
        sightings: u64::try_from(visitor.sightings).unwrap_or(0),
        sources: visitor.sources.clone(),
        camera: visitor.owner_id.is_none(),
        cover: VisitorFace {
            detection_id: cover.map(|p| p.detection_id.to_string()).unwrap_or_default(),
            face_index: cover.map_or(0, |p| p.face_index),
        },
    }
}

/// Recurring strangers, most recently seen first: yours, and for admins the
/// cameras' too.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<VisitorView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/visitors")]
pub async fn list(
    principal: Principal,
    visitors: web::Data<VisitorService>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = visitors.list(scope(&principal), &query.page()?).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(|v| view(v, &signer)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A visitor and its sightings, newest first (`from`, `to`, `limit` and
/// `cursor` page the sightings).
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Visitor id"), ListQuery),
    responses(
        (status = 200, description = "The visitor", body = VisitorDetail),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/visitors/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<VisitorId>,
    visitors: web::Data<VisitorService>,
    signer: web::Data<UrlSigner>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (visitor, sightings) = visitors
        .sightings(scope(&principal), id.0, &query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(VisitorDetail {
        visitor: view(&visitor, &signer),
        sightings: PageOf {
            items: sightings
                .items
                .iter()
                .map(|s| VisitorSightingView {
                    detection: s.detection.view(&signer),
                    face_index: s.face_index,
                })
                .collect(),
            next_cursor: sightings.next_cursor,
        },
    }))
}

impl TryFrom<NameVisitor> for NameAs {
    type Error = ApiError;

    fn try_from(body: NameVisitor) -> Result<Self, ApiError> {
        match body {
            NameVisitor::New { name, note } => Ok(NameAs::New(NewSubject {
                name: SubjectName::try_from(name)?,
                note: note.map(SubjectNote::try_from).transpose()?,
            })),
            // A malformed id names no subject, like an unknown one.
            NameVisitor::Existing { subject_id } => subject_id
                .parse()
                .map(NameAs::Existing)
                .map_err(|_| PeopleError::SubjectNotFound.into()),
        }
    }
}

/// Names a visitor: it becomes a subject (a new one, or one of yours), its
/// first faces are enrolled, and its past sightings in detections and alarms
/// are named. Later faces of that person are recognised.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Visitor id")),
    request_body = NameVisitor,
    responses(
        (status = 200, description = "The subject the visitor became", body = SubjectView),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such visitor, or no such subject of yours", body = ErrorBody),
        (status = 409, description = "`subject_name_taken`, `limit_reached`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: neither or both of `name` and `subject_id`, or a bad name or note", body = ErrorBody),
    )
)]
#[post("/api/v1/visitors/{id}/name")]
pub async fn name_visitor(
    principal: Principal,
    id: PathId<VisitorId>,
    visitors: web::Data<VisitorService>,
    signer: web::Data<UrlSigner>,
    body: JsonBody<NameVisitor>,
) -> Result<HttpResponse, ApiError> {
    let name_as = NameAs::try_from(body.0)?;
    let subject = visitors.name(scope(&principal), id.0, name_as).await?;
    Ok(HttpResponse::Ok().json(subject.view(&signer)))
}

/// Merges visitors that are one person: the visitors `from` become `into`,
/// their sightings and tags included.
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    request_body = MergeVisitors,
    responses(
        (status = 200, description = "The merged visitor", body = VisitorView),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 404, description = "`not_found`: a visitor that is not yours", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `from` empty, longer than 20 or listing `into`; visitors of different owners", body = ErrorBody),
    )
)]
#[post("/api/v1/visitors/merge")]
pub async fn merge(
    principal: Principal,
    visitors: web::Data<VisitorService>,
    signer: web::Data<UrlSigner>,
    body: JsonBody<MergeVisitors>,
) -> Result<HttpResponse, ApiError> {
    let parse = |raw: &str| raw.parse::<VisitorId>().map_err(|_| VisitorError::NotFound);
    let into = parse(&body.0.into)?;
    let from = body
        .0
        .from
        .iter()
        .map(|raw| parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = visitors.merge(scope(&principal), into, &from).await?;
    Ok(HttpResponse::Ok().json(view(&merged, &signer)))
}

/// Erases a visitor: the embeddings of its faces, and its tag on every
/// detection and alarm (the faces stay `{"unknown": true}`).
#[utoipa::path(
    tag = "people",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Visitor id")),
    responses(
        (status = 204, description = "Erased"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/visitors/{id}")]
pub async fn remove(
    principal: Principal,
    id: PathId<VisitorId>,
    visitors: web::Data<VisitorService>,
) -> Result<HttpResponse, ApiError> {
    visitors.erase(scope(&principal), id.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
