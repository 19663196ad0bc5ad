//! `vigil backup`: the database's collections, then the image folder, into
//! a folder that appears under its name only once complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, RawDocumentBuf};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::manifest::{documents_file, metadata_file, FileEntry, Manifest, StoredMedia, FORMAT, MANIFEST};
use super::metadata::{self, CollectionMetadata};
use super::{io_at, BackupError, MEDIA_DIR, RUNTIME_STATE};
use crate::db::migrations::applied_version;
use crate::db::Database;
use crate::media::MediaId;

/// Where the backed-up server keeps its images.
#[derive(Debug, Clone)]
pub enum MediaSource {
    /// The folder store's `images/` folder.
    Folder(PathBuf),
    /// GridFS: the images are collections of the database, dumped with it.
    Database,
}

#[derive(Debug)]
pub struct BackupSummary {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Collections that others name come after them, the images last: what a
/// running server writes meanwhile then appears only in the later files, so
/// every reference in the backup finds what it names (an alarm its
/// detection, a detection its owner and images), and what is extra is an
/// orphan the server's sweep removes, never a hole. GridFS writes a file's
/// chunks before the file, so `.files` goes before `.chunks`.
const NAMED_BY_OTHERS: [&str; 8] = [
    "detections",
    "subject_faces",
    "subjects",
    "users",
    "media.files",
    "media.chunks",
    "videos.files",
    "videos.chunks",
];

fn dump_rank(name: &str) -> usize {
    NAMED_BY_OTHERS
        .iter()
        .position(|n| *n == name)
        .map_or(0, |i| i + 1)
}

/// Backs the database (and the image folder) up into `out`, which must not
/// exist. Everything is written under a hidden name beside it and renamed
/// at the end, so `out` is complete or absent.
#[tracing::instrument(skip_all, fields(out = %out.display()))]
pub async fn backup(db: &Database, media: &MediaSource, out: &Path) -> Result<BackupSummary, BackupError> {
    if tokio::fs::try_exists(out).await.map_err(io_at(out))? {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let name = out
        .file_name()
        .ok_or_else(|| BackupError::Exists(out.to_owned()))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&parent).await.map_err(io_at(&parent))?;
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tokio::fs::try_exists(&partial).await.map_err(io_at(&partial))? {
        tokio::fs::remove_dir_all(&partial)
            .await
            .map_err(io_at(&partial))?;
    }
    let outcome = write_backup(db, media, &partial).await;
    let manifest = match outcome {
        Ok(manifest) => manifest,
        Err(err) => {
            let _ = tokio::fs::remove_dir_all(&partial).await;
            return Err(err);
        }
    };
    tokio::fs::rename(&partial, out).await.map_err(io_at(out))?;
    sync_dir(&parent).await?;
    tracing::info!(
        documents = manifest.documents(),
        images = manifest.media_files,
        "backup complete"
    );
    Ok(BackupSummary {
        dir: out.to_owned(),
        manifest,
    })
}

async fn write_backup(db: &Database, media: &MediaSource, dir: &Path) -> Result<Manifest, BackupError> {
    let database = db.handle().name().to_owned();
    let migration_version = applied_version(db)
        .await?
        .ok_or_else(|| BackupError::NoVigilData(database.clone()))?;
    let created_at = chrono::Utc::now();
    let db_dir = dir.join(&database);
    tokio::fs::create_dir_all(&db_dir).await.map_err(io_at(&db_dir))?;

    let mut collections = metadata::read_all(db).await?;
    collections.sort_by_key(|c| (dump_rank(&c.name), c.name.clone()));
    let mut files = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for collection in &collections {
        let meta_name = metadata_file(&database, &collection.name);
        let json = serde_json::to_vec_pretty(&collection.to_json()).expect("JSON values serialise");
        files.insert(meta_name.clone(), write_file(&dir.join(&meta_name), &json).await?);
        let docs_name = documents_file(&database, &collection.name);
        let (entry, count) = dump_collection(db, collection, &dir.join(&docs_name)).await?;
        files.insert(docs_name, entry);
        counts.insert(collection.name.clone(), count);
    }
    sync_dir(&db_dir).await?;
    if matches!(media, MediaSource::Folder(_)) && counts.get("media.files").is_some_and(|n| *n > 0) {
        tracing::warn!("the database holds GridFS images (they are in the backup): is --media-store gridfs the server's?");
    }

    let (media_store, media_files) = match media {
        MediaSource::Database => (StoredMedia::Gridfs, 0),
        MediaSource::Folder(images) => {
            let copied = copy_images(images, &dir.join(MEDIA_DIR)).await?;
            let count = copied.len() as u64;
            files.extend(copied);
            (StoredMedia::Fs, count)
        }
    };
    let manifest = Manifest {
        format: FORMAT,
        vigil_version: env!("CARGO_PKG_VERSION").to_owned(),
        migration_version,
        created_at,
        database,
        media_store,
        collections: counts,
        media_files,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    write_file(&dir.join(MANIFEST), &json).await?;
    sync_dir(dir).await?;
    Ok(manifest)
}

/// Writes the collection's documents (none for runtime state) as they are
/// stored, byte for byte.
#[tracing::instrument(skip_all, fields(collection = %collection.name))]
async fn dump_collection(
    db: &Database,
    collection: &CollectionMetadata,
    path: &Path,
) -> Result<(FileEntry, u64), BackupError> {
    let mut out = HashingWriter::create(path).await?;
    let mut count = 0;
    if !RUNTIME_STATE.contains(&collection.name.as_str()) {
        let mut cursor = db
            .collection::<RawDocumentBuf>(&collection.name)
            .find(doc! {})
            .await?;
        while let Some(document) = cursor.try_next().await? {
            out.write(document.as_bytes()).await?;
            count += 1;
        }
    }
    Ok((out.finish().await?, count))
}

/// Copies every image of the folder store (files named by a media id; the
/// store's temp folders are not images) into `target`.
#[tracing::instrument(skip_all, fields(images = %images.display()))]
async fn copy_images(images: &Path, target: &Path) -> Result<BTreeMap<String, FileEntry>, BackupError> {
    let mut entries = match tokio::fs::read_dir(images).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NoImageFolder(images.to_owned()))
        }
        Err(e) => return Err(io_at(images)(e)),
    };
    tokio::fs::create_dir_all(target).await.map_err(io_at(target))?;
    let mut copied = BTreeMap::new();
    while let Some(entry) = entries.next_entry().await.map_err(io_at(images))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<MediaId>().is_err() {
            continue;
        }
        let source = entry.path();
        let mut input = match tokio::fs::File::open(&source).await {
            Ok(input) => input,
            // Removed since it was listed (its detection was deleted).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(source)(e)),
        };
        let mut out = HashingWriter::create(&target.join(&name)).await?;
        let mut buffer = vec![0_u8; 1 << 16];
        loop {
            let n = input.read(&mut buffer).await.map_err(io_at(&source))?;
            if n == 0 {
                break;
            }
            out.write(&buffer[..n]).await?;
        }
        copied.insert(format!("{MEDIA_DIR}/{name}"), out.finish().await?);
    }
    sync_dir(target).await?;
    Ok(copied)
}

/// A new file whose size and SHA-256 are taken as it is written.
struct HashingWriter {
    path: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    async fn create(path: &Path) -> Result<Self, BackupError> {
        let file = tokio::fs::File::create_new(path).await.map_err(io_at(path))?;
        Ok(Self {
            path: path.to_owned(),
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.file.write_all(bytes).await.map_err(io_at(&self.path))?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Flushed and synced: the manifest never names a file still in a cache.
    async fn finish(mut self) -> Result<FileEntry, BackupError> {
        self.file.flush().await.map_err(io_at(&self.path))?;
        self.file.get_ref().sync_all().await.map_err(io_at(&self.path))?;
        Ok(FileEntry {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<FileEntry, BackupError> {
    let mut out = HashingWriter::create(path).await?;
    out.write(bytes).await?;
    out.finish().await
}

async fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    tokio::fs::File::open(dir)
        .await
        .map_err(io_at(dir))?
        .sync_all()
        .await
        .map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_others_name_is_dumped_after_them() {
        let mut names = vec![
            "users",
            "media.chunks",
            "alarms",
            "detections",
            "media.files",
            "api_keys",
            "subjects",
            "subject_faces",
        ];
        names.sort_by_key(|n| (dump_rank(n), n.to_string()));
        assert_eq!(
            names,
            [
                "alarms",
                "api_keys",
                "detections",
                "subject_faces",
                "subjects",
                "users",
                "media.files",
                "media.chunks"
            ]
        );
    }
}
