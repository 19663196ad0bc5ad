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

    /// Temp file, fsync, rename, fsync the folder: after a crash the image is
    /// either complete under its name or absent, never half-written.
    async fn write_durably(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let temp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
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
}
