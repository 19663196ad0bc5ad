//! Search by face: which stored detections show a given person.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::detections::DetectionView;

/// The face to look for, when it is not an uploaded image: a face of one of
/// your detections (`detection_id` and `face_index`), or one of your
/// subjects (`subject_id`: its enrolled faces, distances averaged as
/// recognition does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, try_from = "ProbeFields")]
pub enum FaceSearchProbe {
    DetectionFace {
        #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
        detection_id: String,
        /// Position in the detection's `faces`, from 0.
        #[schema(example = 0)]
        face_index: u32,
    },
    Subject {
        #[schema(example = "6650f1c2a4b1c2d3e4f5a6b8")]
        subject_id: String,
    },
}

/// A probe body as read. Exactly one of the two shapes must be complete;
/// other fields are ignored, as the schema (which does not forbid them)
/// promises.
#[derive(Deserialize)]
struct ProbeFields {
    #[serde(default)]
    detection_id: Option<String>,
    #[serde(default)]
    face_index: Option<u32>,
    #[serde(default)]
    subject_id: Option<String>,
}

impl TryFrom<ProbeFields> for FaceSearchProbe {
    type Error = &'static str;

    fn try_from(fields: ProbeFields) -> Result<Self, Self::Error> {
        match (fields.detection_id, fields.face_index, fields.subject_id) {
            (Some(detection_id), Some(face_index), None) => Ok(FaceSearchProbe::DetectionFace {
                detection_id,
                face_index,
            }),
            (detection_id, face_index, Some(subject_id))
                if detection_id.is_none() || face_index.is_none() =>
            {
                Ok(FaceSearchProbe::Subject { subject_id })
            }
            _ => Err("give either `detection_id` with `face_index`, or `subject_id`"),
        }
    }
}

/// In which order matches come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchOrder {
    /// Nearest first.
    #[default]
    Best,
    /// Most recent first.
    Newest,
}

/// One stored face near the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FaceMatchView {
    /// The detection the face is in (all of its faces; `face_index` is the match).
    pub detection: DetectionView,
    #[schema(example = 0)]
    pub face_index: u32,
    /// Euclidean distance to the probe (mean over a subject's faces); the
    /// same person is usually below 0.6.
    #[schema(example = 0.31)]
    pub distance: f32,
}

/// One page of matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FaceSearchResults {
    pub items: Vec<FaceMatchView>,
    /// Pass as `cursor` (with the same body and query) for the next page;
    /// absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// How many stored faces were compared with the probe for this page.
    #[schema(example = 1200)]
    pub scanned: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: &str) -> Result<FaceSearchProbe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn exactly_one_shape_is_complete() {
        assert_eq!(
            probe(r#"{"detection_id":"a","face_index":2}"#).unwrap(),
            FaceSearchProbe::DetectionFace {
                detection_id: "a".into(),
                face_index: 2
            }
        );
        assert_eq!(
            probe(r#"{"subject_id":"s","detection_id":"a","extra":1}"#).unwrap(),
            FaceSearchProbe::Subject {
                subject_id: "s".into()
            }
        );
        for bad in [
            "{}",
            r#"{"detection_id":"a"}"#,
            r#"{"detection_id":"a","face_index":0,"subject_id":"s"}"#,
        ] {
            assert!(probe(bad).is_err(), "{bad}");
        }
    }
}
