//! The message log's writer: one task that takes the sessions' entries at
//! once and offers them to the database one batch at a time, oldest first.
//!
//! What waits is, in order: the batch being offered, the spill file's
//! entries, the entries in memory. New entries join memory while the file
//! is empty and the file otherwise; memory past its limit moves to the file
//! whole. So the next batch is always the oldest entries not written, and
//! a batch the database refused for a while is offered again (same `_id`s:
//! a retry after a lost answer finds its entries written and moves on).

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::RawDocumentBuf;
use mongodb::error::ErrorKind;
use mongodb::Collection;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::spill::Spill;
use super::LogEntry;
use crate::db::{DbError, DUPLICATE_KEY};
use crate::hub::batch::Foreground;
use crate::observability::series::{WS_LOG_ENTRIES, WS_LOG_SPILLED};

/// Largest batch per `insert_many`: far below 16 MiB, and short enough
/// (tens of milliseconds on a busy single-node database) not to hold a
/// connecting client's round trip long behind it.
const BATCH: usize = 200;

/// Longest a batch waits for the foreground's round trips to end. Under a
/// reconnect storm they follow each other without a gap and the log all
/// but stops (it waits in memory and the spill file) until the storm is
/// over: 5000 clients connected in 3.0 s with 2 s here, 6.0 s with 0.25 s
/// (`make bench-ws`). The bound keeps the log moving, at one batch per 2 s
/// at least, under foreground work that never ends.
const YIELD_AT_MOST: Duration = Duration::from_millis(2000);

/// How long one `insert_many` may take before it is offered again.
const INSERT_TIMEOUT: Duration = Duration::from_secs(30);

/// After a stop, how long the database gets to take what waits; the rest
/// stays in the spill file for the next start. Below the hub's 5 s.
const STOP_GRACE: Duration = Duration::from_secs(4);

pub(super) struct Limits {
    pub in_memory: usize,
    pub spill_dir: PathBuf,
    pub instance_id: String,
    pub foreground: Foreground,
}

/// The receiving end, run by [`LogWriter::write_forever`].
pub struct LogWriter {
    rx: mpsc::Receiver<LogEntry>,
    collection: Collection<RawDocumentBuf>,
    limits: Limits,
    dropped: Arc<AtomicU64>,
    stop: Arc<Notify>,
}

impl LogWriter {
    pub(super) fn new(
        rx: mpsc::Receiver<LogEntry>,
        collection: Collection<RawDocumentBuf>,
        limits: Limits,
        dropped: Arc<AtomicU64>,
        stop: Arc<Notify>,
    ) -> Self {
        Self {
            rx,
            collection,
            limits,
            dropped,
            stop,
        }
    }

    #[tracing::instrument(name = "message_log", skip_all)]
    pub async fn write_forever(mut self) {
        let mut backlog = Backlog {
            memory: VecDeque::new(),
            spill: self.open_spill(),
            in_memory: self.limits.in_memory,
            dropped: self.dropped.clone(),
        };
        backlog.report();
        let mut received = Vec::with_capacity(BATCH);
        let mut offered: Option<Offer> = None;
        let mut open = true;
        let mut deadline: Option<Instant> = None;
        let mut refusals = 0u32;
        loop {
            if offered.is_none() {
                match backlog.next() {
                    Some(batch) => {
                        offered = Some(Offer::now(&self.collection, &self.limits.foreground, batch))
                    }
                    None if !open => break,
                    None => {}
                }
            }
            let insert = async {
                match offered.as_mut() {
                    Some(offer) => offer.attempt.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let give_up = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
            tokio::select! {
                count = self.rx.recv_many(&mut received, BATCH), if open => {
                    if count == 0 {
                        open = false;
                    } else {
                        let docs = received.drain(..).filter_map(|e| backlog.encode(&e)).collect();
                        backlog.push(docs);
                    }
                }
                () = self.stop.notified(), if deadline.is_none() => {
                    // What is already queued is still received, then `None`.
                    self.rx.close();
                    deadline = Some(Instant::now() + STOP_GRACE);
                }
                outcome = insert => {
                    let offer = offered.take().expect("an offer was awaited");
                    match outcome {
                        Outcome::Written { refused } => {
                            if refusals > 0 {
                                tracing::info!(attempts = refusals + 1, "the database takes message log entries again");
                                refusals = 0;
                            }
                            backlog.written(offer.batch, refused);
                        }
                        Outcome::Retry(reason) => {
                            refusals += 1;
                            // The first refusal, then every 30th (a minute or more apart).
                            if refusals == 1 || refusals.is_multiple_of(30) {
                                tracing::warn!(reason, refusals, waiting = backlog.waiting(), "the database does not take message log entries; they wait (and spill to disk)");
                            }
                            offered = Some(offer.again(&self.collection, &self.limits.foreground, refusals));
                        }
                    }
                }
                () = give_up => {
                    backlog.keep_for_next_start(offered.take().map(|offer| offer.batch));
                    backlog.report();
                    return;
                }
            }
            backlog.report();
        }
        backlog.close();
        tracing::debug!("message log flushed");
    }

    fn open_spill(&self) -> Option<Spill> {
        match Spill::open(&self.limits.spill_dir, &self.limits.instance_id) {
            Ok((spill, adopted)) => {
                if adopted > 0 {
                    tracing::info!(
                        entries = adopted,
                        "message log entries left by an earlier run are written first"
                    );
                }
                Some(spill)
            }
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    dir = %self.limits.spill_dir.display(),
                    "the message log cannot spill to disk: while the database falls behind, entries beyond --ws-log-buffer are dropped"
                );
                None
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// What waits for the database after the batch being offered: the spill
/// file's entries, then memory's (one of the two is empty).
struct Backlog {
    memory: VecDeque<RawDocumentBuf>,
    spill: Option<Spill>,
    in_memory: usize,
    dropped: Arc<AtomicU64>,
}

struct Batch {
    docs: Arc<Vec<RawDocumentBuf>>,
    /// Where the batch ends in the spill file, when it was read from it.
    spilled_until: Option<u64>,
}

impl Backlog {
    fn encode(&self, entry: &LogEntry) -> Option<RawDocumentBuf> {
        let encoded = mongodb::bson::to_vec(entry)
            .map_err(|e| e.to_string())
            .and_then(|bytes| RawDocumentBuf::from_bytes(bytes).map_err(|e| e.to_string()));
        match encoded {
            Ok(doc) => Some(doc),
            Err(err) => {
                tracing::error!(error = err, kind = %entry.kind, "a message log entry did not encode; dropped");
                self.lost(1);
                None
            }
        }
    }

    fn spill_has_waiting(&self) -> bool {
        self.spill.as_ref().is_some_and(Spill::has_waiting)
    }

    fn waiting(&self) -> u64 {
        self.memory.len() as u64 + self.spill.as_ref().map_or(0, Spill::waiting)
    }

    fn push(&mut self, docs: Vec<RawDocumentBuf>) {
        if self.spill_has_waiting() {
            self.spill_out(docs);
            return;
        }
        self.memory.extend(docs);
        if self.memory.len() <= self.in_memory {
            return;
        }
        if self.spill.is_some() {
            let all: Vec<_> = self.memory.drain(..).collect();
            self.spill_out(all);
        } else {
            let excess = self.memory.len() - self.in_memory;
            self.memory.truncate(self.in_memory);
            self.lost(excess as u64);
        }
    }

    fn spill_out(&mut self, docs: Vec<RawDocumentBuf>) {
        let count = docs.len() as u64;
        let appended = match &mut self.spill {
            Some(spill) => spill.append(&docs),
            None => Err(std::io::Error::other("no spill file")),
        };
        match appended {
            Ok(()) => ::metrics::counter!(WS_LOG_ENTRIES, "outcome" => "spilled").increment(count),
            Err(err) => {
                tracing::error!(error = %err, entries = count, "message log entries could not spill to disk; dropped");
                self.lost(count);
            }
        }
    }

    /// The oldest entries not offered yet.
    fn next(&mut self) -> Option<Batch> {
        if let Some(spill) = self.spill.as_mut().filter(|s| s.has_waiting()) {
            match spill.read(BATCH) {
                Ok(Some(chunk)) => {
                    return Some(Batch {
                        docs: Arc::new(chunk.docs),
                        spilled_until: Some(chunk.end),
                    })
                }
                Ok(None) => {}
                Err(err) => {
                    let lost = spill.discard_unread();
                    tracing::error!(error = %err, entries = lost, "the message log's spill file is unreadable; its entries are lost");
                    self.lost(lost);
                }
            }
        }
        if self.memory.is_empty() {
            return None;
        }
        let count = self.memory.len().min(BATCH);
        Some(Batch {
            docs: Arc::new(self.memory.drain(..count).collect()),
            spilled_until: None,
        })
    }

    fn written(&mut self, batch: Batch, refused: u64) {
        let count = batch.docs.len() as u64;
        ::metrics::counter!(WS_LOG_ENTRIES, "outcome" => "written").increment(count - refused);
        self.lost(refused);
        if let (Some(end), Some(spill)) = (batch.spilled_until, self.spill.as_mut()) {
            spill.commit(end, batch.docs.len());
        }
    }

    /// At the end of a stop's grace: everything not written goes to the
    /// spill file, oldest first, for the next start to write.
    fn keep_for_next_start(&mut self, offered: Option<Batch>) {
        let unwritten = offered.filter(|b| b.spilled_until.is_none());
        if let Some(batch) = unwritten {
            let kept = match &mut self.spill {
                Some(spill) => spill.prepend(&batch.docs),
                None => Err(std::io::Error::other("no spill file")),
            };
            if let Err(err) = kept {
                tracing::error!(error = %err, entries = batch.docs.len(), "message log entries could not be kept for the next start; dropped");
                self.lost(batch.docs.len() as u64);
            }
        }
        let rest: Vec<_> = self.memory.drain(..).collect();
        if !rest.is_empty() {
            self.spill_out(rest);
        }
        self.close();
    }

    fn close(&mut self) {
        if let Some(spill) = self.spill.take() {
            spill.close();
        }
    }

    fn lost(&self, count: u64) {
        super::count_dropped(&self.dropped, count);
    }

    fn report(&self) {
        let spilled = self.spill.as_ref().map_or(0, Spill::waiting);
        ::metrics::gauge!(WS_LOG_SPILLED).set(spilled as f64);
    }
}

enum Outcome {
    /// Taken, but for `refused` entries the database will never take
    /// (counted as dropped).
    Written { refused: u64 },
    /// Not taken now: offer the same batch again later.
    Retry(String),
}

/// A batch and its current attempt to be written.
struct Offer {
    batch: Batch,
    attempt: Pin<Box<dyn Future<Output = Outcome> + Send>>,
}

impl Offer {
    fn now(collection: &Collection<RawDocumentBuf>, foreground: &Foreground, batch: Batch) -> Self {
        Self::after(collection, foreground, batch, Duration::ZERO)
    }

    fn again(self, collection: &Collection<RawDocumentBuf>, foreground: &Foreground, refusals: u32) -> Self {
        // 0.5 s doubling to 2 s: the spill file keeps memory flat meanwhile.
        let wait = Duration::from_millis(250 << refusals.min(3));
        Self::after(collection, foreground, self.batch, wait)
    }

    fn after(
        collection: &Collection<RawDocumentBuf>,
        foreground: &Foreground,
        batch: Batch,
        wait: Duration,
    ) -> Self {
        let collection = collection.clone();
        let foreground = foreground.clone();
        let docs = batch.docs.clone();
        let attempt = Box::pin(async move {
            tokio::time::sleep(wait).await;
            foreground.quiet(YIELD_AT_MOST).await;
            insert(&collection, &docs).await
        });
        Self { batch, attempt }
    }
}

async fn insert(collection: &Collection<RawDocumentBuf>, docs: &[RawDocumentBuf]) -> Outcome {
    let result = tokio::time::timeout(INSERT_TIMEOUT, collection.insert_many(docs).ordered(false)).await;
    let err = match result {
        Err(_) => return Outcome::Retry("timed out".into()),
        Ok(Ok(_)) => return Outcome::Written { refused: 0 },
        Ok(Err(err)) => err,
    };
    if let ErrorKind::InsertMany(failure) = &*err.kind {
        if failure.write_concern_error.is_none() {
            // Each entry either went in, was in already (an earlier attempt
            // whose answer was lost), or can never go in.
            let refused = failure.write_errors.as_ref().map_or(0, |errors| {
                errors
                    .iter()
                    .filter(|e| e.code != DUPLICATE_KEY)
                    .inspect(|e| {
                        tracing::error!(
                            code = e.code,
                            message = e.message,
                            "the database refused a message log entry; dropped"
                        );
                    })
                    .count() as u64
            });
            return Outcome::Written { refused };
        }
    }
    match &*err.kind {
        // The driver's own refusal, before anything was sent: it would
        // refuse again.
        ErrorKind::InvalidArgument { .. } | ErrorKind::BsonSerialization(_) => {
            tracing::error!(error = %err, entries = docs.len(), "a batch of message log entries cannot be sent; dropped");
            Outcome::Written {
                refused: docs.len() as u64,
            }
        }
        // The server away, a failover, a command refused as a whole: the
        // batch waits, in the spill file, however long it takes.
        _ => Outcome::Retry(DbError::from_driver(err).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;
    use std::sync::atomic::Ordering;

    struct Numbers(i32);

    impl Numbers {
        fn take(&mut self, count: i32) -> Vec<RawDocumentBuf> {
            let docs = (self.0..self.0 + count).map(|n| rawdoc! { "n": n }).collect();
            self.0 += count;
            docs
        }
    }

    fn numbers(batch: &Batch) -> Vec<i32> {
        batch.docs.iter().map(|d| d.get_i32("n").unwrap()).collect()
    }

    fn spilling(dir: &std::path::Path, instance: &str) -> Backlog {
        Backlog {
            memory: VecDeque::new(),
            spill: Some(Spill::open(dir, instance).unwrap().0),
            in_memory: 3,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    #[test]
    fn batches_are_always_the_oldest_entries_whether_in_memory_or_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let mut backlog = spilling(dir.path(), "a");
        let mut entries = Numbers(0);
        let mut written = Vec::new();

        backlog.push(entries.take(2));
        let offered = backlog.next().unwrap();
        assert_eq!(offered.spilled_until, None, "in memory while the file is empty");
        // The database is slow: memory overflows into the file, and what
        // follows joins the file behind it.
        backlog.push(entries.take(5));
        assert!(backlog.memory.is_empty() && backlog.spill_has_waiting());
        backlog.push(entries.take(2));
        written.extend(numbers(&offered));
        backlog.written(offered, 0);

        let from_file = backlog.next().unwrap();
        assert!(from_file.spilled_until.is_some());
        backlog.push(entries.take(1));
        written.extend(numbers(&from_file));
        backlog.written(from_file, 0);
        let last_spilled = backlog.next().unwrap();
        written.extend(numbers(&last_spilled));
        backlog.written(last_spilled, 0);
        assert!(!backlog.spill_has_waiting(), "the file is emptied");

        backlog.push(entries.take(2));
        let again_in_memory = backlog.next().unwrap();
        assert_eq!(again_in_memory.spilled_until, None);
        written.extend(numbers(&again_in_memory));
        assert_eq!(written, (0..12).collect::<Vec<_>>());
        assert!(backlog.next().is_none());
        assert_eq!(backlog.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_stop_keeps_the_offered_batch_in_front_of_what_spilled_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut backlog = spilling(dir.path(), "stopping");
        let mut entries = Numbers(0);
        backlog.push(entries.take(2));
        let offered = backlog.next().unwrap();
        backlog.push(entries.take(4)); // spilled
        backlog.keep_for_next_start(Some(offered));

        let mut next_start = spilling(dir.path(), "next");
        let batch = next_start.next().unwrap();
        assert_eq!(numbers(&batch), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn without_a_spill_file_memory_keeps_the_oldest_and_counts_the_rest() {
        let mut backlog = Backlog {
            memory: VecDeque::new(),
            spill: None,
            in_memory: 3,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        backlog.push(Numbers(0).take(5));
        assert_eq!(numbers(&backlog.next().unwrap()), [0, 1, 2]);
        assert_eq!(backlog.dropped.load(Ordering::Relaxed), 2);
    }
}
