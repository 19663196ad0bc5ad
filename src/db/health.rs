//! Readiness: is the database answering and is the schema in place?
//!
//! A background task pings MongoDB every few seconds, and at once when the
//! driver has seen the server go or come back. The driver reconnects on its
//! own; this task only observes, applies migrations the first time the
//! database is reachable, and publishes the result for `/readyz` and for
//! the gate that answers 503 at once while the database is away.

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

    /// True while the last health check found the database unreachable.
    pub fn database_down(&self) -> bool {
        matches!(*self.tx.borrow(), ReadyState::DatabaseDown(_))
    }

    /// Resolves when the database is found unreachable (at once if it is).
    pub async fn until_database_down(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`: wait_for cannot fail here.
        let _ = rx
            .wait_for(|state| matches!(state, ReadyState::DatabaseDown(_)))
            .await;
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

/// How long a ping may take when the driver has just seen the server go:
/// readiness (and with it every request that needs the database) turns to
/// 503 within about this long of an outage.
const SUSPECT_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The pause between pings while the database is down. A ping waiting for
/// the server keeps the driver probing it every half second, so its return
/// is seen within a second.
const DOWN_RETRY: Duration = Duration::from_millis(100);

impl HealthMonitor {
    pub async fn run(mut self) {
        let mut suspect = false;
        loop {
            let timeout = if suspect {
                self.ping_timeout.min(SUSPECT_PING_TIMEOUT)
            } else {
                self.ping_timeout
            };
            let state = self.check(timeout).await;
            let wait = match state {
                ReadyState::DatabaseDown(_) => DOWN_RETRY,
                _ => self.interval,
            };
            self.readiness.set(state);
            suspect = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = self.db.reachability_changed() => true,
            };
        }
    }

    async fn check(&mut self, ping_timeout: Duration) -> ReadyState {
        match tokio::time::timeout(ping_timeout, self.db.ping()).await {
            Err(_) => return ReadyState::DatabaseDown(format!("ping timed out after {ping_timeout:?}")),
            Ok(Err(err)) => return ReadyState::DatabaseDown(err.to_string()),
            Ok(Ok(())) => {}
        }
        if let Err(err) = self.db.probe_server().await {
            return ReadyState::DatabaseDown(err.to_string());
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
