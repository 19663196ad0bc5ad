use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::AsyncWriteExt;

use super::{MediaError, MediaId, MediaStore};

/// Where writes in progress live: `<dir>/.writing/<writer>/` holds one
/// process's temp files, and `<dir>/.writing/<writer>.lock` is locked by that
/// process for as long as it runs. The operating system drops the lock when
/// the process dies, however it dies, so any process sharing the folder can
/// tell a dead writer's leftovers from a live one's writes and remove them at
/// once, with no age to guess.
const WRITING: &str = ".writing";
const LOCK_EXTENSION: &str = "lock";

/// Images as files in one folder, named by their id.
pub struct FileStore {
    dir: PathBuf,
    writer: Writer,
}

/// This process's temp folder, and the lock that says it is alive.
struct Writer {
    temp_dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Writer {
    fn start(writing: &Path) -> std::io::Result<Self> {
        let temp_dir = writing.join(uuid::Uuid::new_v4().simple().to_string());
        let lock_path = temp_dir.with_extension(LOCK_EXTENSION);
        // The lock first, then the folder: a folder without its lock file
        // belongs to nobody alive.
        let lock = File::create(&lock_path)?;
        lock.try_lock().map_err(std::io::Error::other)?;
        std::fs::create_dir(&temp_dir)?;
        Ok(Self {
            temp_dir,
            lock_path,
            _lock: lock,
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.temp_dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

impl FileStore {
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        let writing = dir.join(WRITING);
        std::fs::create_dir_all(&writing)?;
        let writer = Writer::start(&writing)?;
        Ok(Self { dir, writer })
    }

    /// Removes what writers that no longer run left half-written (a
    /// process killed between a temp file's creation and its rename),
    /// whichever process sharing the folder it was. Returns how many
    /// writers' leftovers went.
    pub async fn remove_abandoned_writes(&self) -> std::io::Result<usize> {
        let writing = self.dir.join(WRITING);
        let own = self.writer.temp_dir.clone();
        let removed = tokio::task::spawn_blocking(move || remove_dead_writers(&writing, &own))
            .await
            .map_err(std::io::Error::other)??;
        if removed > 0 {
            tracing::info!(writers = removed, dir = %self.dir.display(), "temp files of interrupted image writes removed");
        }
        Ok(removed)
    }

    fn path(&self, id: MediaId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Temp file, fsync, rename, fsync the folder: after a crash the image is
    /// either complete under its name or absent, never half-written.
    async fn write_durably(&self, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let temp = self
            .writer
            .temp_dir
            .join(uuid::Uuid::new_v4().simple().to_string());
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, target).await?;
            tokio::fs::File::open(&self.dir).await?.sync_all().await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }
}

/// Removes every writer's folder and lock file under `writing` whose lock
/// nobody holds.
fn remove_dead_writers(writing: &Path, own: &Path) -> std::io::Result<usize> {
    let mut writers = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(writing)? {
        let path = entry?.path();
        writers.insert(path.with_extension(""));
    }
    let mut removed = 0;
    for temp_dir in writers.iter().filter(|dir| dir.as_path() != own) {
        let lock_path = temp_dir.with_extension(LOCK_EXTENSION);
        let lock = match File::options().write(true).open(&lock_path) {
            Ok(lock) => Some(lock),
            // A sweeper that died between removing the folder and its lock
            // file left one without the other: nobody writes there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if lock.as_ref().is_some_and(|lock| lock.try_lock().is_err()) {
            continue; // a live writer
        }
        for gone in [
            std::fs::remove_dir_all(temp_dir),
            std::fs::remove_file(&lock_path),
        ] {
            match gone {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        removed += 1;
    }
    Ok(removed)
}

impl MediaStore for FileStore {
    fn put<'a>(&'a self, id: MediaId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>> {
        async move { Ok(self.write_durably(&self.path(id), bytes).await?) }.boxed()
    }

    fn get(&self, id: MediaId) -> BoxFuture<'_, Result<Option<Vec<u8>>, MediaError>> {
        async move {
            match tokio::fs::read(self.path(id)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn delete(&self, id: MediaId) -> BoxFuture<'_, Result<(), MediaError>> {
        async move {
            match tokio::fs::remove_file(self.path(id)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        }
        .boxed()
    }

    fn older_than(&self, age: Duration) -> BoxFuture<'_, Result<Vec<MediaId>, MediaError>> {
        async move {
            let cutoff = SystemTime::now() - age;
            let mut found = Vec::new();
            let mut entries = tokio::fs::read_dir(&self.dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<MediaId>().ok()) else {
                    continue;
                };
                let modified = entry.metadata().await?.modified()?;
                if modified < cutoff {
                    found.push(id);
                }
            }
            Ok(found)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ImageKind;

    #[tokio::test]
    async fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("images")).unwrap();
        let id = MediaId::new(ImageKind::Jpeg);
        assert_eq!(store.get(id).await.unwrap(), None);
        store.put(id, b"jpeg bytes").await.unwrap();
        assert_eq!(store.get(id).await.unwrap().as_deref(), Some(&b"jpeg bytes"[..]));
        assert_eq!(store.older_than(Duration::ZERO).await.unwrap(), vec![id]);
        assert!(store
            .older_than(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty());
        store.delete(id).await.unwrap();
        store.delete(id).await.unwrap();
        assert_eq!(store.get(id).await.unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(&store.writer.temp_dir).unwrap().collect();
        assert!(leftovers.is_empty(), "no temp files left behind");
    }

    #[tokio::test]
    async fn a_dead_writers_temp_files_go_and_a_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let writing = dir.path().join(WRITING);
        let store = FileStore::open(dir.path()).unwrap();
        // Another process sharing the folder, alive, in the middle of a write.
        let live = Writer::start(&writing).unwrap();
        std::fs::write(live.temp_dir.join("half"), b"half an image").unwrap();
        // One killed mid-write: its folder and lock file are there, the lock free.
        let dead = writing.join("0123456789abcdef0123456789abcdef");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("half"), b"half an image").unwrap();
        std::fs::write(dead.with_extension(LOCK_EXTENSION), b"").unwrap();
        // What a sweeper killed half-way leaves: a folder or a lock file alone.
        let lone_dir = writing.join("11111111111111111111111111111111");
        std::fs::create_dir(&lone_dir).unwrap();
        let lone_lock = writing.join("22222222222222222222222222222222.lock");
        std::fs::write(&lone_lock, b"").unwrap();
        let image = MediaId::new(ImageKind::Jpeg);
        store.put(image, b"jpeg bytes").await.unwrap();

        assert_eq!(store.remove_abandoned_writes().await.unwrap(), 3);
        assert!(!dead.exists(), "a dead writer's temp files go");
        assert!(
            !dead.with_extension(LOCK_EXTENSION).exists(),
            "with its lock file"
        );
        assert!(!lone_dir.exists() && !lone_lock.exists());
        assert!(live.temp_dir.join("half").exists(), "a live writer's stay");
        assert!(store.writer.temp_dir.exists(), "and this store's own");
        assert!(
            store.path(image).exists(),
            "images are the orphan sweep's business"
        );
        assert_eq!(store.remove_abandoned_writes().await.unwrap(), 0);

        drop(live);
        drop(store);
        let left: Vec<_> = std::fs::read_dir(&writing).unwrap().collect();
        assert!(left.is_empty(), "a writer that stops cleans up: {left:?}");
    }
}
