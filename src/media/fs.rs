use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::AsyncWriteExt;

use super::{MediaError, MediaId, MediaStore};

/// Images as files in one folder, named by their id.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, id: MediaId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Removes the temp files of writes that never finished (the process
    /// was killed between create and rename) and were last written more
    /// than `age` ago. A write keeps its temp file for the seconds an image
    /// takes to write and fsync, and each write moves the file's mtime, so
    /// an age far beyond that never takes a file a live write still owns,
    /// whichever instance sharing the folder started it (which a cut-off
    /// at this process's start would not ensure). Only names this store
    /// makes are touched.
    pub async fn remove_stale_temp_files(&self, age: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now() - age;
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if !entry.file_name().to_str().is_some_and(is_temp_name) {
                continue;
            }
            let modified = match entry.metadata().await.and_then(|m| m.modified()) {
                Ok(modified) => modified,
                // Renamed or removed since the listing: a write that finished.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if modified >= cutoff {
                continue;
            }
            match tokio::fs::remove_file(entry.path()).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.dir.display(), "temp files of interrupted image writes removed");
        }
        Ok(removed)
    }

    /// Temp file, fsync, rename, fsync the folder: after a crash the image is
    /// either complete under its name or absent, never half-written.
    async fn write_durably(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let temp = dir.join(temp_name());
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, target).await?;
            tokio::fs::File::open(dir).await?.sync_all().await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }
}

/// `.<32 hex digits>.tmp`: hidden, and never a [`MediaId`].
fn temp_name() -> String {
    format!(".{}{TEMP_SUFFIX}", uuid::Uuid::new_v4().simple())
}

const TEMP_SUFFIX: &str = ".tmp";

fn is_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl MediaStore for FileStore {
    fn put<'a>(&'a self, id: MediaId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>> {
        async move { Ok(Self::write_durably(&self.dir, &self.path(id), bytes).await?) }.boxed()
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
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("images")).unwrap().collect();
        assert!(leftovers.is_empty(), "no temp files left behind");
    }

    #[tokio::test]
    async fn only_old_temp_files_of_the_store_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let old = dir.path().join(temp_name());
        let fresh = dir.path().join(temp_name());
        let foreign = dir.path().join(".notes.tmp");
        let image = MediaId::new(ImageKind::Jpeg);
        store.put(image, b"jpeg bytes").await.unwrap();
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for path in [&old, &fresh, &foreign] {
            std::fs::write(path, b"half an image").unwrap();
        }
        for path in [old.clone(), foreign.clone(), store.path(image)] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        let removed = store
            .remove_stale_temp_files(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert!(!old.exists(), "an old temp file goes");
        assert!(fresh.exists(), "a write in progress keeps its temp file");
        assert!(
            foreign.exists(),
            "a name the store never makes is not its to remove"
        );
        assert!(
            store.path(image).exists(),
            "images are the orphan sweep's business"
        );
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(&temp_name()));
        for other in [
            ".tmp",
            "..tmp",
            ".0123.tmp",
            "0123456789abcdef0123456789abcdef.tmp",
            ".notes.tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
        assert!(temp_name().parse::<MediaId>().is_err());
    }
}
