//! What the API does with webhooks: create (the address checked), list,
//! read, delete (with the deliveries still pending and the log), and read
//! a webhook's delivery log.

use super::repository::DeliveryRecord;
use super::{
    address, DeliveryLog, NewWebhook, Webhook, WebhookError, WebhookId, WebhookLimits, WebhookScope,
    WebhookSettings, Webhooks,
};
use crate::db::paging::{Page, PageRequest};
use crate::db::DbError;
use crate::jobs::JobQueue;
use crate::users::UserId;

#[derive(Clone)]
pub struct WebhookService {
    pub webhooks: Webhooks,
    pub log: DeliveryLog,
    pub queue: JobQueue,
    pub settings: WebhookSettings,
    pub limits: WebhookLimits,
}

impl WebhookService {
    /// Checks every address the host resolves to, then stores the webhook.
    /// The answer holds the secret, which is never shown again.
    pub async fn create(&self, user: UserId, new: NewWebhook) -> Result<Webhook, WebhookError> {
        address::resolve_allowed(&new.url, self.settings.allow_private).await?;
        let webhook = self.webhooks.insert(user, new, self.limits.per_user).await?;
        tracing::info!(webhook = %webhook.id, user = %user, "webhook created");
        Ok(webhook)
    }

    pub async fn list(&self, scope: WebhookScope, page: &PageRequest) -> Result<Page<Webhook>, DbError> {
        self.webhooks.list(scope, page).await
    }

    pub async fn get(&self, scope: WebhookScope, id: WebhookId) -> Result<Option<Webhook>, DbError> {
        self.webhooks.get(scope, id).await
    }

    /// Deletes the webhook, cancels its pending deliveries and drops its
    /// log; `false` when the caller has no such webhook.
    pub async fn delete(&self, scope: WebhookScope, id: WebhookId) -> Result<bool, DbError> {
        let Some(webhook) = self.webhooks.delete(scope, id).await? else {
            return Ok(false);
        };
        let cancelled = self.queue.cancel_deliveries(webhook.id.0).await?;
        self.log.delete_for(webhook.id).await?;
        tracing::info!(webhook = %webhook.id, cancelled, "webhook deleted");
        Ok(true)
    }

    /// The webhook's delivery log, newest first; `None` when the caller has
    /// no such webhook.
    pub async fn deliveries(
        &self,
        scope: WebhookScope,
        id: WebhookId,
        page: &PageRequest,
    ) -> Result<Option<Page<DeliveryRecord>>, DbError> {
        if self.webhooks.get(scope, id).await?.is_none() {
            return Ok(None);
        }
        self.log.list(id, page).await.map(Some)
    }
}
