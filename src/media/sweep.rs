//! Removing images nothing refers to: what a crash between writing an image
//! and inserting the document that names it leaves behind.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{MediaError, MediaId, SharedMediaStore};
use crate::db::DbError;

/// A collection whose documents name images. The sweep asks every holder
/// before it removes an image, so an image is kept while anything names it.
pub trait MediaReferences: Send + Sync {
    fn references(&self, id: MediaId) -> BoxFuture<'_, Result<bool, DbError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Removes images older than `age` that no holder refers to.
pub async fn sweep_orphans(
    store: &SharedMediaStore,
    holders: &[Arc<dyn MediaReferences>],
    age: Duration,
) -> Result<usize, SweepError> {
    let mut removed = 0;
    'images: for id in store.older_than(age).await? {
        for holder in holders {
            if holder.references(id).await? {
                continue 'images;
            }
        }
        store.delete(id).await?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "orphan images swept");
    }
    Ok(removed)
}
