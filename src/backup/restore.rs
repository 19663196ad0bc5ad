//! `vigil restore`: a verified backup into the configured database and
//! media store.

use std::collections::BTreeMap;
use std::path::Path;

use mongodb::bson::{doc, Document, RawDocumentBuf};

use super::bson_file::DocumentReader;
use super::manifest::{documents_file, metadata_file, Manifest, StoredMedia};
use super::metadata::CollectionMetadata;
use super::{io_at, BackupError, MEDIA_DIR};
use crate::db::migrations::{MigrationSet, Migrator};
use crate::db::Database;
use crate::media::{MediaBackend, MediaId, SharedMediaStore};

/// Documents per insert, and bytes: well under the server's 48 MB message.
const BATCH_DOCUMENTS: usize = 1000;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

pub struct RestoreOptions {
    /// Replace whatever the database holds.
    pub drop: bool,
    /// Where the restored server will keep its images.
    pub media: SharedMediaStore,
    pub media_backend: MediaBackend,
}

#[derive(Debug)]
pub struct RestoreSummary {
    pub manifest: Manifest,
    /// Documents restored per collection.
    pub collections: BTreeMap<String, u64>,
    /// Images copied into the media store (0 when they came as GridFS documents).
    pub images: u64,
    /// Migrations newer than the backup, applied after it.
    pub migrations_applied: Vec<u32>,
}

impl RestoreSummary {
    pub fn documents(&self) -> u64 {
        self.collections.values().sum()
    }
}

/// Restores the backup in `from` into `db` and `options.media`. Nothing is
/// written before the whole backup is verified against its manifest and the
/// database is found empty (or `drop` is given).
#[tracing::instrument(skip_all, fields(from = %from.display(), database = db.handle().name()))]
pub async fn restore(
    db: &Database,
    from: &Path,
    options: &RestoreOptions,
) -> Result<RestoreSummary, BackupError> {
    let manifest = Manifest::verify(from).await?;
    let migrations = MigrationSet::embedded()?;
    if manifest.migration_version > migrations.latest() {
        return Err(BackupError::Incompatible(format!(
            "it was made by vigil {} at migration {}, and this vigil ({}) knows migrations up to {}: \
             restore it with a vigil at least as new",
            manifest.vigil_version,
            manifest.migration_version,
            env!("CARGO_PKG_VERSION"),
            migrations.latest()
        )));
    }
    if manifest.media_store == StoredMedia::Gridfs && options.media_backend == MediaBackend::Fs {
        return Err(BackupError::Incompatible(
            "its images are in GridFS, inside the database: restore it with --media-store gridfs".into(),
        ));
    }
    let mut collections = Vec::with_capacity(manifest.collections.len());
    for name in manifest.collections.keys() {
        let file = from.join(metadata_file(&manifest.database, name));
        let bytes = tokio::fs::read(&file).await.map_err(io_at(&file))?;
        collections.push(CollectionMetadata::from_json(name, &bytes)?);
    }
    make_room(db, options.drop).await?;

    let partly = |err: BackupError| BackupError::Partial(Box::new(err));
    let mut restored = BTreeMap::new();
    for collection in &collections {
        let file = from.join(documents_file(&manifest.database, &collection.name));
        let count = restore_collection(db, collection, &file).await.map_err(partly)?;
        let expected = manifest.collections[&collection.name];
        if count != expected {
            return Err(partly(BackupError::Corrupt(format!(
                "{} holds {count} documents, the manifest says {expected}",
                file.display()
            ))));
        }
        restored.insert(collection.name.clone(), count);
    }
    let owner = format!("vigil-restore-{}", std::process::id());
    let report = Migrator::new(db, &migrations, owner)
        .run()
        .await
        .map_err(|e| partly(e.into()))?;
    let images = match manifest.media_store {
        StoredMedia::Fs => restore_images(from, &manifest, &options.media)
            .await
            .map_err(partly)?,
        StoredMedia::Gridfs => 0,
    };
    tracing::info!(
        documents = restored.values().sum::<u64>(),
        images,
        "restore complete"
    );
    Ok(RestoreSummary {
        manifest,
        collections: restored,
        images,
        migrations_applied: report.applied,
    })
}

/// Refuses a database that holds documents (unless `drop`), then drops its
/// collections.
async fn make_room(db: &Database, drop: bool) -> Result<(), BackupError> {
    let names = db.handle().list_collection_names().await?;
    let mut holding = Vec::new();
    for name in names.iter().filter(|n| !n.starts_with("system.")) {
        let count = db.collection::<Document>(name).estimated_document_count().await?;
        if count > 0 {
            holding.push(format!("{name}: {count}"));
        }
    }
    if !holding.is_empty() && !drop {
        return Err(BackupError::NotEmpty {
            database: db.handle().name().to_owned(),
            holding: holding.join(", "),
        });
    }
    if !holding.is_empty() {
        tracing::warn!(collections = %holding.join(", "), "--drop: dropping the database's collections");
    }
    // Empty collections go too: each is created again with the backup's
    // options and indexes.
    for name in names.iter().filter(|n| !n.starts_with("system.")) {
        db.collection::<Document>(name).drop().await?;
    }
    Ok(())
}

/// Creates the collection with its options, inserts its documents in
/// batches, then builds its indexes (faster than indexing each insert, as
/// mongorestore does). Returns the documents inserted.
#[tracing::instrument(skip_all, fields(collection = %collection.name))]
async fn restore_collection(
    db: &Database,
    collection: &CollectionMetadata,
    file: &Path,
) -> Result<u64, BackupError> {
    let mut create = doc! { "create": &collection.name };
    create.extend(collection.options.clone());
    db.handle().run_command(create).await?;

    let target = db.collection::<RawDocumentBuf>(&collection.name);
    let mut reader = DocumentReader::open(file).await?;
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    let mut count = 0_u64;
    loop {
        let next = reader.next().await?;
        let full = batch.len() >= BATCH_DOCUMENTS || batch_bytes >= BATCH_BYTES;
        if !batch.is_empty() && (next.is_none() || full) {
            count += batch.len() as u64;
            // Stored documents passed the validator of their day; a later,
            // stricter validator must not refuse them now.
            target
                .insert_many(std::mem::take(&mut batch))
                .bypass_document_validation(true)
                .await?;
            batch_bytes = 0;
        }
        match next {
            Some(document) => {
                batch_bytes += document.as_bytes().len();
                batch.push(document);
            }
            None => break,
        }
    }
    let indexes = collection.secondary_indexes();
    if !indexes.is_empty() {
        db.handle()
            .run_command(doc! { "createIndexes": &collection.name, "indexes": indexes })
            .await?;
    }
    Ok(count)
}

/// Puts every image of the backup's `media/` into the store.
#[tracing::instrument(skip_all)]
async fn restore_images(
    from: &Path,
    manifest: &Manifest,
    store: &SharedMediaStore,
) -> Result<u64, BackupError> {
    let prefix = format!("{MEDIA_DIR}/");
    let mut images = 0;
    for name in manifest.files.keys() {
        let Some(file_name) = name.strip_prefix(&prefix) else {
            continue;
        };
        let id: MediaId = file_name
            .parse()
            .map_err(|()| BackupError::Corrupt(format!("{name} is not named like an image of vigil's")))?;
        let path = from.join(name);
        let bytes = tokio::fs::read(&path).await.map_err(io_at(&path))?;
        store.put(id, &bytes).await?;
        images += 1;
    }
    if images != manifest.media_files {
        return Err(BackupError::Corrupt(format!(
            "{images} images in {MEDIA_DIR}/, the manifest counts {}",
            manifest.media_files
        )));
    }
    Ok(images)
}
