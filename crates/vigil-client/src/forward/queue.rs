//! The agent's on-disk queue: one file per alarm, named by a sequence number
//! that only grows, so that the folder's order is the order alarms were
//! raised in and an agent started again picks up where the last one stopped.
//!
//! ```text
//! QUEUE_DIR/
//!   .lock                          held by the running agent (one per folder)
//!   00000000000000000042.alarm     line 1: JSON metadata, then the JPEG bytes
//!   00000000000000000043.alarm
//!   rejected/
//!     00000000000000000017.alarm          refused by the server (bad input)
//!     00000000000000000017.answer.json    and the server's answer
//! ```
//!
//! A file is written whole under a temporary name, flushed to disk, renamed
//! into place and the folder flushed in turn: after a crash or a power cut
//! an alarm is either queued whole or not at all. A file leaves the queue
//! only after the server has stored the alarm (or refused it for good).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_wire::faces::Face;

/// Queued alarms end in this.
pub const SUFFIX: &str = ".alarm";
/// Where alarms the server refused for good go, with its answer beside them.
pub const REJECTED_DIR: &str = "rejected";
const LOCK_FILE: &str = ".lock";
/// Temporary files start with a dot and end in this; a crash can leave one
/// behind, which never made it into the queue and is removed on start.
const TEMP_SUFFIX: &str = ".tmp";

/// An alarm on its way to the central server, as the agent raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlarm {
    /// The moment of capture.
    pub date: DateTime<Utc>,
    /// `agent/camera`, e.g. `door-pi/cam1`.
    pub source: String,
    pub message: Option<String>,
    /// The faces as the agent's detector found them (the server detects
    /// again without them).
    pub faces: Option<Vec<Face>>,
    /// The frame, JPEG.
    pub jpeg: Vec<u8>,
}

/// The first line of a queued file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmMeta {
    pub date: DateTime<Utc>,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<Face>>,
    /// Sent as `Idempotency-Key`, the same on every attempt (and after a
    /// restart), so that a request whose answer was lost is not stored twice.
    pub idempotency_key: String,
    pub queued_at: DateTime<Utc>,
}

/// A queued alarm read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub meta: AlarmMeta,
    pub jpeg: Vec<u8>,
}

/// What [`Queue::front`] found.
#[derive(Debug)]
pub enum Front {
    Empty,
    Entry(Entry),
    /// The oldest file cannot be understood (edited by hand, or written by
    /// something else): it can only be moved aside.
    Unreadable {
        seq: u64,
        error: String,
    },
}

/// What [`Queue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued {
        seq: u64,
    },
    /// The queue was full: the alarm was not kept.
    Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the queue folder {} is in use by another `vigil watch --forward` (give each agent its own --queue-dir)",
        .0.display()
    )]
    Locked(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_owned(),
        source,
    }
}

struct State {
    /// Sequence numbers of the queued files, oldest first.
    pending: VecDeque<u64>,
    next_seq: u64,
}

/// The folder of queued alarms. One process at a time holds it (a lock
/// file); within the process it may be shared between the capture tasks
/// that push and the one sender that takes from the front.
pub struct Queue {
    dir: PathBuf,
    rejected: PathBuf,
    max: usize,
    /// Held while a file is written: only the disk's writers wait on it.
    state: Mutex<State>,
    /// `pending`'s length and the drops, read without waiting for a write
    /// in progress (a slow SD card must not hold up whoever asks).
    len: AtomicUsize,
    /// Alarms not kept because the queue was full, since this queue was opened.
    dropped: AtomicU64,
    /// Held for as long as the queue is open; the system lets go of it
    /// when the process ends, however it ends.
    _lock: File,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.dir)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Opens (creating it if need be) the queue in `dir`, holding at most
    /// `max` alarms, with what an earlier run left in it.
    pub fn open(dir: &Path, max: usize) -> Result<Self, QueueError> {
        let rejected = dir.join(REJECTED_DIR);
        fs::create_dir_all(&rejected).map_err(io_error(&rejected))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(QueueError::Locked(dir.to_owned())),
            Err(TryLockError::Error(source)) => return Err(io_error(&lock_path)(source)),
        }
        let mut pending = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                // Never renamed into place: the alarm was not queued.
                let path = entry.path();
                fs::remove_file(&path).map_err(io_error(&path))?;
            } else if let Some(seq) = sequence(name) {
                pending.push(seq);
            }
        }
        pending.sort_unstable();
        let mut last = pending.last().copied().unwrap_or(0);
        // Names in rejected/ are never reused either.
        for entry in fs::read_dir(&rejected).map_err(io_error(&rejected))? {
            let entry = entry.map_err(io_error(&rejected))?;
            if let Some(seq) = entry.file_name().to_str().and_then(sequence) {
                last = last.max(seq);
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            rejected,
            max: max.max(1),
            len: AtomicUsize::new(pending.len()),
            dropped: AtomicU64::new(0),
            state: Mutex::new(State {
                pending: pending.into(),
                next_seq: last + 1,
            }),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rejected_dir(&self) -> &Path {
        &self.rejected
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Alarms waiting.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Alarms dropped because the queue was full, since it was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the index half-updated: every
        // change to it is one call after the disk is done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(file_name(seq))
    }

    /// Queues an alarm at the back, durably, with a new idempotency key;
    /// when `max` alarms already wait, the new one is dropped and counted.
    /// Blocks on the disk (call it off the async workers).
    pub fn push(&self, alarm: &OutgoingAlarm) -> Result<Pushed, QueueError> {
        // One writer at a time, in sequence order: the sender must never see
        // alarm 8 before alarm 7 is in place.
        let mut state = self.state();
        if state.pending.len() >= self.max {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return Ok(Pushed::Dropped);
        }
        let seq = state.next_seq;
        let meta = AlarmMeta {
            date: alarm.date,
            source: alarm.source.clone(),
            message: alarm.message.clone(),
            faces: alarm.faces.clone(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            queued_at: Utc::now(),
        };
        let mut bytes = serde_json::to_vec(&meta).expect("alarm metadata serialises");
        bytes.push(b'\n');
        bytes.extend_from_slice(&alarm.jpeg);
        write_atomically(&self.dir, &file_name(seq), &bytes)?;
        state.next_seq = seq + 1;
        state.pending.push_back(seq);
        self.len.store(state.pending.len(), Ordering::SeqCst);
        Ok(Pushed::Queued { seq })
    }

    /// The oldest queued alarm. Files that vanished (removed by hand) are
    /// skipped.
    pub fn front(&self) -> Result<Front, QueueError> {
        loop {
            let Some(seq) = self.state().pending.front().copied() else {
                return Ok(Front::Empty);
            };
            let path = self.path(seq);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    self.forget(seq);
                    continue;
                }
                Err(err) => return Err(io_error(&path)(err)),
            };
            return Ok(match parse(&bytes) {
                Ok((meta, jpeg)) => Front::Entry(Entry {
                    seq,
                    meta,
                    jpeg: jpeg.to_vec(),
                }),
                Err(error) => Front::Unreadable { seq, error },
            });
        }
    }

    /// Takes a sent alarm out of the queue.
    pub fn remove(&self, seq: u64) -> Result<(), QueueError> {
        let path = self.path(seq);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(&path)(err)),
        }
        // Or a power cut could bring it back, to be sent twice.
        sync_dir(&self.dir)?;
        self.forget(seq);
        Ok(())
    }

    /// Moves an alarm the server refused for good into `rejected/`, with
    /// `answer` (what the server said) beside it; returns where it went.
    pub fn reject(&self, seq: u64, answer: &serde_json::Value) -> Result<PathBuf, QueueError> {
        let name = file_name(seq);
        let answer_name = format!("{seq:020}.answer.json");
        let mut text = serde_json::to_vec_pretty(answer).expect("JSON serialises");
        text.push(b'\n');
        write_atomically(&self.rejected, &answer_name, &text)?;
        let (from, to) = (self.path(seq), self.rejected.join(&name));
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(&from)(err)),
        }
        sync_dir(&self.rejected)?;
        sync_dir(&self.dir)?;
        self.forget(seq);
        Ok(to)
    }

    fn forget(&self, seq: u64) {
        let mut state = self.state();
        if let Some(i) = state.pending.iter().position(|s| *s == seq) {
            state.pending.remove(i);
        }
        self.len.store(state.pending.len(), Ordering::SeqCst);
    }
}

fn file_name(seq: u64) -> String {
    // Twenty digits: every u64, and names sort as numbers do.
    format!("{seq:020}{SUFFIX}")
}

/// `00000000000000000042.alarm` → 42.
fn sequence(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A queued file: the metadata line, then the JPEG.
fn parse(bytes: &[u8]) -> Result<(AlarmMeta, &[u8]), String> {
    let newline = bytes.iter().position(|b| *b == b'\n').ok_or("no metadata line")?;
    let meta: AlarmMeta =
        serde_json::from_slice(&bytes[..newline]).map_err(|e| format!("bad metadata: {e}"))?;
    let jpeg = &bytes[newline + 1..];
    if jpeg.is_empty() {
        return Err("no image".into());
    }
    Ok((meta, jpeg))
}

/// `dir/name` holds `bytes` whole, or is not there: written under a
/// temporary name, flushed, renamed, and the folder flushed.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), QueueError> {
    let temp = dir.join(format!(".{name}{TEMP_SUFFIX}"));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&temp)(err));
    }
    let path = dir.join(name);
    if let Err(err) = fs::rename(&temp, &path) {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&path)(err));
    }
    sync_dir(dir)
}

/// Makes a folder's entries (a rename, a removal) survive a power cut.
fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(n: u32) -> OutgoingAlarm {
        OutgoingAlarm {
            date: DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).unwrap(),
            source: format!("pi/cam{n}"),
            message: Some(format!("alarm {n}")),
            faces: Some(Vec::new()),
            jpeg: vec![0xff, 0xd8, b'\n', n as u8, 0xff, 0xd9],
        }
    }

    fn entry(queue: &Queue) -> Entry {
        match queue.front().unwrap() {
            Front::Entry(entry) => entry,
            other => panic!("expected an entry, got {other:?}"),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn alarms_come_out_in_the_order_they_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 100).unwrap();
        assert!(matches!(queue.front().unwrap(), Front::Empty));
        for n in 1..=3 {
            assert_eq!(
                queue.push(&alarm(n)).unwrap(),
                Pushed::Queued { seq: u64::from(n) }
            );
        }
        assert_eq!(queue.len(), 3);
        let mut keys = Vec::new();
        for n in 1..=3 {
            let entry = entry(&queue);
            assert_eq!(entry.seq, u64::from(n));
            assert_eq!(entry.meta.source, format!("pi/cam{n}"));
            assert_eq!(entry.meta.date, alarm(n).date);
            assert_eq!(entry.meta.message, alarm(n).message);
            // The image keeps its bytes, newlines included.
            assert_eq!(entry.jpeg, alarm(n).jpeg);
            // Reading the front again gives the same alarm, same key.
            assert_eq!(self::entry(&queue), entry);
            keys.push(entry.meta.idempotency_key.clone());
            queue.remove(entry.seq).unwrap();
        }
        keys.dedup();
        assert_eq!(keys.len(), 3, "one key per alarm");
        assert!(queue.is_empty());
        assert!(matches!(queue.front().unwrap(), Front::Empty));
    }

    #[test]
    fn each_alarm_is_one_whole_file_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 100).unwrap();
        queue.push(&alarm(1)).unwrap();
        queue.push(&alarm(2)).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                ".lock",
                "00000000000000000001.alarm",
                "00000000000000000002.alarm",
                "rejected"
            ]
        );
        let bytes = fs::read(dir.path().join("00000000000000000001.alarm")).unwrap();
        let (meta, jpeg) = parse(&bytes).unwrap();
        assert_eq!(meta.source, "pi/cam1");
        assert_eq!(jpeg, alarm(1).jpeg);
    }

    #[test]
    fn a_new_run_picks_up_what_the_last_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let key = {
            let queue = Queue::open(dir.path(), 100).unwrap();
            for n in 1..=3 {
                queue.push(&alarm(n)).unwrap();
            }
            let first = entry(&queue);
            queue.remove(first.seq).unwrap();
            entry(&queue).meta.idempotency_key
        };
        // A crash in the middle of a write leaves a temporary file behind.
        fs::write(dir.path().join(".00000000000000000004.alarm.tmp"), b"half").unwrap();
        // And something that is no alarm of ours is left alone.
        fs::write(dir.path().join("notes.txt"), b"mine").unwrap();

        let queue = Queue::open(dir.path(), 100).unwrap();
        assert_eq!(queue.len(), 2);
        let second = entry(&queue);
        assert_eq!((second.seq, second.meta.source.as_str()), (2, "pi/cam2"));
        assert_eq!(second.meta.idempotency_key, key, "the same key after a restart");
        assert_eq!(queue.push(&alarm(9)).unwrap(), Pushed::Queued { seq: 4 });
        assert!(!dir.path().join(".00000000000000000004.alarm.tmp").exists());
        assert!(dir.path().join("notes.txt").exists());
        let order: Vec<u64> = std::iter::from_fn(|| match queue.front().unwrap() {
            Front::Entry(e) => {
                queue.remove(e.seq).unwrap();
                Some(e.seq)
            }
            _ => None,
        })
        .collect();
        assert_eq!(order, [2, 3, 4]);
    }

    #[test]
    fn one_agent_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 10).unwrap();
        let err = Queue::open(dir.path(), 10).unwrap_err();
        assert!(matches!(err, QueueError::Locked(_)), "{err}");
        assert!(err.to_string().contains("--queue-dir"), "{err}");
        drop(queue);
        Queue::open(dir.path(), 10).unwrap();
    }

    #[test]
    fn a_full_queue_drops_the_newest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 2).unwrap();
        assert_eq!(queue.push(&alarm(1)).unwrap(), Pushed::Queued { seq: 1 });
        assert_eq!(queue.push(&alarm(2)).unwrap(), Pushed::Queued { seq: 2 });
        assert_eq!(queue.push(&alarm(3)).unwrap(), Pushed::Dropped);
        assert_eq!(queue.push(&alarm(4)).unwrap(), Pushed::Dropped);
        assert_eq!((queue.len(), queue.dropped()), (2, 2));
        // The oldest are kept.
        assert_eq!(entry(&queue).meta.source, "pi/cam1");
        queue.remove(1).unwrap();
        assert_eq!(queue.push(&alarm(5)).unwrap(), Pushed::Queued { seq: 3 });
        assert_eq!(
            names(dir.path()),
            [
                ".lock",
                "00000000000000000002.alarm",
                "00000000000000000003.alarm",
                "rejected"
            ]
        );

        // A run that finds more than its bound keeps them all, and queues
        // nothing new until the queue is below it.
        drop(queue);
        let queue = Queue::open(dir.path(), 1).unwrap();
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.push(&alarm(6)).unwrap(), Pushed::Dropped);
    }

    #[test]
    fn refused_alarms_go_aside_with_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 10).unwrap();
        queue.push(&alarm(1)).unwrap();
        queue.push(&alarm(2)).unwrap();
        let answer = serde_json::json!({"status": 422, "body": {"error": {"code": "x", "message": "y"}}});
        let moved = queue.reject(1, &answer).unwrap();
        assert_eq!(moved, dir.path().join("rejected/00000000000000000001.alarm"));
        assert_eq!(
            names(&dir.path().join(REJECTED_DIR)),
            ["00000000000000000001.alarm", "00000000000000000001.answer.json"]
        );
        let kept: serde_json::Value = serde_json::from_slice(
            &fs::read(dir.path().join("rejected/00000000000000000001.answer.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(kept, answer);
        // The alarm is whole in rejected/, to be looked at or sent by hand.
        let bytes = fs::read(&moved).unwrap();
        let (meta, jpeg) = parse(&bytes).unwrap();
        assert_eq!((meta.source.as_str(), jpeg), ("pi/cam1", &alarm(1).jpeg[..]));
        assert_eq!(entry(&queue).seq, 2);
        assert_eq!(queue.len(), 1);

        // A number in rejected/ is not given again, even once the queue is
        // empty and opened anew.
        queue.remove(2).unwrap();
        drop(queue);
        let queue = Queue::open(dir.path(), 10).unwrap();
        assert_eq!(queue.push(&alarm(3)).unwrap(), Pushed::Queued { seq: 2 });
        queue.reject(2, &answer).unwrap();
        drop(queue);
        let queue = Queue::open(dir.path(), 10).unwrap();
        assert_eq!(queue.push(&alarm(4)).unwrap(), Pushed::Queued { seq: 3 });
    }

    #[test]
    fn an_unreadable_file_is_reported_and_vanished_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 10).unwrap();
        for n in 1..=3 {
            queue.push(&alarm(n)).unwrap();
        }
        fs::remove_file(dir.path().join("00000000000000000001.alarm")).unwrap();
        fs::write(
            dir.path().join("00000000000000000002.alarm"),
            b"{not json\n\xff\xd8",
        )
        .unwrap();
        match queue.front().unwrap() {
            Front::Unreadable { seq, error } => {
                assert_eq!(seq, 2);
                assert!(error.contains("metadata"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        queue
            .reject(2, &serde_json::json!({"error": "unreadable"}))
            .unwrap();
        assert_eq!(entry(&queue).seq, 3);
        assert_eq!(queue.len(), 1);
    }
}
