//! Readiness: is the database answering and is the schema in place?
//!
//! A background task pings MongoDB every few seconds. The driver reconnects on
//! its own; this task only observes, applies migrations the first time the
//! database is reachable, and publishes the result for `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::migrations::{MigrationError, MigrationSet, Migrator};
use super::Database;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyState {
    /// No health check has completed yet.
    Starting,
    Ready,
    DatabaseDown(String),
    /// Migrations cannot be applied; needs an operator, not a retry.
    MigrationFailed(String),
}

/// Shared, cheaply readable readiness state.
#[derive(Clone)]
pub struct Readiness {
    tx: Arc<watch::Sender<ReadyState>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(ReadyState::Starting).0),
        }
    }

    pub fn current(&self) -> ReadyState {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ReadyState> {
        self.tx.subscribe()
    }

    fn set(&self, state: ReadyState) {
        self.tx.send_if_modified(|current| {
            if *current == state {
                return false;
            }
            match &state {
                ReadyState::Ready => tracing::info!("database ready"),
                ReadyState::DatabaseDown(reason) => tracing::warn!(%reason, "database not reachable"),
                ReadyState::MigrationFailed(reason) => tracing::error!(%reason, "migrations failed"),
                ReadyState::Starting => {}
            }
            *current = state;
            true
        });
    }
}

/// Watches the database until the process ends.
pub struct HealthMonitor {
    pub db: Database,
    pub migrations: Arc<MigrationSet>,
    pub readiness: Readiness,
    pub instance_id: String,
    pub interval: Duration,
    /// Upper bound for one ping, so a hung connection still flips readiness.
    pub ping_timeout: Duration,
    /// True when startup already applied the migrations.
    pub migrated: bool,
}

impl HealthMonitor {
    pub async fn run(mut self) {
        loop {
            let state = self.check().await;
            self.readiness.set(state);
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn check(&mut self) -> ReadyState {
        match tokio::time::timeout(self.ping_timeout, self.db.ping()).await {
            Err(_) => {
                return ReadyState::DatabaseDown(format!("ping timed out after {:?}", self.ping_timeout))
            }
            Ok(Err(err)) => return ReadyState::DatabaseDown(err.to_string()),
            Ok(Ok(())) => {}
        }
        if !self.migrated {
            let migrator = Migrator::new(&self.db, &self.migrations, self.instance_id.clone());
            match migrator.run().await {
                Ok(_) => self.migrated = true,
                Err(MigrationError::Db(err)) => return ReadyState::DatabaseDown(err.to_string()),
                Err(err) => return ReadyState::MigrationFailed(err.to_string()),
            }
        }
        ReadyState::Ready
    }
}
