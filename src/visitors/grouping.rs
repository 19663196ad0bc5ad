//! Incremental grouping of unknown faces: each face goes to the visitor
//! with the nearest prototype within the distance, or starts a new one.
//!
//! Nearest prototype rather than a centroid: a stranger's first faces (from
//! the door camera, then the drive) may differ more from their mean than
//! from each other, and prototypes are stored faces, never an average that
//! nobody's face is. The distance is stricter than recognition's by
//! default: two strangers taken for one visitor mislead more than one
//! stranger split in two, which `merge` repairs.
//!
//! On one instance the choice and the creation of a visitor are serialised
//! per owner, so two frames of a new stranger make one visitor. Two
//! instances may still each make one for the same stranger at the same
//! moment; merging repairs that too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use image::RgbImage;
use mongodb::bson::oid::ObjectId;

use super::repository::{Prototype, VisitorRecord, Visitors};
use super::VisitorId;
use crate::db::{DbError, StoredEmbedding};
use crate::detections::{DetectionId, Grouped, StrangerFace, Strangers};
use crate::media::{ImageKind, MediaId, SharedMediaStore};
use crate::users::UserId;
use crate::vision::{encode_jpeg, BoundingBox, Embedding};

/// The visitor among `visitors` with the prototype nearest to `face`, if
/// within `distance`.
pub fn nearest(visitors: &[VisitorRecord], face: &Embedding, distance: f32) -> Option<usize> {
    visitors
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let d = v
                .prototypes
                .iter()
                .map(|p| p.embedding.0.distance(face))
                .fold(f32::INFINITY, f32::min);
            (d <= distance).then_some((i, d))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// One lock per owner whose faces are being grouped on this instance.
type OwnerLocks = HashMap<Option<UserId>, Arc<tokio::sync::Mutex<()>>>;

/// The side of a visitor's cover, like an enrolled face's crop.
pub const COVER_SIDE: u32 = 150;

/// The face in `bbox` with a margin of a quarter of its size, square,
/// resized to [`COVER_SIDE`]: what a person recognises a stranger by.
pub fn cover_of(image: &RgbImage, bbox: BoundingBox) -> Option<RgbImage> {
    let side = bbox.width.max(bbox.height) * 1.5;
    let cx = bbox.x + bbox.width / 2.0;
    let cy = bbox.y + bbox.height / 2.0;
    let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
    let (x0, y0) = (
        clamp(cx - side / 2.0, image.width()),
        clamp(cy - side / 2.0, image.height()),
    );
    let (x1, y1) = (
        clamp(cx + side / 2.0, image.width()),
        clamp(cy + side / 2.0, image.height()),
    );
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let cut = image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
    Some(image::imageops::resize(
        &cut,
        COVER_SIDE,
        COVER_SIDE,
        image::imageops::FilterType::Triangle,
    ))
}

#[derive(Clone)]
pub struct Grouping {
    pub visitors: Visitors,
    pub media: SharedMediaStore,
    pub distance: f32,
    locks: Arc<Mutex<OwnerLocks>>,
}

impl Grouping {
    pub fn new(visitors: Visitors, media: SharedMediaStore, distance: f32) -> Self {
        Self {
            visitors,
            media,
            distance,
            locks: Arc::default(),
        }
    }

    /// Stores a new visitor's cover; `None` (and a warning) when it cannot:
    /// a visitor without a picture beats no visitor.
    async fn store_cover(&self, image: &Arc<RgbImage>, bbox: BoundingBox) -> Option<MediaId> {
        let image = image.clone();
        let jpeg = tokio::task::spawn_blocking(move || encode_jpeg(&cover_of(&image, bbox)?).ok())
            .await
            .ok()
            .flatten()?;
        let id = MediaId::new(ImageKind::Jpeg);
        match self.media.put(id, &jpeg).await {
            Ok(()) => Some(id),
            Err(err) => {
                tracing::warn!(error = %err, "a new visitor's cover could not be stored");
                None
            }
        }
    }

    fn lock_of(&self, owner: Option<UserId>) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(owner)
            .or_default()
            .clone()
    }

    /// See [`Strangers::detection_deleted`].
    async fn drop_detection(&self, id: VisitorId, detection: DetectionId) -> Result<(), DbError> {
        let Some(before) = self.visitors.by_id(id).await? else {
            return Ok(());
        };
        let after = self.visitors.drop_detection(id, detection).await?;
        let mut images: Vec<MediaId> = Vec::new();
        if before.cover_detection == Some(detection) {
            images.extend(before.cover);
        }
        if let Some(after) = after.filter(|v| v.sightings <= 0) {
            // Seen in no other detection: nothing of the stranger stays.
            self.visitors.delete(after.id).await?;
            images.extend(after.cover);
            tracing::info!(visitor = %after.id, "visitor gone with its only detection");
        }
        for image in images {
            if let Err(err) = self.media.delete(image).await {
                tracing::warn!(media = %image, error = %err, "a visitor's cover could not be removed; the orphan sweep will");
            }
        }
        Ok(())
    }

    async fn group_faces(
        &self,
        owner: Option<UserId>,
        model: &str,
        detection: DetectionId,
        cover_from: Option<&Arc<RgbImage>>,
        faces: &[StrangerFace],
    ) -> Result<Vec<Option<Grouped>>, DbError> {
        let lock = self.lock_of(owner);
        let _turn = lock.lock().await;
        let mut known = self.visitors.of_owner(owner, model).await?;
        let mut grouped = Vec::with_capacity(faces.len());
        for face in faces {
            if let Some(i) = nearest(&known, &face.embedding, self.distance) {
                // Counted now, so a second face of the same frame is the next sighting.
                known[i].sightings += 1;
                let visitor = &known[i];
                grouped.push(Some(Grouped {
                    visitor: visitor.id.0,
                    tag: visitor.tag(visitor.sightings),
                    new: false,
                }));
                continue;
            }
            let now = Utc::now();
            let cover = match cover_from {
                Some(image) => self.store_cover(image, face.bbox).await,
                None => None,
            };
            let visitor = VisitorRecord {
                id: VisitorId::new(),
                owner_id: owner,
                number: self.visitors.next_number(owner).await?,
                model: model.to_owned(),
                prototypes: vec![Prototype {
                    detection_id: detection,
                    face_index: face.face_index,
                    embedding: StoredEmbedding(face.embedding),
                }],
                first_seen: now,
                last_seen: now,
                sightings: 0,
                sources: Vec::new(),
                cover,
                cover_detection: cover.map(|_| detection),
            };
            if let Err(err) = self.visitors.insert(&visitor).await {
                if let Some(cover) = cover {
                    let _ = self.media.delete(cover).await;
                }
                return Err(err);
            }
            tracing::info!(visitor = %visitor.id, label = %visitor.label(), "new visitor");
            grouped.push(Some(Grouped {
                visitor: visitor.id.0,
                tag: visitor.tag(1),
                new: true,
            }));
            let mut counted = visitor;
            counted.sightings = 1;
            known.push(counted);
        }
        Ok(grouped)
    }
}

impl Strangers for Grouping {
    fn group<'a>(
        &'a self,
        owner: Option<UserId>,
        model: &'a str,
        detection: DetectionId,
        cover_from: Option<Arc<RgbImage>>,
        faces: Vec<StrangerFace>,
    ) -> BoxFuture<'a, Vec<Option<Grouped>>> {
        Box::pin(async move {
            match self
                .group_faces(owner, model, detection, cover_from.as_ref(), &faces)
                .await
            {
                Ok(grouped) => grouped,
                Err(err) => {
                    tracing::warn!(error = %err, "grouping unknown faces failed; they stay ungrouped");
                    vec![None; faces.len()]
                }
            }
        })
    }

    fn detection_deleted(&self, detection: DetectionId, visitors: Vec<ObjectId>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for visitor in visitors {
                let id = VisitorId(visitor);
                if let Err(err) = self.drop_detection(id, detection).await {
                    tracing::warn!(visitor = %id, error = %err, "a deleted detection could not be taken out of its visitor");
                }
            }
        })
    }

    fn seen<'a>(
        &'a self,
        detection: DetectionId,
        at: DateTime<Utc>,
        source: &'a str,
        faces: Vec<(StrangerFace, Grouped)>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for (face, grouped) in faces {
                let prototype = (!grouped.new).then_some(Prototype {
                    detection_id: detection,
                    face_index: face.face_index,
                    embedding: StoredEmbedding(face.embedding),
                });
                let id = VisitorId(grouped.visitor);
                if let Err(err) = self.visitors.seen(id, at, source, prototype.as_ref()).await {
                    tracing::warn!(visitor = %id, error = %err, "a sighting could not be counted");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::EMBEDDING_LEN;

    fn at(x: f32) -> Embedding {
        let mut v = [0.0; EMBEDDING_LEN];
        v[0] = x;
        Embedding::from_array(v)
    }

    fn visitor(prototypes: &[f32]) -> VisitorRecord {
        VisitorRecord {
            id: VisitorId::new(),
            owner_id: None,
            number: 1,
            model: "m".into(),
            prototypes: prototypes
                .iter()
                .map(|&x| Prototype {
                    detection_id: DetectionId::new(),
                    face_index: 0,
                    embedding: StoredEmbedding(at(x)),
                })
                .collect(),
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            sightings: 1,
            sources: Vec::new(),
            cover: None,
            cover_detection: None,
        }
    }

    #[test]
    fn a_cover_is_the_face_with_a_margin_even_at_the_frame_edge() {
        let mut frame = RgbImage::new(200, 100);
        for (x, y, p) in frame.enumerate_pixels_mut() {
            *p = image::Rgb([x as u8, y as u8, 0]);
        }
        let centred = BoundingBox {
            x: 80.0,
            y: 30.0,
            width: 40.0,
            height: 40.0,
        };
        let cover = cover_of(&frame, centred).unwrap();
        assert_eq!(cover.dimensions(), (COVER_SIDE, COVER_SIDE));
        // 60 px around the face's centre (100, 50): x from 70 to 130.
        assert!((cover.get_pixel(0, 75)[0] as i32 - 70).abs() <= 1);
        assert!((cover.get_pixel(COVER_SIDE - 1, 75)[0] as i32 - 130).abs() <= 1);
        let cornered = BoundingBox {
            x: -10.0,
            y: -10.0,
            width: 30.0,
            height: 30.0,
        };
        assert!(cover_of(&frame, cornered).is_some());
        let outside = BoundingBox {
            x: 500.0,
            y: 500.0,
            width: 10.0,
            height: 10.0,
        };
        assert!(cover_of(&frame, outside).is_none());
    }

    #[test]
    fn a_face_joins_the_visitor_with_the_nearest_prototype_within_the_distance() {
        let visitors = [visitor(&[0.0, 2.0]), visitor(&[1.0])];
        assert_eq!(nearest(&visitors, &at(1.9), 0.5), Some(0), "its second prototype");
        assert_eq!(nearest(&visitors, &at(1.2), 0.5), Some(1));
        assert_eq!(
            nearest(&visitors, &at(0.55), 0.5),
            Some(1),
            "0.45 from 1.0, 0.55 from 0.0"
        );
        assert_eq!(nearest(&visitors, &at(3.0), 0.5), None, "a new visitor");
        assert_eq!(nearest(&[], &at(0.0), 0.5), None);
    }
}
