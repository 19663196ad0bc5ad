use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{doc, Bson};
use mongodb::error::{ErrorKind, GridFsErrorKind};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::GridFsBucketOptions;

use super::{MediaError, MediaId, MediaStore};
use crate::db::Database;

/// Images in GridFS (`media.files` / `media.chunks`), so that every instance
/// sharing the database serves every image. The media id is the file's `_id`.
pub struct GridFsStore {
    bucket: GridFsBucket,
}

impl GridFsStore {
    pub fn new(db: &Database) -> Self {
        let options = GridFsBucketOptions::builder()
            .bucket_name("media".to_owned())
            .build();
        Self {
            bucket: db.handle().gridfs_bucket(options),
        }
    }
}

fn is_file_not_found(err: &mongodb::error::Error) -> bool {
    matches!(
        &*err.kind,
        ErrorKind::GridFs(GridFsErrorKind::FileNotFound { .. })
    )
}

impl MediaStore for GridFsStore {
    fn put<'a>(&'a self, id: MediaId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>> {
        async move {
            let mut upload = self
                .bucket
                .open_upload_stream(id.to_string())
                .id(Bson::String(id.to_string()))
                .await?;
            upload.write_all(bytes).await?;
            // close() writes the files document: only then is the image visible.
            upload.close().await?;
            Ok(())
        }
        .boxed()
    }

    fn get(&self, id: MediaId) -> BoxFuture<'_, Result<Option<Vec<u8>>, MediaError>> {
        async move {
            let mut download = match self
                .bucket
                .open_download_stream(Bson::String(id.to_string()))
                .await
            {
                Ok(stream) => stream,
                Err(err) if is_file_not_found(&err) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            let mut bytes = Vec::new();
            download.read_to_end(&mut bytes).await?;
            Ok(Some(bytes))
        }
        .boxed()
    }

    fn delete(&self, id: MediaId) -> BoxFuture<'_, Result<(), MediaError>> {
        async move {
            match self.bucket.delete(Bson::String(id.to_string())).await {
                Err(err) if !is_file_not_found(&err) => Err(err.into()),
                _ => Ok(()),
            }
        }
        .boxed()
    }

    fn older_than(&self, age: Duration) -> BoxFuture<'_, Result<Vec<MediaId>, MediaError>> {
        async move {
            let cutoff =
                chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero());
            let files: Vec<_> = self
                .bucket
                .find(doc! { "uploadDate": { "$lt": mongodb::bson::DateTime::from_chrono(cutoff) } })
                .await?
                .try_collect()
                .await?;
            Ok(files
                .into_iter()
                .filter_map(|f| match f.id {
                    Bson::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect())
        }
        .boxed()
    }
}
