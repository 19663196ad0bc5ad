//! The audit log: every search by face and every export of a person's data,
//! with who asked, when, for what, and how much they got. Faces are
//! special-category data (GDPR art. 9, BIPA): their owner must be able to
//! show who looked at them. Entries are only ever appended; the API has no
//! way to change or delete one, and retention leaves them alone. Erasing a
//! subject is the one change: entries keep who, when and how many, and no
//! longer say which person.

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

pub use vigil_wire::audit::{AuditAction, AuditEntryView};

use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::users::UserId;

/// What an entry says it was about once that subject is erased.
pub const ERASED_TARGET: &str = "an erased subject";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub at: DateTime<Utc>,
    pub actor_id: UserId,
    pub action: AuditAction,
    pub target: String,
    pub results: i64,
}

impl AuditEntry {
    pub fn view(&self) -> AuditEntryView {
        AuditEntryView {
            id: self.id.to_hex(),
            at: self.at,
            actor_id: self.actor_id.to_string(),
            action: self.action,
            target: self.target.clone(),
            results: u64::try_from(self.results).unwrap_or(0),
        }
    }
}

#[derive(Clone)]
pub struct AuditLog {
    entries: Collection<AuditEntry>,
}

impl AuditLog {
    pub fn new(db: &Database) -> Self {
        Self {
            entries: db.collection("audit_log"),
        }
    }

    /// Appends one entry. Callers give their answer only once it is
    /// written: an access that cannot be recorded does not happen.
    pub async fn record(
        &self,
        actor: UserId,
        action: AuditAction,
        target: String,
        results: usize,
    ) -> Result<AuditEntry, DbError> {
        let entry = AuditEntry {
            id: ObjectId::new(),
            at: Utc::now(),
            actor_id: actor,
            action,
            target,
            results: i64::try_from(results).unwrap_or(i64::MAX),
        };
        self.entries
            .insert_one(&entry)
            .await
            .map_err(DbError::from_driver)?;
        tracing::info!(actor = %actor, action = ?action, target = %entry.target, results, "audited");
        Ok(entry)
    }

    /// Rewrites the entries that name an erased subject: who looked, when
    /// and how much stays on record; which person it was does not.
    pub async fn forget_subject(&self, subject: &str) -> Result<u64, DbError> {
        self.entries
            .update_many(
                mongodb::bson::doc! { "target": format!("subject {subject}") },
                mongodb::bson::doc! { "$set": { "target": ERASED_TARGET } },
            )
            .await
            .map(|r| r.modified_count)
            .map_err(DbError::from_driver)
    }

    /// Newest first.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<AuditEntry>, DbError> {
        find_page(&self.entries, mongodb::bson::doc! {}, "at", page, |e| {
            (e.at, e.id)
        })
        .await
    }
}
