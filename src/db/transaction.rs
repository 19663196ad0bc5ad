//! Several writes as one: committed together, or (on any failure on the
//! way) aborted together, so a database failure never leaves half of them.

use std::time::Duration;

use mongodb::error::{Error, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};

use super::DbError;

/// `in_transaction!(db, |session| async { … Ok::<_, DbError>(value) })`:
/// runs the block with `session: &mut ClientSession` inside a transaction
/// and evaluates to `Result<value, DbError>`. A macro rather than a
/// function because the block borrows the session it is given.
/// `in_transaction!(db, E, |session| …)` lets the block fail with its own
/// error type `E: From<DbError> + Transient`;
/// `in_transaction!(db, E, within BUDGET, |session| …)` conflicts for
/// longer than a request would (a background job's [`ABANDONED_TRANSACTION_WAIT`]).
///
/// Transactions that touch the same document (two uploads charging one
/// user) conflict; the loser is run again from the start, for up to
/// [`TRANSACTION_RETRY_BUDGET`], as
/// the drivers' `withTransaction` does. The commit waits for the
/// majority's journal (the client's write concern) and, where the server
/// needs it, for a journal barrier, so `Ok` means durable.
/// [`DbError::CommitUnknown`] means the writes may or may not be stored.
#[macro_export]
macro_rules! in_transaction {
    ($db:expr, |$session:ident| $work:expr) => {
        $crate::in_transaction!($db, $crate::db::DbError, |$session| $work)
    };
    ($db:expr, $err:ty, |$session:ident| $work:expr) => {
        $crate::in_transaction!($db, $err, within $crate::db::TRANSACTION_RETRY_BUDGET, |$session| $work)
    };
    ($db:expr, $err:ty, within $budget:expr, |$session:ident| $work:expr) => {{
        async {
            let budget: std::time::Duration = $budget;
            let mut attempt = 0_u32;
            let started = std::time::Instant::now();
            loop {
                attempt += 1;
                let mut session = $db
                    .client()
                    .start_session()
                    .await
                    .map_err($crate::db::DbError::from_driver)?;
                session
                    .start_transaction()
                    .await
                    .map_err($crate::db::DbError::from_driver)?;
                let result: Result<_, $err> = {
                    let $session: &mut mongodb::ClientSession = &mut session;
                    $work.await
                };
                let result = match result {
                    Ok(value) => match session.commit_transaction().await {
                        Ok(()) => Ok(value),
                        Err(err) => Err(<$err>::from($crate::db::commit_error(err))),
                    },
                    Err(err) => {
                        let _ = session.abort_transaction().await;
                        Err(err)
                    }
                };
                match result {
                    Ok(value) => {
                        $db.journal_barrier()
                            .await
                            .map_err(|e| e.committed_but_unsynced())?;
                        break Ok::<_, $err>(value);
                    }
                    Err(err)
                        if $crate::db::Transient::is_transient(&err)
                            && started.elapsed() < budget =>
                    {
                        tokio::time::sleep($crate::db::transaction_backoff(attempt)).await;
                    }
                    Err(err) => break Err(err),
                }
            }
        }
        .await
    }};
}

/// How long a transaction that keeps conflicting is run again, as the
/// drivers' `withTransaction` does (with a longer budget): a hundred uploads
/// of one user at once all charge the same account document, and every
/// commit but one of a round conflicts.
pub const TRANSACTION_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// How long a background job's transaction keeps trying when it conflicts:
/// past the server's transaction lifetime limit (mongod's
/// `transactionLifetimeLimitSeconds`, 60 s by default). A worker frozen or
/// cut off in the middle of a transaction leaves it open, holding its
/// documents (the user's quota among them), until the server aborts it;
/// the instance that took its job over would otherwise spend every attempt
/// of the job on that one stale transaction. No client waits on a job.
pub const ABANDONED_TRANSACTION_WAIT: Duration = Duration::from_secs(75);

/// The pause before attempt `attempt + 1`: random up to a ceiling that
/// doubles from 2 ms to 64 ms, so that conflicting requests spread out
/// instead of meeting again.
pub fn transaction_backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let ceiling = 1_u64 << attempt.clamp(1, 6);
    Duration::from_micros(rand::thread_rng().gen_range(500..=ceiling * 1000))
}

/// An error after which the whole transaction may simply be run again
/// (a write conflict with a concurrent one, a failover).
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for DbError {
    fn is_transient(&self) -> bool {
        match self {
            // Not a lost server: run again, it would only wait for it.
            DbError::Driver(e) => e.contains_label(TRANSIENT_TRANSACTION_ERROR),
            _ => false,
        }
    }
}

/// A failed commit: aborted, or (when the driver says so) of unknown outcome.
pub fn commit_error(err: Error) -> DbError {
    if err.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) {
        DbError::CommitUnknown(err)
    } else {
        DbError::from_driver(err)
    }
}

impl DbError {
    /// The barrier after a commit failed: the commit stands, its
    /// durability is not known.
    pub fn committed_but_unsynced(self) -> DbError {
        match self {
            DbError::Unavailable(e) | DbError::Driver(e) | DbError::CommitUnknown(e) => {
                DbError::CommitUnknown(e)
            }
            other => other,
        }
    }
}
