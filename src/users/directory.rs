//! Who has an account, and with which role, as every request needs to know:
//! kept in memory on each instance and followed through a change stream on
//! `users`, so that a deleted account's tokens and keys, and a demoted
//! admin's admin rights, stop working on the next request of any instance
//! without a database read on the hot path.
//!
//! The stream is opened before the accounts are loaded, so nothing written
//! between the two is missed; each event states an account's new state,
//! and replaying one the load already saw changes nothing. While the
//! directory is not loaded (at startup, or after the stream was lost and
//! until it is loaded again) every lookup reads the database instead: a gap
//! may cost time, never a stale answer. So does an account the directory
//! does not hold, which may be one created on another instance a moment ago.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::change_stream::ChangeStream;

use super::{Role, UserError, UserId, Users};
use crate::db::{Database, DbError};

type Events = ChangeStream<ChangeStreamEvent<Document>>;

/// The accounts known to this instance; cheap to clone (shared).
#[derive(Clone, Default, Debug)]
pub struct AccountDirectory {
    /// `None` while not loaded.
    accounts: Arc<RwLock<Option<HashMap<UserId, Role>>>>,
}

impl AccountDirectory {
    /// The account's current role, `None` when it does not exist. Read from
    /// the database while the directory is not loaded, and for an account it
    /// does not hold: one registered on another instance a moment ago may
    /// not have reached it yet (a deleted account's requests pay that read;
    /// they are refused either way). The answer is not kept: a deletion
    /// event could come between the read and keeping it.
    pub async fn role(&self, id: UserId, users: &Users) -> Result<Option<Role>, UserError> {
        let known = self
            .accounts
            .read()
            .expect("directory lock")
            .as_ref()
            .and_then(|accounts| accounts.get(&id).copied());
        match known {
            Some(role) => Ok(Some(role)),
            None => Ok(users.find(id).await?.map(|user| user.role)),
        }
    }

    fn replace(&self, accounts: Option<HashMap<UserId, Role>>) {
        *self.accounts.write().expect("directory lock") = accounts;
    }

    fn apply(&self, change: Change) {
        if let Some(accounts) = self.accounts.write().expect("directory lock").as_mut() {
            match change {
                Change::Role(id, role) => {
                    accounts.insert(id, role);
                }
                Change::Gone(id) => {
                    accounts.remove(&id);
                }
            }
        }
    }
}

/// What one event says about one account.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Role(UserId, Role),
    Gone(UserId),
}

/// Keeps an [`AccountDirectory`] current.
#[derive(Clone)]
pub struct DirectorySync {
    pub db: Database,
    pub directory: AccountDirectory,
}

impl DirectorySync {
    /// Every account but role changes and deletions is noise here: the
    /// quota counter changes with every upload.
    async fn open(&self) -> Result<Events, DbError> {
        self.db
            .collection::<Document>("users")
            .watch()
            .pipeline([doc! { "$match": { "$or": [
                { "operationType": { "$in": ["insert", "replace", "delete"] } },
                { "operationType": "update", "updateDescription.updatedFields.role": { "$exists": true } },
            ] } }])
            .await
            .map_err(DbError::from_driver)
    }

    async fn load(&self) -> Result<(), DbError> {
        let rows: Vec<Document> = self
            .db
            .collection::<Document>("users")
            .find(doc! {})
            .projection(doc! { "_id": 1, "role": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let accounts: HashMap<UserId, Role> = rows
            .iter()
            .filter_map(|row| Some((UserId(row.get_object_id("_id").ok()?), role_of(row.get("role"))?)))
            .collect();
        tracing::info!(accounts = accounts.len(), "account directory loaded");
        self.directory.replace(Some(accounts));
        Ok(())
    }

    /// Opens the stream, then loads the accounts.
    pub async fn prepare(&self) -> Result<Events, DbError> {
        let events = self.open().await?;
        self.load().await?;
        Ok(events)
    }

    /// Follows `users` forever (from `first` when startup already loaded
    /// the directory); after a lost stream, lookups go to the database
    /// until the directory is loaded again.
    #[tracing::instrument(name = "account_directory", skip_all)]
    pub async fn run(self, first: Option<Events>) {
        const MAX_BACKOFF: Duration = Duration::from_secs(30);
        let mut backoff = Duration::from_millis(250);
        let mut first = first;
        loop {
            let opened = match first.take() {
                Some(events) => Ok(events),
                None => self.prepare().await,
            };
            let mut events = match opened {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(error = %err, ?backoff, "cannot load the account directory; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(250);
            let failure = loop {
                match events.next().await {
                    Some(Ok(event)) => {
                        if let Some(change) = change_of(&event) {
                            self.directory.apply(change);
                        }
                    }
                    Some(Err(err)) => break err.to_string(),
                    None => break "the stream ended".to_owned(),
                }
            };
            self.directory.replace(None);
            tracing::warn!(error = %failure, "account change stream lost; reloading");
            tokio::time::sleep(backoff).await;
        }
    }
}

fn role_of(value: Option<&Bson>) -> Option<Role> {
    match value? {
        Bson::String(role) => mongodb::bson::from_bson(Bson::String(role.clone())).ok(),
        _ => None,
    }
}

fn change_of(event: &ChangeStreamEvent<Document>) -> Option<Change> {
    let id = UserId(event.document_key.as_ref()?.get_object_id("_id").ok()?);
    match event.operation_type {
        OperationType::Delete => Some(Change::Gone(id)),
        OperationType::Insert | OperationType::Replace => {
            let role = role_of(event.full_document.as_ref()?.get("role"));
            // A document without a valid role grants nothing.
            Some(role.map_or(Change::Gone(id), |role| Change::Role(id, role)))
        }
        OperationType::Update => {
            let update = event.update_description.as_ref()?;
            if update.removed_fields.iter().any(|f| f == "role") {
                return Some(Change::Gone(id));
            }
            let role = role_of(update.updated_fields.get("role"))?;
            Some(Change::Role(id, role))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_as_stored_and_anything_else_is_no_role() {
        assert_eq!(role_of(Some(&Bson::String("admin".into()))), Some(Role::Admin));
        assert_eq!(role_of(Some(&Bson::String("user".into()))), Some(Role::User));
        assert_eq!(role_of(Some(&Bson::String("root".into()))), None);
        assert_eq!(role_of(Some(&Bson::Int32(1))), None);
        assert_eq!(role_of(None), None);
    }

    #[test]
    fn changes_apply_only_to_a_loaded_directory() {
        let directory = AccountDirectory::default();
        let id = UserId(mongodb::bson::oid::ObjectId::new());
        directory.apply(Change::Role(id, Role::Admin));
        assert!(
            directory.accounts.read().unwrap().is_none(),
            "not loaded: lookups read the database"
        );
        directory.replace(Some(HashMap::new()));
        directory.apply(Change::Role(id, Role::Admin));
        assert_eq!(
            directory.accounts.read().unwrap().as_ref().unwrap().get(&id),
            Some(&Role::Admin)
        );
        directory.apply(Change::Role(id, Role::User));
        assert_eq!(
            directory.accounts.read().unwrap().as_ref().unwrap().get(&id),
            Some(&Role::User)
        );
        directory.apply(Change::Gone(id));
        assert!(directory.accounts.read().unwrap().as_ref().unwrap().is_empty());
    }
}
