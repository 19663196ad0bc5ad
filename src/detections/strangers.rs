//! Recurring strangers, asked of whoever groups unknown faces (`visitors`),
//! so that detections need not know how grouping works.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use image::RgbImage;
use mongodb::bson::oid::ObjectId;
use vigil_wire::people::VisitorTag;

use super::DetectionId;
use crate::users::UserId;
use crate::vision::{BoundingBox, Embedding};

/// An unknown face of a frame, to be grouped.
#[derive(Debug, Clone)]
pub struct StrangerFace {
    pub face_index: u32,
    pub embedding: Embedding,
    /// Where it is in the frame: a new visitor's cover is cut from there.
    pub bbox: BoundingBox,
}

/// A face given to a visitor, counted once its detection is stored.
#[derive(Debug, Clone)]
pub struct Grouped {
    pub visitor: ObjectId,
    pub tag: VisitorTag,
    /// The visitor was made for this face (which is already its first
    /// prototype).
    pub new: bool,
}

pub trait Strangers: Send + Sync {
    /// The visitor of each face, in order: `None` where a face was not
    /// grouped. A new visitor's cover is cut from `cover_from` (none when
    /// images are not being stored). Never fails the detection: a failure is logged and leaves
    /// the faces plainly unknown.
    fn group<'a>(
        &'a self,
        owner: Option<UserId>,
        model: &'a str,
        detection: DetectionId,
        cover_from: Option<Arc<RgbImage>>,
        faces: Vec<StrangerFace>,
    ) -> BoxFuture<'a, Vec<Option<Grouped>>>;

    /// Takes a deleted detection out of the visitors its faces were
    /// grouped with: its faces stop being their prototypes and cover, and
    /// a visitor seen nowhere else goes. Never fails the deletion.
    fn detection_deleted(&self, detection: DetectionId, visitors: Vec<ObjectId>) -> BoxFuture<'_, ()>;

    /// Counts the sightings of a stored detection.
    fn seen<'a>(
        &'a self,
        detection: DetectionId,
        at: DateTime<Utc>,
        source: &'a str,
        faces: Vec<(StrangerFace, Grouped)>,
    ) -> BoxFuture<'a, ()>;
}

/// Grouping switched off: unknown faces stay plainly unknown.
pub struct NoGrouping;

impl Strangers for NoGrouping {
    fn group<'a>(
        &'a self,
        _: Option<UserId>,
        _: &'a str,
        _: DetectionId,
        _: Option<Arc<RgbImage>>,
        faces: Vec<StrangerFace>,
    ) -> BoxFuture<'a, Vec<Option<Grouped>>> {
        Box::pin(std::future::ready(vec![None; faces.len()]))
    }

    fn detection_deleted(&self, _: DetectionId, _: Vec<ObjectId>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    fn seen<'a>(
        &'a self,
        _: DetectionId,
        _: DateTime<Utc>,
        _: &'a str,
        _: Vec<(StrangerFace, Grouped)>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}
