//! Recurring strangers, asked of whoever groups unknown faces (`visitors`),
//! so that detections need not know how grouping works.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;
use vigil_wire::people::VisitorTag;

use super::DetectionId;
use crate::users::UserId;
use crate::vision::Embedding;

/// An unknown face of a frame, to be grouped.
#[derive(Debug, Clone)]
pub struct StrangerFace {
    pub face_index: u32,
    pub embedding: Embedding,
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
    /// grouped. Never fails the detection: a failure is logged and leaves
    /// the faces plainly unknown.
    fn group<'a>(
        &'a self,
        owner: Option<UserId>,
        model: &'a str,
        detection: DetectionId,
        faces: Vec<StrangerFace>,
    ) -> BoxFuture<'a, Vec<Option<Grouped>>>;

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
        faces: Vec<StrangerFace>,
    ) -> BoxFuture<'a, Vec<Option<Grouped>>> {
        Box::pin(std::future::ready(vec![None; faces.len()]))
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
