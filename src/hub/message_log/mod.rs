//! The log of every WebSocket message in and out (`ws_messages`).
//!
//! Sessions hand entries to a bounded queue with `try_send` and move on; a
//! chatty log must never slow a client down. One writer task ([`writer`])
//! drains it into `insert_many` batches. When the database falls behind,
//! what it has not taken yet waits in memory up to `--ws-log-buffer`
//! entries, then in an append-only file in the data folder ([`spill`]), and
//! is written later, oldest first: nothing is dropped unless the disk fails
//! too. Each entry carries its own `_id` (so that a batch written again
//! after a lost answer is not written twice) and its own `expires_at` (so
//! that the retention can change by configuration without touching the TTL
//! index).
//!
//! A message a session exchanges with its client is one entry naming that
//! session; a broadcast (alarms, telemetry readings, the clock) is one entry
//! listing its `recipients`, not one per recipient: an alarm to 5000
//! subscribers is one document, not 5000.
//!
//! A session's own exchange — what the client sends and what it is answered
//! — is kept in full up to [`LOGGED_IN_FULL`] bytes of frame text; a longer
//! message leaves its beginning, its length and its SHA-256 instead
//! ([`LogPayload::Truncated`]). The client chooses how much that exchange
//! weighs (one `fib` asks for a 21 kB answer), so without the cap it could
//! make the server write megabytes a second into this collection. Broadcasts
//! are kept in full: their size is not the client's to choose, and erasing a
//! subject must find every alarm that named them by its `identities`
//! ([`forget_alarms_naming`]).

mod spill;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::Bson;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Notify};

use vigil_wire::hub::{ClientId, ServerMessage};

use super::topics::SessionHandle;
use crate::db::{Database, DbError};
use crate::users::UserId;

pub use self::writer::LogWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// One logged message. The payload is shared between the entries of a
/// broadcast split in parts, and converted to BSON once.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(flatten)]
    pub to: Addressee,
    pub instance_id: Arc<str>,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: String,
    /// `payload`, or `truncated` for a message over [`LOGGED_IN_FULL`].
    #[serde(flatten)]
    pub payload: LogPayload,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub at: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
}

/// Whom a logged message was exchanged with.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Addressee {
    /// One session's own exchange: its fields sit at the top of the entry.
    Session(Recipient),
    /// A broadcast: every session it reached.
    Broadcast { recipients: Vec<Recipient> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub session_id: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

impl Recipient {
    fn of(session: &SessionHandle) -> Self {
        Self {
            session_id: session.session_id.clone(),
            client_id: session.client_id.to_string(),
            user_id: session.user_id(),
        }
    }
}

/// Most recipients one broadcast entry lists (~100 bytes each): a broadcast
/// to more sessions takes one entry per this many, far below 16 MiB each.
pub const RECIPIENTS_PER_ENTRY: usize = 10_000;

fn shared_bson<S: Serializer>(payload: &Arc<Bson>, s: S) -> Result<S::Ok, S::Error> {
    payload.as_ref().serialize(s)
}

/// Longest frame text, in bytes, a session's message is logged in full with.
/// Every message of the protocol but `fib_result` for large n fits, and so
/// does anything a client sends for a reason (`value`, `number`, `fib`…).
pub const LOGGED_IN_FULL: usize = 1024;

/// How much of a longer message's text its row keeps: enough for its
/// `type`, `id` and `n`.
pub const LOGGED_PREFIX: usize = 256;

/// What a log row keeps of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LogPayload {
    /// The message as a document (a raw string when it was not JSON).
    #[serde(rename = "payload", serialize_with = "shared_bson")]
    Full(Arc<Bson>),
    /// A message over [`LOGGED_IN_FULL`] bytes.
    #[serde(rename = "truncated")]
    Truncated(Truncated),
}

/// The trace a long message leaves: whoever holds the message can check
/// that it is the one logged (same length, same digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncated {
    /// The first [`LOGGED_PREFIX`] bytes of the frame text (fewer when that
    /// would split a character).
    pub prefix: String,
    /// The frame text's length in bytes.
    pub bytes: u64,
    /// SHA-256 of the frame text, lowercase hex.
    pub sha256: String,
}

impl LogPayload {
    /// `text` is the message as it went over the wire; `full` makes its
    /// document, and is called only when the message is short enough to keep.
    pub fn of_frame(text: &str, full: impl FnOnce() -> Bson) -> Self {
        if text.len() <= LOGGED_IN_FULL {
            return LogPayload::Full(Arc::new(full()));
        }
        let mut end = LOGGED_PREFIX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        LogPayload::Truncated(Truncated {
            prefix: text[..end].to_owned(),
            bytes: text.len() as u64,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// A value logged in full, whatever its size.
    pub fn full(value: &impl Serialize) -> Self {
        LogPayload::Full(payload_of(value))
    }
}

#[derive(Clone)]
pub struct MessageLog {
    tx: mpsc::Sender<LogEntry>,
    dropped: Arc<AtomicU64>,
    stop: Arc<Notify>,
    pub instance_id: Arc<str>,
    pub log_clock: bool,
    ttl: chrono::Duration,
}

/// Removes the logged alarm messages that named `subject` (24 hex digits),
/// when that person is erased: the log keeps what was sent, names included.
pub async fn forget_alarms_naming(db: &Database, subject: &str) -> Result<u64, DbError> {
    db.collection::<mongodb::bson::Document>("ws_messages")
        .delete_many(mongodb::bson::doc! { "type": "alarm", "payload.identities.subject_id": subject })
        .await
        .map(|r| r.deleted_count)
        .map_err(DbError::from_driver)
}

/// Entries on their way from the sessions to the writer. The writer moves
/// them on at once (to memory or the spill file), whatever the database
/// does: the queue absorbs a burst between two of its turns, not the
/// database's delays. A full queue drops the entry (and counts it).
const HANDOFF: usize = 8192;

/// Where the message log goes and how much of it may wait in memory.
pub struct LogSettings<'a> {
    pub instance_id: &'a str,
    /// Entries waiting in memory for the database before they spill to disk.
    pub buffer: usize,
    pub ttl_days: u32,
    pub log_clock: bool,
    /// The folder of the spill files (the data folder's `message-log`).
    pub spill_dir: std::path::PathBuf,
    /// Round trips clients wait for, which the writer lets go first.
    pub foreground: super::batch::Foreground,
}

impl MessageLog {
    pub fn new(db: &Database, settings: LogSettings<'_>) -> (Self, LogWriter) {
        let (tx, rx) = mpsc::channel(HANDOFF);
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(Notify::new());
        let log = Self {
            tx,
            dropped: dropped.clone(),
            stop: stop.clone(),
            instance_id: settings.instance_id.into(),
            log_clock: settings.log_clock,
            ttl: chrono::Duration::days(i64::from(settings.ttl_days)),
        };
        let writer = LogWriter::new(
            rx,
            db.collection("ws_messages"),
            writer::Limits {
                in_memory: settings.buffer.max(1),
                spill_dir: settings.spill_dir,
                instance_id: settings.instance_id.to_owned(),
                foreground: settings.foreground,
            },
            dropped,
            stop,
        );
        (log, writer)
    }

    fn entry(&self, to: Addressee, direction: Direction, kind: &str, payload: LogPayload) -> LogEntry {
        let at = Utc::now();
        LogEntry {
            id: ObjectId::new(),
            to,
            instance_id: self.instance_id.clone(),
            direction,
            kind: kind.to_owned(),
            payload,
            at,
            expires_at: at + self.ttl,
        }
    }

    fn push(&self, entry: LogEntry) {
        if self.tx.try_send(entry).is_err() {
            count_dropped(&self.dropped, 1);
        }
    }

    /// Appends a session's own message without waiting.
    pub fn record(
        &self,
        session_id: &str,
        client_id: &ClientId,
        user_id: Option<UserId>,
        direction: Direction,
        kind: &str,
        payload: LogPayload,
    ) {
        let to = Addressee::Session(Recipient {
            session_id: session_id.to_owned(),
            client_id: client_id.to_string(),
            user_id,
        });
        self.push(self.entry(to, direction, kind, payload));
    }

    /// One outgoing entry per broadcast, listing the sessions it reached.
    pub fn record_broadcast(&self, delivered: &[Arc<SessionHandle>], message: &ServerMessage) {
        if delivered.is_empty() {
            return;
        }
        let payload = LogPayload::full(message);
        for part in delivered.chunks(RECIPIENTS_PER_ENTRY) {
            let recipients = part.iter().map(|s| Recipient::of(s)).collect();
            let to = Addressee::Broadcast { recipients };
            self.push(self.entry(to, Direction::Out, message.kind(), payload.clone()));
        }
    }

    /// Entries lost since start: the queue was full, or neither the
    /// database nor the spill file could take them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer to write what is waiting and stop.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// Counts entries lost, for [`MessageLog::dropped`] and the metrics.
fn count_dropped(dropped: &AtomicU64, count: u64) {
    if count > 0 {
        dropped.fetch_add(count, Ordering::Relaxed);
        ::metrics::counter!(crate::observability::series::WS_LOG_ENTRIES, "outcome" => "dropped")
            .increment(count);
    }
}

/// A JSON value as a log payload.
fn payload_of(value: &impl Serialize) -> Arc<Bson> {
    Arc::new(mongodb::bson::to_bson(value).unwrap_or(Bson::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(payload: LogPayload) -> mongodb::bson::Document {
        let at = Utc::now();
        mongodb::bson::to_document(&LogEntry {
            id: ObjectId::new(),
            to: Addressee::Session(Recipient {
                session_id: "s".into(),
                client_id: "c".into(),
                user_id: None,
            }),
            instance_id: "i".into(),
            direction: Direction::Out,
            kind: "fib_result".into(),
            payload,
            at,
            expires_at: at,
        })
        .unwrap()
    }

    #[test]
    fn a_short_message_is_kept_whole() {
        let text = r#"{"type":"fib_result","id":1,"n":10,"value":"55"}"#;
        let entry = row(LogPayload::of_frame(text, || Bson::String("document".into())));
        assert_eq!(entry.get_str("payload").unwrap(), "document");
        assert!(!entry.contains_key("truncated"));

        let exactly = "x".repeat(LOGGED_IN_FULL);
        assert!(matches!(
            LogPayload::of_frame(&exactly, || Bson::Null),
            LogPayload::Full(_)
        ));
    }

    #[test]
    fn a_long_message_leaves_its_beginning_length_and_digest() {
        // Two-byte characters from an odd offset: the cut falls inside one.
        let text = format!("{{\"value\":\"x{}\"}}", "é".repeat(2000));
        let entry = row(LogPayload::of_frame(&text, || panic!("never built")));
        assert!(!entry.contains_key("payload"));
        let truncated = entry.get_document("truncated").unwrap();
        let prefix = truncated.get_str("prefix").unwrap();
        assert!(text.starts_with(prefix));
        assert_eq!(prefix.len(), LOGGED_PREFIX - 1);
        assert_eq!(truncated.get_i64("bytes").unwrap(), text.len() as i64);
        assert_eq!(
            truncated.get_str("sha256").unwrap(),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_eq!(
            entry.get_str("type").unwrap(),
            "fib_result",
            "the rest of the row as ever"
        );
        assert_eq!(
            LogPayload::of_frame(&"a".repeat(LOGGED_IN_FULL + 1), || Bson::Null),
            LogPayload::Truncated(Truncated {
                prefix: "a".repeat(LOGGED_PREFIX),
                bytes: LOGGED_IN_FULL as u64 + 1,
                sha256: hex::encode(Sha256::digest("a".repeat(LOGGED_IN_FULL + 1))),
            })
        );
    }
}
