//! Recurring strangers: unknown faces grouped into anonymous visitors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::detections::DetectionView;
use crate::paging::PageOf;

/// A recurring stranger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitorView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6d0")]
    pub id: String,
    /// Stable per owner.
    #[schema(example = "Visitor 17")]
    pub label: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Detections the visitor was seen in.
    #[schema(example = 4)]
    pub sightings: u64,
    /// Where: cameras, `upload`, clients' labels (at most 20).
    #[schema(example = json!(["front-door", "upload"]))]
    pub sources: Vec<String>,
    /// True for a visitor of the cameras (admins see those).
    pub camera: bool,
    /// The face the visitor was first seen with.
    pub cover: VisitorFace,
    /// Signed URL of that face cut from its frame (150×150 JPEG); absent
    /// when it could not be stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
}

/// One face of a visitor, in its detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitorFace {
    pub detection_id: String,
    pub face_index: u32,
}

/// One detection a visitor was seen in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitorSightingView {
    pub detection: DetectionView,
    pub face_index: u32,
}

/// A visitor and a page of its sightings, newest first (only those whose
/// faces are still kept: `--unknown-face-retention-days`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitorDetail {
    pub visitor: VisitorView,
    pub sightings: PageOf<VisitorSightingView>,
}

/// Whom the visitor is: a new subject (`name`, optional `note`) or one of
/// yours (`subject_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, try_from = "NameFields")]
pub enum NameVisitor {
    New {
        #[schema(example = "Alice")]
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Existing {
        #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
        subject_id: String,
    },
}

/// A name body as read: exactly one of `name` and `subject_id`; other
/// fields are ignored, as the schema (which does not forbid them) promises.
#[derive(Deserialize)]
struct NameFields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    subject_id: Option<String>,
}

impl TryFrom<NameFields> for NameVisitor {
    type Error = &'static str;

    fn try_from(fields: NameFields) -> Result<Self, Self::Error> {
        match (fields.name, fields.subject_id) {
            (Some(name), None) => Ok(NameVisitor::New {
                name,
                note: fields.note,
            }),
            (None, Some(subject_id)) => Ok(NameVisitor::Existing { subject_id }),
            _ => Err("give exactly one of `name` and `subject_id`"),
        }
    }
}

/// `POST /api/v1/visitors/merge`: the visitors `from` become `into`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MergeVisitors {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6d0")]
    pub into: String,
    /// 1 to 20 visitor ids.
    #[schema(example = json!(["6650f1c2a4b1c2d3e4f5a6d1"]))]
    pub from: Vec<String>,
}
