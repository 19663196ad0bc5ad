//! MongoDB: one client for the process, the migration runner, readiness.
//!
//! The client is created without contacting the server, so vigil can start
//! (and answer `/healthz`) while the database is still down; the driver
//! reconnects by itself and [`health::Readiness`] reports when it is back.

pub mod health;
pub mod migrations;
mod object_id;
pub mod paging;
mod transaction;

use std::time::Duration;

use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::Client;

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

impl Coded for DbError {
    fn code(&self) -> ErrorCode {
        match self {
            DbError::Unavailable(_) => ErrorCode::DatabaseUnavailable,
            DbError::InvalidUri(_) | DbError::Driver(_) | DbError::Malformed(_) => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        matches!(self, DbError::Unavailable(_)).then_some(DATABASE_RETRY_AFTER)
    }
}

impl From<mongodb::error::Error> for DbError {
    fn from(err: mongodb::error::Error) -> Self {
        DbError::from_driver(err)
    }
}

/// True when the driver reports a unique-index violation (E11000).
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    const DUPLICATE_KEY: i32 = 11000;
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

/// The process-wide database handle; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Database {
    client: Client,
    db: mongodb::Database,
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
        let client = Client::with_options(options).map_err(DbError::InvalidUri)?;
        let db = client.database(&settings.name);
        Ok(Self { client, db })
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
}
