//! MongoDB: one client for the process, the migration runner, readiness.
//!
//! The client is created without contacting the server, so vigil can start
//! (and answer `/healthz`) while the database is still down; the driver
//! reconnects by itself and [`health::Readiness`] reports when it is back.

pub mod change_feed;
mod command_events;
mod embedding;
pub mod health;
pub mod migrations;
mod object_id;
pub mod paging;
mod transaction;
pub use embedding::StoredEmbedding;
pub use transaction::{
    commit_error, transaction_backoff, Transient, ABANDONED_TRANSACTION_WAIT, TRANSACTION_RETRY_BUDGET,
};

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::event::sdam::SdamEvent;
use mongodb::event::EventHandler;
use mongodb::options::{Acknowledgment, ClientOptions, WriteConcern};
use mongodb::{Client, ServerType};
use tokio::sync::Notify;

use crate::error::{Coded, ErrorCode, DATABASE_RETRY_AFTER};

/// How to reach MongoDB.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub uri: String,
    pub name: String,
    pub pool_size: u32,
    /// How long an operation waits for a usable server before it fails.
    pub server_selection_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid MongoDB connection string: {0}")]
    InvalidUri(#[source] mongodb::error::Error),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] mongodb::error::Error),
    #[error("database error: {0}")]
    Driver(#[source] mongodb::error::Error),
    #[error("stored document is malformed: {0}")]
    Malformed(String),
    /// A commit whose outcome is not known: the writes may be stored. What
    /// they name (images) must be left to the orphan sweep, not removed.
    #[error("database unavailable while committing: {0}")]
    CommitUnknown(#[source] mongodb::error::Error),
    /// The task that talks to the database for many callers has ended:
    /// the process is stopping.
    #[error("the process is stopping")]
    Stopping,
}

impl DbError {
    /// Classifies a driver error: losing the server is not the caller's bug.
    pub fn from_driver(err: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        match *err.kind {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. } => DbError::Unavailable(err),
            _ => DbError::Driver(err),
        }
    }
}

impl DbError {
    /// A unique-index violation: the record is already there.
    pub fn is_duplicate_key(&self) -> bool {
        match self {
            DbError::Driver(e) | DbError::Unavailable(e) => is_duplicate_key(e),
            _ => false,
        }
    }
}

impl Coded for DbError {
    fn code(&self) -> ErrorCode {
        match self {
            DbError::Unavailable(_) | DbError::CommitUnknown(_) | DbError::Stopping => {
                ErrorCode::DatabaseUnavailable
            }
            // Still conflicting when its retries ran out: nothing was
            // stored, and the same request later will go through.
            _ if self.is_transient() => ErrorCode::DatabaseUnavailable,
            DbError::InvalidUri(_) | DbError::Driver(_) | DbError::Malformed(_) => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        (self.code() == ErrorCode::DatabaseUnavailable).then_some(DATABASE_RETRY_AFTER)
    }
}

impl From<mongodb::error::Error> for DbError {
    fn from(err: mongodb::error::Error) -> Self {
        DbError::from_driver(err)
    }
}

/// The server's code for a unique-index violation (E11000).
pub const DUPLICATE_KEY: i32 = 11000;

/// True when the driver reports a unique-index violation (E11000).
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|e| e.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// True when every document an unordered `insert_many` did not insert was
/// there already: each write error a duplicate key, and no write concern
/// error (a single write's duplicate counts too).
pub fn only_duplicate_keys(err: &mongodb::error::Error) -> bool {
    match &*err.kind {
        mongodb::error::ErrorKind::InsertMany(failure) => {
            failure.write_concern_error.is_none()
                && failure
                    .write_errors
                    .as_ref()
                    .is_some_and(|errors| errors.iter().all(|e| e.code == DUPLICATE_KEY))
        }
        _ => is_duplicate_key(err),
    }
}

/// The ids of the documents of `collection` that match `filter`, read
/// without the documents.
pub async fn ids_matching<T: Send + Sync>(
    collection: &mongodb::Collection<T>,
    filter: Document,
) -> Result<Vec<ObjectId>, DbError> {
    use futures_util::TryStreamExt;
    let found: Vec<Document> = collection
        .clone_with_type::<Document>()
        .find(filter)
        .projection(doc! { "_id": 1 })
        .await
        .map_err(DbError::from_driver)?
        .try_collect()
        .await
        .map_err(DbError::from_driver)?;
    Ok(found.iter().filter_map(|d| d.get_object_id("_id").ok()).collect())
}

/// Whether commits need [`Database::journal_barrier`]: not yet known, yes, no.
const BARRIER_UNKNOWN: u8 = 0;
const BARRIER_NEEDED: u8 = 1;
const BARRIER_NOT_NEEDED: u8 = 2;

/// Where [`Database::journal_barrier`] writes: one document per process.
const JOURNAL: &str = "_journal";

/// Every write waits for the majority's journal: an answer that says
/// "stored" must survive the database being killed right after it.
pub fn durable_write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// Wakes [`Database::reachability_changed`] when a server turns usable or
/// unusable in the driver's eyes.
fn reachability_events(notify: Arc<Notify>) -> EventHandler<SdamEvent> {
    let usable = |t: ServerType| !matches!(t, ServerType::Unknown);
    EventHandler::callback(move |event| {
        if let SdamEvent::ServerDescriptionChanged(change) = event {
            if usable(change.previous_description.server_type())
                != usable(change.new_description.server_type())
            {
                notify.notify_one();
            }
        }
    })
}

/// The process-wide database handle; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Database {
    client: Client,
    db: mongodb::Database,
    barrier: Arc<AtomicU8>,
    journal_marker: ObjectId,
    reachability: Arc<Notify>,
}

impl Database {
    /// Builds the client and its pool. Does not wait for the server.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let mut options = ClientOptions::parse(&settings.uri)
            .await
            .map_err(DbError::InvalidUri)?;
        options.app_name = Some("vigil".to_owned());
        options.max_pool_size = Some(settings.pool_size);
        options.server_selection_timeout = Some(settings.server_selection_timeout);
        options.connect_timeout = Some(settings.server_selection_timeout);
        options.write_concern = Some(durable_write_concern());
        let reachability = Arc::new(Notify::new());
        options.sdam_event_handler = Some(reachability_events(reachability.clone()));
        options.command_event_handler = Some(command_events::recorder());
        let client = Client::with_options(options).map_err(DbError::InvalidUri)?;
        let db = client.database(&settings.name);
        Ok(Self {
            client,
            db,
            barrier: Arc::new(AtomicU8::new(BARRIER_UNKNOWN)),
            journal_marker: ObjectId::new(),
            reachability,
        })
    }

    /// Resolves when the driver has seen a server become unusable (an
    /// operation's network error, a failed heartbeat) or usable again: a
    /// hint for [`health::HealthMonitor`] to look now rather than at its
    /// next interval.
    pub async fn reachability_changed(&self) {
        self.reachability.notified().await
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn handle(&self) -> &mongodb::Database {
        &self.db
    }

    pub fn collection<T: Send + Sync>(&self, name: &str) -> mongodb::Collection<T> {
        self.db.collection(name)
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Learns once whether the server honours the write concern of a
    /// transaction's commit. MongoDB does. SecantusDB (0.7) journals single
    /// writes that ask for `j: true` but commits transactions without
    /// syncing its journal, so a commit it acknowledged can be lost to a
    /// SIGKILL; for it every commit is followed by a journal barrier.
    pub async fn probe_server(&self) -> Result<(), DbError> {
        if self.barrier.load(Ordering::Relaxed) != BARRIER_UNKNOWN {
            return Ok(());
        }
        let info = self
            .client
            .database("admin")
            .run_command(doc! { "buildInfo": 1 })
            .await
            .map_err(DbError::from_driver)?;
        let needed = info.contains_key("secantusVersion");
        self.barrier.store(
            if needed {
                BARRIER_NEEDED
            } else {
                BARRIER_NOT_NEEDED
            },
            Ordering::Relaxed,
        );
        if needed {
            tracing::info!(
                "the database does not journal transaction commits; each is followed by a journaled write"
            );
        }
        Ok(())
    }

    /// Makes every write acknowledged so far durable on a server that
    /// commits transactions without syncing its journal: one journaled
    /// write, whose sync flushes the single, sequential journal up to it,
    /// earlier commits included. A no-op once the server is known to
    /// journal commits itself; done when it is not yet known.
    pub async fn journal_barrier(&self) -> Result<(), DbError> {
        if self.barrier.load(Ordering::Relaxed) == BARRIER_NOT_NEEDED {
            return Ok(());
        }
        self.collection::<Document>(JOURNAL)
            .update_one(
                doc! { "_id": self.journal_marker },
                doc! { "$inc": { "commits": 1_i64 } },
            )
            .upsert(true)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}
