//! Who is connected right now, across every instance (`ws_clients`), and
//! which instances are alive (`instances`).
//!
//! A session inserts its row when it starts and deletes it when it ends,
//! through one task that applies every change arriving meanwhile in one
//! round trip per kind ([`Batched`]): 5000 clients reconnecting after a
//! restart are a handful of `insert_many`, not 5000 inserts in a row.
//! A process that dies cannot delete its rows, so every instance heartbeats
//! its own `instances` document and, on each beat, removes the rows of
//! instances that missed three beats in a row.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use vigil_wire::hub::ClientId;

use super::batch::{Batched, Foreground};
use super::topics::SessionHandle;
use crate::db::{is_duplicate_key, only_duplicate_keys, Database, DbError};
use crate::users::UserId;

/// One row of `ws_clients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresenceRow {
    #[serde(rename = "_id")]
    pub session_id: String,
    pub client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub instance_id: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub connected_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

/// A connected WebSocket client as `GET /api/v1/clients` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    #[schema(example = "3f1c0a7e9b2d4c6a8e0f1a2b3c4d5e6f")]
    pub session_id: String,
    #[schema(example = "dashboard-1")]
    pub client_id: String,
    /// Absent for anonymous sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The vigil process holding the connection.
    pub instance_id: String,
    pub connected_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "192.0.2.10:51234")]
    pub remote_addr: Option<String>,
}

impl From<PresenceRow> for ClientView {
    fn from(row: PresenceRow) -> Self {
        Self {
            session_id: row.session_id,
            client_id: row.client_id.to_string(),
            user_id: row.user_id.map(|u| u.to_string()),
            instance_id: row.instance_id,
            connected_at: row.connected_at,
            remote_addr: row.remote_addr,
        }
    }
}

#[derive(Clone)]
pub struct Presence {
    clients: Collection<PresenceRow>,
    instances: Collection<Document>,
    changes: Batched<Change, Result<(), Arc<DbError>>>,
    instance_id: String,
    pub heartbeat: Duration,
}

/// What a session tells `ws_clients`.
enum Change {
    Connected(PresenceRow),
    Authenticated { session_id: String, user: UserId },
    Disconnected(String),
}

/// Beats an instance may miss before the others treat it as dead.
const MISSED_BEATS: u32 = 3;

impl Presence {
    /// Must be called inside a tokio runtime: starts the task that writes
    /// the sessions' changes.
    pub fn new(db: &Database, instance_id: &str, heartbeat: Duration, foreground: Foreground) -> Self {
        let clients: Collection<PresenceRow> = db.collection("ws_clients");
        let writer = clients.clone();
        Self {
            changes: Batched::start("presence", foreground, move |changes| {
                apply(writer.clone(), changes)
            }),
            clients,
            instances: db.collection("instances"),
            instance_id: instance_id.to_owned(),
            heartbeat,
        }
    }

    async fn change(&self, change: Change) -> Result<(), Arc<DbError>> {
        self.changes
            .call(change)
            .await
            .unwrap_or_else(|| Err(Arc::new(DbError::Stopping)))
    }

    pub fn row(&self, session: &SessionHandle) -> PresenceRow {
        PresenceRow {
            session_id: session.session_id.clone(),
            client_id: session.client_id.clone(),
            user_id: session.user_id(),
            instance_id: self.instance_id.clone(),
            connected_at: session.connected_at,
            remote_addr: session.remote_addr.clone(),
        }
    }

    /// Returns once the row is stored (with the other sessions that
    /// connected meanwhile).
    pub async fn connected(&self, row: PresenceRow) -> Result<(), Arc<DbError>> {
        self.change(Change::Connected(row)).await
    }

    pub async fn authenticated(&self, session_id: &str, user: UserId) -> Result<(), Arc<DbError>> {
        self.change(Change::Authenticated {
            session_id: session_id.to_owned(),
            user,
        })
        .await
    }

    pub async fn disconnected(&self, session_id: &str) -> Result<(), Arc<DbError>> {
        self.change(Change::Disconnected(session_id.to_owned())).await
    }

    pub async fn count(&self) -> Result<u64, DbError> {
        self.clients
            .count_documents(doc! {})
            .await
            .map_err(DbError::from_driver)
    }

    /// The oldest connections first.
    pub async fn list(&self, limit: u32) -> Result<Vec<PresenceRow>, DbError> {
        self.clients
            .find(doc! {})
            .sort(doc! { "connected_at": 1, "_id": 1 })
            .limit(i64::from(limit))
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// Records that this instance is alive. Returns true when its document
    /// had to be created: either first start, or another instance had given
    /// it up for dead (and removed its rows, which the caller must restore).
    pub async fn beat(&self) -> Result<bool, DbError> {
        let now = bson::DateTime::now();
        let result = self
            .instances
            .update_one(
                doc! { "_id": &self.instance_id },
                doc! {
                    "$set": { "heartbeat_at": now },
                    "$setOnInsert": { "started_at": now, "version": env!("CARGO_PKG_VERSION") },
                },
            )
            .upsert(true)
            .await
            .map_err(DbError::from_driver)?;
        Ok(result.upserted_id.is_some())
    }

    /// Puts back the rows of live sessions (after this instance was reaped).
    pub async fn restore(&self, rows: &[PresenceRow]) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        match self.clients.insert_many(rows).ordered(false).await {
            Ok(_) => Ok(()),
            Err(err) if is_duplicate_key(&err) => Ok(()),
            Err(err) => Err(DbError::from_driver(err)),
        }
    }

    /// Removes the rows of instances that stopped beating; returns how many rows.
    pub async fn reap(&self) -> Result<u64, DbError> {
        let expiry = self.heartbeat * MISSED_BEATS;
        let cutoff = Utc::now() - chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::MAX);
        let cutoff = bson::DateTime::from_chrono(cutoff);
        let dead: Vec<Document> = self
            .instances
            .find(doc! { "heartbeat_at": { "$lt": cutoff }, "_id": { "$ne": &self.instance_id } })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let mut removed = 0;
        for instance in dead {
            let Ok(id) = instance.get_str("_id") else {
                continue;
            };
            // Rows first: if we crash in between, the instance document is
            // still there for the next reaper to find.
            let deleted = self
                .clients
                .delete_many(doc! { "instance_id": id })
                .await
                .map_err(DbError::from_driver)?;
            self.instances
                .delete_one(doc! { "_id": id, "heartbeat_at": { "$lt": cutoff } })
                .await
                .map_err(DbError::from_driver)?;
            tracing::info!(
                instance = id,
                clients = deleted.deleted_count,
                "removed the clients of an instance that stopped heartbeating"
            );
            removed += deleted.deleted_count;
        }
        Ok(removed)
    }

    /// On a clean stop: this instance's rows and heartbeat go at once.
    pub async fn leave(&self) -> Result<(), DbError> {
        self.clients
            .delete_many(doc! { "instance_id": &self.instance_id })
            .await
            .map_err(DbError::from_driver)?;
        self.instances
            .delete_one(doc! { "_id": &self.instance_id })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}

/// Applies a batch of changes in order: each run of one kind is one command.
async fn apply(clients: Collection<PresenceRow>, changes: Vec<Change>) -> Vec<Result<(), Arc<DbError>>> {
    let mut results = Vec::with_capacity(changes.len());
    let mut changes = changes.into_iter().peekable();
    while let Some(first) = changes.next() {
        let result = match first {
            Change::Connected(row) => {
                let mut rows = vec![row];
                while let Some(Change::Connected(row)) =
                    changes.next_if(|c| matches!(c, Change::Connected(_)))
                {
                    rows.push(row);
                }
                let count = rows.len();
                let inserted = match clients.insert_many(rows).ordered(false).await {
                    Ok(_) => Ok(()),
                    // Re-inserted by a heartbeat resync already: the row is there.
                    Err(err) if only_duplicate_keys(&err) => Ok(()),
                    Err(err) => Err(Arc::new(DbError::from_driver(err))),
                };
                results.extend(std::iter::repeat_n(inserted, count));
                continue;
            }
            Change::Disconnected(session_id) => {
                let mut ids = vec![session_id];
                while let Some(Change::Disconnected(id)) =
                    changes.next_if(|c| matches!(c, Change::Disconnected(_)))
                {
                    ids.push(id);
                }
                let count = ids.len();
                let deleted = clients
                    .delete_many(doc! { "_id": { "$in": ids } })
                    .await
                    .map(drop)
                    .map_err(|err| Arc::new(DbError::from_driver(err)));
                results.extend(std::iter::repeat_n(deleted, count));
                continue;
            }
            // Rare (an `auth` message after connecting): one update each.
            Change::Authenticated { session_id, user } => clients
                .update_one(doc! { "_id": session_id }, doc! { "$set": { "user_id": user.0 } })
                .await
                .map(drop)
                .map_err(|err| Arc::new(DbError::from_driver(err))),
        };
        results.push(result);
    }
    results
}
