//! The message log's spill file: entries the database has not taken yet,
//! appended as BSON documents one after the other, read back oldest first.
//!
//! Each instance writes its own file, `<instance id>.spill` in the data
//! folder's `message-log`, and holds an exclusive lock on it for as long as
//! it runs. On start an instance adopts the files no one holds (a crash, a
//! stop with the database away), copying their entries in front of its own:
//! they are older. The file is emptied each time the database has taken
//! everything in it, and removed on a clean stop.
//!
//! No `fsync` per append: the entries describe messages already sent, no
//! client waits on them, and a machine crash loses the page cache's last
//! seconds at most. A stop syncs the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mongodb::bson::RawDocumentBuf;

/// Largest document the file may hold: a log entry is far smaller (a
/// broadcast lists at most 10 000 recipients, ~1 MiB); anything longer is
/// a torn or foreign file.
const LARGEST_ENTRY: usize = 16 * 1024 * 1024;

pub struct Spill {
    path: PathBuf,
    file: File,
    /// Where the oldest entry the database has not confirmed starts.
    committed: u64,
    /// Where the next entry to hand out starts.
    read: u64,
    /// Where the last entry ends.
    end: u64,
    /// Entries between `committed` and `end`.
    waiting: u64,
}

/// Entries handed out for writing, and where they end in the file.
pub struct Chunk {
    pub docs: Vec<RawDocumentBuf>,
    pub end: u64,
}

impl Spill {
    /// Opens (or creates) this instance's file and adopts the orphans of
    /// `dir`; returns it and the number of entries adopted.
    pub fn open(dir: &Path, instance_id: &str) -> io::Result<(Self, u64)> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{instance_id}.spill"));
        let file = open_locked(&path)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process holds this instance's spill file",
            )
        })?;
        file.set_len(0)?;
        let mut spill = Self {
            path,
            file,
            committed: 0,
            read: 0,
            end: 0,
            waiting: 0,
        };
        let adopted = spill.adopt_orphans(dir)?;
        Ok((spill, adopted))
    }

    fn adopt_orphans(&mut self, dir: &Path) -> io::Result<u64> {
        let mut orphans: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "spill") && *path != self.path)
            .map(|path| {
                let modified = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, path)
            })
            .collect();
        orphans.sort();
        let mut adopted = 0;
        for (_, path) in orphans {
            // Held by a running instance (sharing this data folder): its own.
            let Some(mut orphan) = open_locked(&path)? else {
                continue;
            };
            let (docs, torn) = read_all(&mut orphan)?;
            if torn {
                tracing::warn!(file = %path.display(), "the end of a spill file was torn (a crash mid-write); its last entry is lost");
            }
            self.append(&docs)?;
            adopted += docs.len() as u64;
            fs::remove_file(&path)?;
        }
        Ok(adopted)
    }

    /// Entries in the file the database has not confirmed.
    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    pub fn has_waiting(&self) -> bool {
        self.committed < self.end
    }

    /// Appends `docs` whole or not at all.
    pub fn append(&mut self, docs: &[RawDocumentBuf]) -> io::Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(docs.iter().map(|d| d.as_bytes().len()).sum());
        for doc in docs {
            bytes.extend_from_slice(doc.as_bytes());
        }
        let written = self
            .file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&bytes));
        if let Err(err) = written {
            // A partial write would be read back as a torn entry.
            let _ = self.file.set_len(self.end);
            return Err(err);
        }
        self.end += bytes.len() as u64;
        self.waiting += docs.len() as u64;
        Ok(())
    }

    /// Up to `max` entries after those already handed out; `None` when
    /// there are none. An unreadable entry is an error: the caller gives up
    /// the rest with [`Self::discard_unread`].
    pub fn read(&mut self, max: usize) -> io::Result<Option<Chunk>> {
        if self.read >= self.end {
            return Ok(None);
        }
        self.file.seek(SeekFrom::Start(self.read))?;
        let mut reader = BufReader::new((&self.file).take(self.end - self.read));
        let mut docs = Vec::new();
        let mut at = self.read;
        while docs.len() < max && at < self.end {
            let doc = read_one(&mut reader)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            at += doc.as_bytes().len() as u64;
            docs.push(doc);
        }
        self.read = at;
        Ok(Some(Chunk { docs, end: at }))
    }

    /// The database took a chunk: its entries leave the file (all of it
    /// once nothing else waits).
    pub fn commit(&mut self, end: u64, entries: usize) {
        self.committed = end;
        self.waiting = self.waiting.saturating_sub(entries as u64);
        if self.committed >= self.end {
            self.reset();
        }
    }

    /// Gives up every entry not yet handed out; returns how many waited.
    pub fn discard_unread(&mut self) -> u64 {
        let lost = self.waiting;
        self.reset();
        lost
    }

    fn reset(&mut self) {
        if let Err(err) = self.file.set_len(0) {
            tracing::warn!(error = %err, file = %self.path.display(), "could not empty the spill file; it is rewritten from the start");
        }
        self.committed = 0;
        self.read = 0;
        self.end = 0;
        self.waiting = 0;
    }

    /// Puts `docs` in front of everything waiting: at a stop, the batch the
    /// database was still being offered is older than what spilled since.
    pub fn prepend(&mut self, docs: &[RawDocumentBuf]) -> io::Result<()> {
        if !self.has_waiting() {
            self.reset();
            return self.append(docs);
        }
        let next = self.path.with_extension("spill.next");
        let mut rewritten = File::create(&next)?;
        for doc in docs {
            rewritten.write_all(doc.as_bytes())?;
        }
        self.file.seek(SeekFrom::Start(self.committed))?;
        io::copy(&mut (&self.file).take(self.end - self.committed), &mut rewritten)?;
        rewritten.sync_all()?;
        let length = rewritten.metadata()?.len();
        drop(rewritten);
        fs::rename(&next, &self.path)?;
        self.file = open_locked(&self.path)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::WouldBlock, "the rewritten spill file was taken"))?;
        self.committed = 0;
        self.read = 0;
        self.end = length;
        self.waiting += docs.len() as u64;
        Ok(())
    }

    /// On a stop: an empty file goes, one still holding entries is synced
    /// for the next start to adopt.
    pub fn close(self) {
        if self.has_waiting() {
            if let Err(err) = self.file.sync_all() {
                tracing::warn!(error = %err, "could not sync the message log's spill file");
            }
            tracing::info!(
                entries = self.waiting,
                file = %self.path.display(),
                "message log entries left for the next start to write"
            );
        } else if let Err(err) = fs::remove_file(&self.path) {
            tracing::debug!(error = %err, "could not remove the empty spill file");
        }
    }
}

/// The file at `path`, opened for reading and writing and locked; `None`
/// when another process holds it.
fn open_locked(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(err)) => Err(err),
    }
}

/// Every whole entry of a file, and whether it ended inside one.
fn read_all(file: &mut File) -> io::Result<(Vec<RawDocumentBuf>, bool)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let mut docs = Vec::new();
    loop {
        match read_one(&mut reader) {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => return Ok((docs, false)),
            Err(err) if is_torn(&err) => return Ok((docs, true)),
            Err(err) => return Err(err),
        }
    }
}

fn is_torn(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
    )
}

/// The next document, or `None` at a clean end.
fn read_one(reader: &mut impl Read) -> io::Result<Option<RawDocumentBuf>> {
    let mut length = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut length[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let size = i32::from_le_bytes(length);
    let size = usize::try_from(size)
        .ok()
        .filter(|s| (5..=LARGEST_ENTRY).contains(s))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a BSON document length"))?;
    let mut bytes = vec![0u8; size];
    bytes[..4].copy_from_slice(&length);
    reader.read_exact(&mut bytes[4..])?;
    RawDocumentBuf::from_bytes(bytes)
        .map(Some)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;

    fn entries(range: std::ops::Range<i32>) -> Vec<RawDocumentBuf> {
        range.map(|n| rawdoc! { "n": n }).collect()
    }

    fn numbers(docs: &[RawDocumentBuf]) -> Vec<i32> {
        docs.iter().map(|d| d.get_i32("n").unwrap()).collect()
    }

    #[test]
    fn entries_come_back_in_order_and_leave_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spill, adopted) = Spill::open(dir.path(), "a").unwrap();
        assert_eq!(adopted, 0);
        spill.append(&entries(0..5)).unwrap();
        let first = spill.read(3).unwrap().unwrap();
        assert_eq!(numbers(&first.docs), [0, 1, 2]);
        spill.append(&entries(5..7)).unwrap();
        let second = spill.read(10).unwrap().unwrap();
        assert_eq!(numbers(&second.docs), [3, 4, 5, 6]);
        assert!(spill.read(10).unwrap().is_none());
        spill.commit(first.end, 3);
        assert_eq!(spill.waiting(), 4);
        spill.commit(second.end, 4);
        assert!(!spill.has_waiting());
        assert_eq!(
            fs::metadata(dir.path().join("a.spill")).unwrap().len(),
            0,
            "emptied"
        );
        spill.close();
        assert!(
            !dir.path().join("a.spill").exists(),
            "an empty file goes on a stop"
        );
    }

    #[test]
    fn a_new_instance_adopts_what_a_stopped_one_left_and_not_what_a_live_one_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (mut live, _) = Spill::open(dir.path(), "live").unwrap();
        live.append(&entries(20..21)).unwrap();
        let (mut stopped, _) = Spill::open(dir.path(), "stopped").unwrap();
        stopped.append(&entries(0..3)).unwrap();
        // A batch that was being offered when it stopped goes in front.
        stopped.prepend(&entries(-2..0)).unwrap();
        stopped.close();
        // A crash mid-write: a torn last entry.
        let (mut crashed, _) = Spill::open(dir.path(), "crashed").unwrap();
        crashed.append(&entries(10..12)).unwrap();
        drop(crashed);
        let torn = dir.path().join("crashed.spill");
        let length = fs::metadata(&torn).unwrap().len();
        let file = OpenOptions::new().write(true).open(&torn).unwrap();
        file.set_len(length - 3).unwrap();
        // Orphans are adopted oldest first, whatever the clock's resolution.
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();

        let (mut next, adopted) = Spill::open(dir.path(), "next").unwrap();
        assert_eq!(
            adopted, 6,
            "5 from the stopped one, the crashed one's whole entry"
        );
        let chunk = next.read(100).unwrap().unwrap();
        assert_eq!(numbers(&chunk.docs), [-2, -1, 0, 1, 2, 10]);
        assert!(!dir.path().join("stopped.spill").exists());
        assert!(dir.path().join("live.spill").exists());
        assert_eq!(numbers(&live.read(10).unwrap().unwrap().docs), [20]);
    }

    #[test]
    fn garbage_is_an_error_for_the_caller_to_discard() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spill, _) = Spill::open(dir.path(), "a").unwrap();
        spill.append(&entries(0..2)).unwrap();
        spill.file.seek(SeekFrom::Start(0)).unwrap();
        spill.file.write_all(&[0xff, 0xff, 0xff, 0x7f]).unwrap();
        assert_eq!(spill.read(10).err().unwrap().kind(), io::ErrorKind::InvalidData);
        assert_eq!(spill.discard_unread(), 2);
        assert!(!spill.has_waiting());
        spill.append(&entries(7..8)).unwrap();
        assert_eq!(numbers(&spill.read(10).unwrap().unwrap().docs), [7]);
    }
}
