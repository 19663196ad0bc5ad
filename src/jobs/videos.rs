//! Where the videos of video jobs wait for a worker: a folder (one
//! instance, or several sharing it) or GridFS (bucket `videos`, every
//! instance sharing the database), like the images.
//!
//! A video is received into a file as it arrives (never held in memory),
//! probed there, and only then kept under its id; a worker reads it from a
//! local file, since ffmpeg seeks in it. A video is removed when its job
//! ends.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::io::AsyncWriteExt as _;
use mongodb::bson::{oid::ObjectId, Bson};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::GridFsBucketOptions;
use tokio::io::AsyncWriteExt;

use crate::db::Database;
use crate::media::MediaBackend;

/// Receiving files older than this were left by a process that died.
const ABANDONED: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum VideoStoreError {
    #[error("video store I/O: {0}")]
    Io(#[from] io::Error),
    #[error("video store database: {0}")]
    Db(#[from] mongodb::error::Error),
}

impl crate::error::Coded for VideoStoreError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::Internal
    }
}

enum Backend {
    Folder,
    GridFs(GridFsBucket),
}

/// The store; cheap to share behind an `Arc`.
pub struct VideoStore {
    backend: Backend,
    /// `<data>/videos`: kept videos (folder backend), `.incoming/` files
    /// being received, `.reading/` GridFS videos copied for a worker.
    dir: PathBuf,
}

/// A video being received. Dropped without [`VideoStore::keep`], its file
/// is removed.
pub struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    bytes: u64,
}

impl Incoming {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("closed"))?;
        file.write_all(chunk).await?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The file so far: what ffprobe is run on before the video is kept.
    pub async fn finished(&mut self) -> io::Result<&Path> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        Ok(&self.path)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A video as a local file for ffmpeg; a GridFS copy is removed on drop.
pub struct LocalVideo {
    path: PathBuf,
    temporary: bool,
}

impl LocalVideo {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalVideo {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl VideoStore {
    pub fn open(backend: MediaBackend, data_dir: &Path, db: &Database) -> io::Result<Self> {
        let dir = data_dir.join("videos");
        std::fs::create_dir_all(dir.join(".incoming"))?;
        std::fs::create_dir_all(dir.join(".reading"))?;
        let backend = match backend {
            MediaBackend::Fs => Backend::Folder,
            MediaBackend::Gridfs => Backend::GridFs(
                db.handle().gridfs_bucket(
                    GridFsBucketOptions::builder()
                        .bucket_name("videos".to_owned())
                        .build(),
                ),
            ),
        };
        Ok(Self { backend, dir })
    }

    fn kept_path(&self, id: ObjectId) -> PathBuf {
        self.dir.join(format!("{}.video", id.to_hex()))
    }

    /// Starts receiving a video.
    pub async fn receive(&self) -> io::Result<Incoming> {
        let path = self
            .dir
            .join(".incoming")
            .join(format!("{}.part", ObjectId::new().to_hex()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming {
            path,
            file: Some(file),
            bytes: 0,
        })
    }

    /// Keeps a received video under a new id.
    pub async fn keep(&self, mut incoming: Incoming) -> Result<ObjectId, VideoStoreError> {
        let id = ObjectId::new();
        incoming.finished().await?;
        match &self.backend {
            Backend::Folder => {
                let target = self.kept_path(id);
                tokio::fs::rename(&incoming.path, &target).await?;
                // The rename is durable once the folder is synced.
                tokio::fs::File::open(&self.dir).await?.sync_all().await?;
            }
            Backend::GridFs(bucket) => {
                let mut upload = bucket
                    .open_upload_stream(id.to_hex())
                    .id(Bson::ObjectId(id))
                    .await?;
                let mut file = tokio::fs::File::open(&incoming.path).await?;
                let mut buffer = vec![0_u8; 1 << 20];
                loop {
                    let n = tokio::io::AsyncReadExt::read(&mut file, &mut buffer).await?;
                    if n == 0 {
                        break;
                    }
                    upload.write_all(&buffer[..n]).await?;
                }
                upload.close().await?;
            }
        }
        Ok(id)
    }

    /// The video as a local file; `None` when it is gone.
    pub async fn local(&self, id: ObjectId) -> Result<Option<LocalVideo>, VideoStoreError> {
        match &self.backend {
            Backend::Folder => {
                let path = self.kept_path(id);
                Ok(tokio::fs::try_exists(&path).await?.then_some(LocalVideo {
                    path,
                    temporary: false,
                }))
            }
            Backend::GridFs(bucket) => {
                let mut download = match bucket.open_download_stream(Bson::ObjectId(id)).await {
                    Ok(download) => download,
                    Err(err) if is_file_not_found(&err) => return Ok(None),
                    Err(err) => return Err(err.into()),
                };
                let local = LocalVideo {
                    path: self.dir.join(".reading").join(format!(
                        "{}-{}.video",
                        id.to_hex(),
                        ObjectId::new().to_hex()
                    )),
                    temporary: true,
                };
                let mut file = tokio::fs::File::create(&local.path).await?;
                let mut buffer = vec![0_u8; 1 << 20];
                loop {
                    let n = futures_util::io::AsyncReadExt::read(&mut download, &mut buffer).await?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&buffer[..n]).await?;
                }
                file.flush().await?;
                Ok(Some(local))
            }
        }
    }

    /// Removes a video; an absent one is not an error.
    pub async fn delete(&self, id: ObjectId) -> Result<(), VideoStoreError> {
        match &self.backend {
            Backend::Folder => match tokio::fs::remove_file(self.kept_path(id)).await {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
                _ => Ok(()),
            },
            Backend::GridFs(bucket) => match bucket.delete(Bson::ObjectId(id)).await {
                Err(err) if !is_file_not_found(&err) => Err(err.into()),
                _ => Ok(()),
            },
        }
    }

    /// Videos kept more than `age` ago, for the sweep of videos no job needs.
    pub async fn older_than(&self, age: Duration) -> Result<Vec<ObjectId>, VideoStoreError> {
        let mut old = Vec::new();
        match &self.backend {
            Backend::Folder => {
                let mut entries = tokio::fs::read_dir(&self.dir).await?;
                while let Some(entry) = entries.next_entry().await? {
                    let name = entry.file_name();
                    let Some(id) = name
                        .to_str()
                        .and_then(|n| n.strip_suffix(".video"))
                        .and_then(|hex| ObjectId::parse_str(hex).ok())
                    else {
                        continue;
                    };
                    let aged = entry
                        .metadata()
                        .await?
                        .modified()?
                        .elapsed()
                        .is_ok_and(|a| a > age);
                    if aged {
                        old.push(id);
                    }
                }
            }
            Backend::GridFs(bucket) => {
                let before = chrono::Utc::now()
                    - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::hours(1));
                let mut files = bucket
                    .find(mongodb::bson::doc! { "uploadDate": { "$lt": mongodb::bson::DateTime::from_chrono(before) } })
                    .await?;
                while let Some(file) = futures_util::TryStreamExt::try_next(&mut files).await? {
                    if let Bson::ObjectId(id) = file.id {
                        old.push(id);
                    }
                }
            }
        }
        Ok(old)
    }

    /// Removes files a process that died left while receiving or reading.
    pub async fn remove_abandoned(&self) -> io::Result<usize> {
        let mut removed = 0;
        for sub in [".incoming", ".reading"] {
            let mut entries = tokio::fs::read_dir(self.dir.join(sub)).await?;
            while let Some(entry) = entries.next_entry().await? {
                let old = entry
                    .metadata()
                    .await?
                    .modified()?
                    .elapsed()
                    .is_ok_and(|age| age > ABANDONED);
                if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn is_file_not_found(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, GridFsErrorKind};
    matches!(
        &*err.kind,
        ErrorKind::GridFs(GridFsErrorKind::FileNotFound { .. })
    )
}
