//! Retention: detections and alarms older than `--retention-days` (or their
//! camera's `retention=DAYS`) are deleted in the background, with the
//! images nothing else needs.
//!
//! Order: the documents go first (a detection with its alarms, in one
//! transaction per batch), the images after the commit. A crash in between
//! leaves images no document names, which the hourly orphan sweep removes
//! (they are far older than its hour); the other order could leave
//! documents pointing at missing images. An image is removed only when no
//! holder (a queued job, a detection, an enrolled face, a telemetry photo)
//! still names it, so a face enrolled from a detection keeps its photo.
//!
//! Several instances may sweep at once: a batch is found and deleted inside
//! one transaction, so two instances reaching for the same documents
//! conflict and the loser runs again and finds the next ones; only the
//! instance whose commit removed a document removes its images (and counts
//! them).

mod policy;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use serde::Deserialize;
use tracing::Instrument;

pub use policy::{stored_before, Policy};

use crate::db::health::{Readiness, ReadyState};
use crate::db::{Database, DbError};
use crate::detections::{FacePrints, MediaRefs};
use crate::jobs::JobState;
use crate::media::{MediaId, MediaReferences, SharedMediaStore};

/// Documents deleted per transaction: small, so that a sweep never holds
/// many documents at once nor keeps the database busy for long.
const BATCH: i64 = 100;
/// The pause between two batches, which leaves the database to requests.
const PAUSE: Duration = Duration::from_millis(100);

/// Retention settings from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Days detections and alarms are kept; 0 keeps them forever.
    pub days: u32,
    /// Days an unknown face's embedding is kept; 0 keeps it as long as its detection.
    pub unknown_face_days: u32,
    /// Time between two sweeps.
    pub interval: Duration,
}

/// The cameras' own retention (`retention=DAYS`), asked at every sweep:
/// cameras come and go while the server runs.
pub trait CameraRetention: Send + Sync {
    fn camera_days(&self) -> Vec<(String, u32)>;
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub detections: u64,
    pub alarms: u64,
    pub images: u64,
    /// Ended jobs (uploads', videos' and webhook deliveries').
    pub jobs: u64,
    /// Embeddings of unknown faces (their detections stay).
    pub unknown_faces: u64,
}

/// The background sweep.
pub struct Retention {
    pub db: Database,
    pub media: SharedMediaStore,
    /// Everything that may name an image, asked before one is removed.
    pub holders: Vec<Arc<dyn MediaReferences>>,
    pub settings: RetentionSettings,
    pub cameras: Arc<dyn CameraRetention>,
    pub readiness: Readiness,
}

#[derive(Deserialize)]
struct ExpiredDetection {
    #[serde(rename = "_id")]
    id: ObjectId,
    media: MediaRefs,
    /// False: `media` names images never written (the disk guard paused).
    #[serde(default = "kept")]
    image_kept: bool,
}

fn kept() -> bool {
    true
}

#[derive(Deserialize)]
struct ExpiredAlarm {
    #[serde(rename = "_id")]
    id: ObjectId,
    image: MediaId,
    #[serde(default = "kept")]
    image_kept: bool,
}

impl Retention {
    fn policy(&self) -> Policy {
        Policy {
            default_days: self.settings.days,
            cameras: self.cameras.camera_days(),
        }
    }

    /// Sweeps once the database is ready, then every interval.
    pub async fn run(self) {
        let span = tracing::info_span!("retention", days = self.settings.days);
        async move {
            let mut ready = self.readiness.subscribe();
            loop {
                if ready.wait_for(|s| *s == ReadyState::Ready).await.is_err() {
                    return;
                }
                match self.sweep(Utc::now()).await {
                    Ok(swept) if swept != Swept::default() => tracing::info!(
                        detections = swept.detections,
                        alarms = swept.alarms,
                        images = swept.images,
                        jobs = swept.jobs,
                        unknown_faces = swept.unknown_faces,
                        "expired detections, alarms, ended jobs and unknown faces' embeddings deleted"
                    ),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "retention sweep failed; retrying at the next one")
                    }
                }
                tokio::time::sleep(self.settings.interval).await;
            }
        }
        .instrument(span)
        .await
    }

    /// Deletes everything expired at `now`, batch by batch.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, DbError> {
        let mut swept = Swept {
            jobs: self.ended_jobs(now).await?,
            unknown_faces: self.unknown_faces(now).await?,
            ..Swept::default()
        };
        let Some(filter) = self.policy().expired(now) else {
            return Ok(swept);
        };
        loop {
            let (found, deleted, alarms) = self.detections_batch(&filter).await?;
            swept.detections += deleted;
            swept.alarms += alarms;
            count("detections", deleted);
            count("alarms", alarms);
            let images = found
                .iter()
                .filter(|d| d.image_kept)
                .flat_map(|d| [d.media.original, d.media.annotated]);
            swept.images += self.remove_images(images).await;
            // Deleting nothing of what was found would find it again forever.
            if deleted == 0 {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        // Alarms whose detection went some other way (a restored backup, a
        // crash between two older deletions): expired all the same.
        loop {
            let (found, deleted) = self.alarms_batch(&filter).await?;
            swept.alarms += deleted;
            count("alarms", deleted);
            let images = found.iter().filter(|a| a.image_kept).map(|a| a.image);
            swept.images += self.remove_images(images).await;
            if deleted == 0 {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        Ok(swept)
    }

    /// Deletes the jobs that ended more than `--retention-days` ago. What
    /// they made (detections) expires on its own; without this the queue's
    /// history, one job per webhook delivery included, would only grow.
    async fn ended_jobs(&self, now: DateTime<Utc>) -> Result<u64, DbError> {
        if self.settings.days == 0 {
            return Ok(0);
        }
        let cutoff = now - chrono::Duration::days(i64::from(self.settings.days));
        let ended = [JobState::Done, JobState::Failed, JobState::Cancelled].map(JobState::as_str);
        let filter = doc! {
            "state": { "$in": ended.to_vec() },
            "finished_at": { "$lt": mongodb::bson::DateTime::from_chrono(cutoff) },
        };
        let jobs: Collection<Document> = self.db.collection("jobs");
        let mut total = 0;
        loop {
            let ids: Vec<ObjectId> = jobs
                .find(filter.clone())
                .projection(doc! { "_id": 1 })
                .limit(BATCH)
                .await
                .map_err(DbError::from_driver)?
                .try_collect::<Vec<Document>>()
                .await
                .map_err(DbError::from_driver)?
                .iter()
                .filter_map(|job| job.get_object_id("_id").ok())
                .collect();
            if ids.is_empty() {
                break;
            }
            let mut again = filter.clone();
            again.insert("_id", doc! { "$in": ids });
            let deleted = jobs
                .delete_many(again)
                .await
                .map_err(DbError::from_driver)?
                .deleted_count;
            total += deleted;
            count("jobs", deleted);
            if deleted == 0 {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        Ok(total)
    }

    /// Deletes the embeddings of unknown faces older than
    /// `--unknown-face-retention-days`: biometric data of people nobody
    /// enrolled is kept no longer than it serves (search by face).
    async fn unknown_faces(&self, now: DateTime<Utc>) -> Result<u64, DbError> {
        if self.settings.unknown_face_days == 0 {
            return Ok(0);
        }
        let cutoff = now - chrono::Duration::days(i64::from(self.settings.unknown_face_days));
        let deleted = FacePrints::new(&self.db).delete_unknown_before(cutoff).await?;
        count("unknown_faces", deleted);
        // A visitor's prototypes are unknown faces too: it goes once its
        // last sighting is as old.
        let covers = crate::visitors::Visitors::new(&self.db)
            .delete_last_seen_before(cutoff)
            .await?;
        count("visitors", covers.len() as u64);
        self.remove_images(covers.into_iter()).await;
        Ok(deleted)
    }

    /// One batch of expired detections and their alarms, gone together.
    /// Returns what was found, how many of them were deleted, and how many alarms went with them.
    async fn detections_batch(
        &self,
        filter: &Document,
    ) -> Result<(Vec<ExpiredDetection>, u64, u64), DbError> {
        let detections: Collection<ExpiredDetection> = self.db.collection("detections");
        let alarms: Collection<Document> = self.db.collection("alarms");
        crate::in_transaction!(self.db, |session| async {
            let projection = doc! { "_id": 1, "media": 1, "image_kept": 1 };
            let found = first_batch(&detections, filter, projection, session).await?;
            if found.is_empty() {
                return Ok((found, 0, 0));
            }
            let ids: Vec<ObjectId> = found.iter().map(|d| d.id).collect();
            let deleted = detections
                .delete_many(doc! { "_id": { "$in": &ids } })
                .session(&mut *session)
                .await
                .map_err(DbError::from_driver)?
                .deleted_count;
            let alarms = alarms
                .delete_many(doc! { "detection_id": { "$in": &ids } })
                .session(&mut *session)
                .await
                .map_err(DbError::from_driver)?
                .deleted_count;
            FacePrints::new(&self.db).delete_for(&ids, session).await?;
            Ok((found, deleted, alarms))
        })
    }

    /// One batch of expired alarms left without their detection.
    async fn alarms_batch(&self, filter: &Document) -> Result<(Vec<ExpiredAlarm>, u64), DbError> {
        let alarms: Collection<ExpiredAlarm> = self.db.collection("alarms");
        crate::in_transaction!(self.db, |session| async {
            let projection = doc! { "_id": 1, "image": 1, "image_kept": 1 };
            let found = first_batch(&alarms, filter, projection, session).await?;
            if found.is_empty() {
                return Ok((found, 0));
            }
            let ids: Vec<ObjectId> = found.iter().map(|a| a.id).collect();
            let deleted = alarms
                .delete_many(doc! { "_id": { "$in": &ids } })
                .session(&mut *session)
                .await
                .map_err(DbError::from_driver)?
                .deleted_count;
            Ok((found, deleted))
        })
    }

    /// Removes the images nothing names any more; returns how many went.
    /// One that cannot be checked or removed now is left to the orphan sweep.
    async fn remove_images(&self, images: impl Iterator<Item = MediaId>) -> u64 {
        let mut unique: Vec<MediaId> = Vec::new();
        for id in images {
            // A detection's annotated image is also its alarm's.
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        let mut removed = 0;
        'images: for id in unique {
            for holder in &self.holders {
                match holder.references(id).await {
                    Ok(false) => {}
                    Ok(true) => continue 'images,
                    Err(err) => {
                        tracing::warn!(media = %id, error = %err, "cannot tell whether an image is still needed; the orphan sweep will");
                        continue 'images;
                    }
                }
            }
            match self.media.delete(id).await {
                Ok(()) => {
                    removed += 1;
                    count("images", 1);
                }
                Err(err) => {
                    tracing::warn!(media = %id, error = %err, "could not remove an expired image; the orphan sweep will")
                }
            }
        }
        removed
    }
}

fn count(kind: &'static str, n: u64) {
    if n > 0 {
        ::metrics::counter!("vigil_retention_deleted_total", "kind" => kind).increment(n);
    }
}

/// The first [`BATCH`] documents `filter` matches, inside the transaction.
async fn first_batch<T>(
    collection: &Collection<T>,
    filter: &Document,
    projection: Document,
    session: &mut mongodb::ClientSession,
) -> Result<Vec<T>, DbError>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    collection
        .find(filter.clone())
        .projection(projection)
        .limit(BATCH)
        .session(&mut *session)
        .await
        .map_err(DbError::from_driver)?
        .stream(&mut *session)
        .try_collect()
        .await
        .map_err(DbError::from_driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_are_counted_by_kind() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            count("detections", 3);
            count("alarms", 2);
            count("images", 0);
            count("images", 6);
        });
        let text = handle.render();
        assert!(
            text.contains(r#"vigil_retention_deleted_total{kind="detections"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vigil_retention_deleted_total{kind="alarms"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vigil_retention_deleted_total{kind="images"} 6"#),
            "{text}"
        );
    }
}
