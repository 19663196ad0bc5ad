//! The `webhooks` collection and each webhook's delivery log
//! (`webhook_deliveries`, the newest attempts only).

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{DeliveryAttempt, DeliveryOutcome, NewWebhook, Webhook, WebhookError, WebhookEvent, WebhookId};
use crate::alarms::AlarmId;
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::users::UserId;

/// Whose webhooks a caller may see: admins all, everyone else their own.
#[derive(Debug, Clone, Copy)]
pub enum WebhookScope {
    Owner(UserId),
    All,
}

impl WebhookScope {
    fn filter(self, mut base: Document) -> Document {
        if let WebhookScope::Owner(user) = self {
            base.insert("user_id", user.0);
        }
        base
    }
}

#[derive(Clone)]
pub struct Webhooks {
    webhooks: Collection<Webhook>,
}

impl Webhooks {
    pub fn new(db: &Database) -> Self {
        Self {
            webhooks: db.collection("webhooks"),
        }
    }

    /// Stores a webhook whose address was checked; its secret is the one
    /// given or a new one.
    pub async fn insert(&self, user: UserId, new: NewWebhook, limit: u64) -> Result<Webhook, WebhookError> {
        let owned = self
            .webhooks
            .count_documents(doc! { "user_id": user.0 })
            .await
            .map_err(DbError::from_driver)?;
        if owned >= limit {
            return Err(WebhookError::TooMany(limit));
        }
        let webhook = Webhook {
            id: WebhookId(ObjectId::new()),
            user_id: user,
            url: new.url.to_string(),
            events: new.events,
            secret: new.secret.unwrap_or_else(super::signature::generate_secret),
            created_at: crate::db::paging::bson_precision(Utc::now()),
        };
        self.webhooks
            .insert_one(&webhook)
            .await
            .map_err(DbError::from_driver)?;
        Ok(webhook)
    }

    pub async fn list(&self, scope: WebhookScope, page: &PageRequest) -> Result<Page<Webhook>, DbError> {
        find_page(
            &self.webhooks,
            scope.filter(Document::new()),
            "created_at",
            page,
            |w| (w.created_at, w.id.0),
        )
        .await
    }

    pub async fn get(&self, scope: WebhookScope, id: WebhookId) -> Result<Option<Webhook>, DbError> {
        self.webhooks
            .find_one(scope.filter(doc! { "_id": id.0 }))
            .await
            .map_err(DbError::from_driver)
    }

    /// Removes a webhook the caller may see; `None` when there is none.
    pub async fn delete(&self, scope: WebhookScope, id: WebhookId) -> Result<Option<Webhook>, DbError> {
        self.webhooks
            .find_one_and_delete(scope.filter(doc! { "_id": id.0 }))
            .await
            .map_err(DbError::from_driver)
    }

    /// The webhooks of these accounts that want `event`.
    pub async fn subscribed(&self, owners: &[UserId], event: WebhookEvent) -> Result<Vec<Webhook>, DbError> {
        let owners: Vec<ObjectId> = owners.iter().map(|u| u.0).collect();
        self.webhooks
            .find(doc! { "user_id": { "$in": owners }, "events": event.as_str() })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }
}

/// One attempt as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub webhook_id: WebhookId,
    pub user_id: UserId,
    /// The job: the same for every attempt of one delivery.
    pub delivery_id: ObjectId,
    pub event: WebhookEvent,
    pub alarm_id: AlarmId,
    pub attempt: u32,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub at: DateTime<Utc>,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub outcome: DeliveryOutcome,
}

impl DeliveryRecord {
    pub fn view(&self) -> DeliveryAttempt {
        DeliveryAttempt {
            id: self.id.to_hex(),
            delivery_id: self.delivery_id.to_hex(),
            event: self.event,
            alarm_id: self.alarm_id.to_string(),
            attempt: self.attempt,
            at: self.at,
            duration_ms: self.duration_ms,
            status: self.status,
            error: self.error.clone(),
            outcome: self.outcome,
        }
    }
}

/// Every webhook's newest attempts.
#[derive(Clone)]
pub struct DeliveryLog {
    entries: Collection<DeliveryRecord>,
    /// Entries kept per webhook.
    keep: u64,
}

impl DeliveryLog {
    pub fn new(db: &Database, keep: u64) -> Self {
        Self {
            entries: db.collection("webhook_deliveries"),
            keep: keep.max(1),
        }
    }

    /// Appends an attempt, then drops the webhook's entries beyond the
    /// newest `keep`.
    pub async fn append(&self, entry: &DeliveryRecord) -> Result<(), DbError> {
        self.entries
            .insert_one(entry)
            .await
            .map_err(DbError::from_driver)?;
        let older: Vec<Document> = self
            .entries
            .clone_with_type::<Document>()
            .find(doc! { "webhook_id": entry.webhook_id.0 })
            .sort(doc! { "at": -1, "_id": -1 })
            .skip(self.keep)
            .projection(doc! { "_id": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let ids: Vec<bson::Bson> = older.iter().filter_map(|d| d.get("_id").cloned()).collect();
        if !ids.is_empty() {
            self.entries
                .delete_many(doc! { "_id": { "$in": ids } })
                .await
                .map_err(DbError::from_driver)?;
        }
        Ok(())
    }

    /// A webhook's attempts, newest first.
    pub async fn list(
        &self,
        webhook: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<DeliveryRecord>, DbError> {
        find_page(&self.entries, doc! { "webhook_id": webhook.0 }, "at", page, |e| {
            (e.at, e.id)
        })
        .await
    }

    pub async fn delete_for(&self, webhook: WebhookId) -> Result<(), DbError> {
        self.entries
            .delete_many(doc! { "webhook_id": webhook.0 })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}
