//! The faces of every owner's earlier photos, in memory, searched exactly
//! (as the people gallery is, and for the same reason: at a fleet's sizes a
//! scan is a few milliseconds and never misses).
//!
//! An owner's faces are loaded from `telemetry_photos` on the first photo
//! of theirs this instance sees; after that each photo first catches up
//! with what any instance stored since (`received_at` from a little before
//! the last catch-up, de-duplicated by face), so photos sent through
//! another instance count as earlier photos too.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime as BsonDateTime};
use mongodb::Collection;
use serde::Deserialize;

use super::photos::{PhotoFace, PhotoId};
use crate::db::DbError;
use crate::people::faces::StoredEmbedding;
use crate::people::gallery::squared_distance;
use crate::users::UserId;
use crate::vision::recognizer::EMBEDDING_LEN;
use crate::vision::Embedding;

/// How far back a catch-up looks before the previous one: longer than a
/// photo takes from its `received_at` to its insert on a slow instance.
const CATCH_UP_OVERLAP: chrono::Duration = chrono::Duration::seconds(60);

/// A face of an earlier photo that is nearest to a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub photo: PhotoId,
    pub distance: f32,
}

#[derive(Default)]
struct OwnerPhotos {
    /// `received_at` of the last catch-up, `None` before the first load.
    caught_up_to: Option<DateTime<Utc>>,
    known: HashSet<(PhotoId, u32)>,
    photos: Vec<PhotoId>,
    vectors: Vec<f32>,
}

impl OwnerPhotos {
    fn add(&mut self, photo: PhotoId, index: u32, embedding: &Embedding) {
        if self.known.insert((photo, index)) {
            self.photos.push(photo);
            self.vectors.extend_from_slice(embedding.as_array());
        }
    }

    fn nearest(&self, probe: &Embedding, not: PhotoId) -> Option<Nearest> {
        let probe = probe.as_array();
        self.vectors
            .chunks_exact(EMBEDDING_LEN)
            .zip(&self.photos)
            .filter(|(_, photo)| **photo != not)
            .map(|(vector, photo)| Nearest {
                photo: *photo,
                distance: squared_distance(probe, vector).sqrt(),
            })
            .min_by(|a, b| a.distance.total_cmp(&b.distance))
    }
}

/// What the index reads of a stored photo.
#[derive(Deserialize)]
struct IndexedPhoto {
    #[serde(rename = "_id")]
    id: PhotoId,
    faces: Vec<IndexedFace>,
    model: String,
}

#[derive(Deserialize)]
struct IndexedFace {
    #[serde(default)]
    embedding: Option<StoredEmbedding>,
}

#[derive(Clone)]
pub struct PhotoIndex {
    photos: Collection<IndexedPhoto>,
    /// Faces of another recognizer are never compared.
    model: &'static str,
    owners: Arc<Mutex<HashMap<UserId, OwnerPhotos>>>,
}

impl PhotoIndex {
    pub fn new(db: &crate::db::Database, model: &'static str) -> Self {
        Self {
            photos: db.collection(super::photos::COLLECTION),
            model,
            owners: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, OwnerPhotos>> {
        // A panic elsewhere leaves the sets consistent: each step is one push.
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads what was stored since the last catch-up (everything, the first time).
    pub async fn catch_up(&self, owner: UserId, now: DateTime<Utc>) -> Result<(), DbError> {
        let since = self.lock().get(&owner).and_then(|o| o.caught_up_to);
        let mut filter = doc! { "user_id": owner.0, "model": self.model, "faces.0": { "$exists": true } };
        if let Some(since) = since {
            filter.insert(
                "received_at",
                doc! { "$gte": BsonDateTime::from_chrono(since - CATCH_UP_OVERLAP) },
            );
        }
        let found: Vec<IndexedPhoto> = self
            .photos
            .find(filter)
            .projection(doc! { "faces.embedding": 1, "model": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        let mut owners = self.lock();
        let entry = owners.entry(owner).or_default();
        for photo in found.iter().filter(|p| p.model == self.model) {
            for (index, face) in photo.faces.iter().enumerate() {
                if let Some(StoredEmbedding(embedding)) = &face.embedding {
                    entry.add(photo.id, index as u32, embedding);
                }
            }
        }
        entry.caught_up_to = Some(entry.caught_up_to.map_or(now, |t| t.max(now)));
        Ok(())
    }

    /// The nearest face among the owner's photos other than `not`.
    pub fn nearest(&self, owner: UserId, probe: &Embedding, not: PhotoId) -> Option<Nearest> {
        self.lock().get(&owner)?.nearest(probe, not)
    }

    /// Adds a photo this instance just stored.
    pub fn add(&self, owner: UserId, photo: PhotoId, faces: &[PhotoFace]) {
        let mut owners = self.lock();
        let entry = owners.entry(owner).or_default();
        for (index, face) in faces.iter().enumerate() {
            if let Some(StoredEmbedding(embedding)) = &face.embedding {
                entry.add(photo, index as u32, embedding);
            }
        }
    }
}
