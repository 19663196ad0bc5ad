//! Webhooks: an account's endpoints that its alarms are POSTed to, and
//! their delivery logs. Users see and delete their own; admins all.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{JsonBody, Named, PathId};
use super::listing::ListQuery;
use crate::auth::Principal;
use crate::notify::webhooks::{
    DeliveryRecord, NewWebhook, Webhook, WebhookError, WebhookEvent, WebhookId, WebhookScope, WebhookService,
};
use vigil_wire::paging::PageOf;
use vigil_wire::webhooks::{CreatedWebhook, DeliveryAttempt, WebhookView};
use vigil_wire::ErrorBody;

impl Named for WebhookId {
    const WHAT: &'static str = "webhook";
}

fn scope(principal: &Principal) -> WebhookScope {
    if principal.is_admin() {
        WebhookScope::All
    } else {
        WebhookScope::Owner(principal.user_id)
    }
}

/// A webhook to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where deliveries are POSTed: http or https, without credentials, at
    /// most 2048 bytes. Every address its host resolves to must be public
    /// (not loopback, private, link-local or CGNAT) unless the server runs
    /// with `--webhook-allow-private`.
    #[schema(example = "https://hooks.example.org/vigil", max_length = 2048)]
    pub url: String,
    /// What to deliver; at least one.
    #[schema(min_items = 1)]
    pub events: Vec<WebhookEvent>,
    /// The key deliveries are signed with: 16–256 printable ASCII
    /// characters without spaces. Left out: one is generated. Either way it
    /// is shown once, in this answer.
    #[schema(min_length = 16, max_length = 256, pattern = r"^[!-~]{16,256}$")]
    pub secret: Option<String>,
}

impl TryFrom<NewWebhookBody> for NewWebhook {
    type Error = WebhookError;

    fn try_from(body: NewWebhookBody) -> Result<Self, Self::Error> {
        NewWebhook::parse(&body.url, body.events, body.secret)
    }
}

/// Creates a webhook. Alarms of the account (an admin's: cameras' alarms
/// too) are POSTed to it, signed with its secret (docs/webhooks.md).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewWebhookBody,
    responses(
        (status = 201, description = "Created; the secret is in this answer only", body = CreatedWebhook),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the account has 10 webhooks", body = ErrorBody),
        (status = 422, description = "`validation_failed`: bad URL, unknown event, bad secret; `webhook_url_refused`: not http(s), or the host does not resolve or resolves to an address that is not public", body = ErrorBody),
    )
)]
#[post("/api/v1/webhooks")]
pub async fn create(
    principal: Principal,
    webhooks: web::Data<WebhookService>,
    body: JsonBody<NewWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let new = NewWebhook::try_from(body.0)?;
    let webhook = webhooks.create(principal.user_id, new).await?;
    Ok(HttpResponse::Created().json(CreatedWebhook {
        webhook: webhook.view(),
        secret: webhook.secret,
    }))
}

/// Webhooks, newest first (admins: everyone's).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<WebhookView>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    )
)]
#[get("/api/v1/webhooks")]
pub async fn list(
    principal: Principal,
    webhooks: web::Data<WebhookService>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let page = webhooks.list(scope(&principal), &page).await?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(Webhook::view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One webhook (without its secret).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 404, description = "`not_found` (also for other users' webhooks)", body = ErrorBody),
    )
)]
#[get("/api/v1/webhooks/{id}")]
pub async fn get(
    principal: Principal,
    id: PathId<WebhookId>,
    webhooks: web::Data<WebhookService>,
) -> Result<HttpResponse, ApiError> {
    let webhook = webhooks
        .get(scope(&principal), id.0)
        .await?
        .ok_or_else(PathId::<WebhookId>::not_found)?;
    Ok(HttpResponse::Ok().json(webhook.view()))
}

/// Deletes a webhook: its pending deliveries are cancelled (one under way
/// finishes, unrecorded) and its delivery log goes with it.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[delete("/api/v1/webhooks/{id}")]
pub async fn remove(
    principal: Principal,
    id: PathId<WebhookId>,
    webhooks: web::Data<WebhookService>,
) -> Result<HttpResponse, ApiError> {
    if webhooks.delete(scope(&principal), id.0).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(PathId::<WebhookId>::not_found())
    }
}

/// The webhook's delivery log: every attempt (status or error, duration,
/// attempt number, outcome), newest first; the newest 200 are kept.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id"), ListQuery),
    responses(
        (status = 200, description = "One page", body = PageOf<DeliveryAttempt>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/api/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(
    principal: Principal,
    id: PathId<WebhookId>,
    webhooks: web::Data<WebhookService>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let page = webhooks
        .deliveries(scope(&principal), id.0, &page)
        .await?
        .ok_or_else(PathId::<WebhookId>::not_found)?;
    Ok(HttpResponse::Ok().json(PageOf {
        items: page.items.iter().map(DeliveryRecord::view).collect(),
        next_cursor: page.next_cursor,
    }))
}
