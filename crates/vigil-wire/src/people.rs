//! People: the subjects a user enrolled, their faces, and who a detected
//! face is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::faces::Face;

/// Who a face is. One per face, never one per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Identity {
    /// Recognised as one of the owner's subjects.
    Recognised(Recognised),
    /// Embedded, and not close enough to any subject (or not clearly closer
    /// to one than to the next).
    Unknown(UnknownFace),
    /// Was a subject who has since been deleted: nothing of them is kept.
    Erased(ErasedFace),
}

impl Identity {
    pub fn unknown() -> Self {
        Identity::Unknown(UnknownFace::default())
    }

    pub fn erased() -> Self {
        Identity::Erased(ErasedFace::default())
    }

    pub fn recognised(&self) -> Option<&Recognised> {
        match self {
            Identity::Recognised(r) => Some(r),
            Identity::Unknown(_) | Identity::Erased(_) => None,
        }
    }
}

/// A face recognised as a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recognised {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub subject_id: String,
    #[schema(example = "Alice")]
    pub name: String,
    /// Mean Euclidean distance to the subject's enrolled faces (dlib's
    /// metric; the same person is usually below 0.6).
    #[schema(example = 0.38)]
    pub distance: f32,
    /// In `(0.5, 1]`: how far below the threshold the distance is (0.5 at
    /// the threshold itself).
    #[schema(example = 0.97)]
    pub confidence: f32,
}

/// An object with one field that is always `true`: `{"unknown": true}`,
/// `{"erased": true}`. `false` is refused, so the type says all there is.
macro_rules! flag_object {
    ($(#[$meta:meta])* $name:ident, $repr:ident = $repr_name:literal, $field:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = $repr_name)]
        pub struct $name {
            /// Always `true`.
            #[schema(example = true)]
            $field: bool,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $field: true }
            }
        }

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $repr {
            $field: bool,
        }

        impl TryFrom<$repr> for $name {
            type Error = &'static str;

            fn try_from(repr: $repr) -> Result<Self, Self::Error> {
                if repr.$field {
                    Ok(Self::default())
                } else {
                    Err(concat!("`", stringify!($field), "` is always true"))
                }
            }
        }
    };
}

/// `{"unknown": true}`, and the recurring stranger the face was grouped
/// with when it was seen: `{"unknown": true, "visitor": {"id", "label",
/// "sightings"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "UnknownRepr")]
pub struct UnknownFace {
    /// Always `true`.
    #[schema(example = true)]
    unknown: bool,
    /// Absent when the face was not grouped (seen before visitors existed,
    /// or its visitor was erased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<VisitorTag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnknownRepr {
    unknown: bool,
    #[serde(default)]
    visitor: Option<VisitorTag>,
}

impl TryFrom<UnknownRepr> for UnknownFace {
    type Error = &'static str;

    fn try_from(repr: UnknownRepr) -> Result<Self, Self::Error> {
        if !repr.unknown {
            return Err("`unknown` is always true");
        }
        Ok(Self {
            unknown: true,
            visitor: repr.visitor,
        })
    }
}

impl Default for UnknownFace {
    fn default() -> Self {
        Self {
            unknown: true,
            visitor: None,
        }
    }
}

impl UnknownFace {
    pub fn of_visitor(visitor: VisitorTag) -> Self {
        Self {
            unknown: true,
            visitor: Some(visitor),
        }
    }
}

/// A recurring stranger, as a face names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitorTag {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6d0")]
    pub id: String,
    /// Stable per owner: "Visitor 17".
    #[schema(example = "Visitor 17")]
    pub label: String,
    /// Which sighting of the visitor this face is (1 for the first time).
    #[schema(example = 4)]
    pub sightings: u64,
}

flag_object!(
    /// `{"erased": true}`.
    ErasedFace,
    ErasedRepr = "ErasedRepr",
    erased
);

/// A detected face and, when it could be embedded, who it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeenFace {
    #[serde(flatten)]
    pub face: Face,
    /// Absent when the face was too small or too far from frontal to embed:
    /// no identity rather than a wrong one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

impl From<Face> for SeenFace {
    fn from(face: Face) -> Self {
        Self { face, identity: None }
    }
}

/// A person known to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubjectView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6b7")]
    pub id: String,
    #[schema(example = "Alice")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "my sister")]
    pub note: Option<String>,
    #[schema(example = 3)]
    pub face_count: u32,
    /// Signed URL of one enrolled face crop (150×150 JPEG), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an enrolled face came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaceOrigin {
    /// An image sent to `POST /api/v1/subjects/{id}/faces`.
    Upload,
    /// A face of a stored detection.
    Detection { detection_id: String, face_index: u32 },
}

/// One enrolled face of a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubjectFaceView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c1")]
    pub id: String,
    pub subject_id: String,
    pub origin: FaceOrigin,
    /// The face in the source image.
    pub face: Face,
    /// Signed URL of the aligned face crop the embedding was computed from (150×150 JPEG).
    pub crop_url: String,
    /// The recognition model (and alignment) the embedding belongs to.
    #[schema(example = "dlib_resnet_v1+sp5")]
    pub model: String,
    pub created_at: DateTime<Utc>,
}

/// A correction on a detected face: `{"not": SUBJECT_ID}` (this face is not
/// that subject: faces nearer to it than to the subject's own are not given
/// the name from now on) or `{"is": SUBJECT_ID}` (enrol the face as that
/// subject). An id that is not one of the caller's subjects is 404.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", try_from = "FeedbackFields")]
pub enum FeedbackRequest {
    Not(String),
    Is(String),
}

/// A feedback body as read, before exactly one of the two is required.
/// Other fields are ignored, as the schema (which does not forbid them)
/// promises.
#[derive(Deserialize)]
struct FeedbackFields {
    #[serde(default)]
    not: Option<String>,
    #[serde(default)]
    is: Option<String>,
}

impl TryFrom<FeedbackFields> for FeedbackRequest {
    type Error = &'static str;

    fn try_from(fields: FeedbackFields) -> Result<Self, Self::Error> {
        match (fields.not, fields.is) {
            (Some(not), None) => Ok(FeedbackRequest::Not(not)),
            (None, Some(is)) => Ok(FeedbackRequest::Is(is)),
            _ => Err("give exactly one of `not` and `is`"),
        }
    }
}

/// Which correction was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Not,
    Is,
}

/// A correction, as stored. `DELETE /api/v1/feedback/{id}` undoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    #[schema(example = "6650f1c2a4b1c2d3e4f5a6c1")]
    pub id: String,
    pub kind: FeedbackKind,
    pub subject_id: String,
    pub detection_id: String,
    pub face_index: u32,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_have_the_documented_shapes() {
        let known = Identity::Recognised(Recognised {
            subject_id: "6650f1c2a4b1c2d3e4f5a6b7".into(),
            name: "Alice".into(),
            distance: 0.25,
            confidence: 0.75,
        });
        let value = serde_json::to_value(&known).unwrap();
        assert_eq!(value["name"], "Alice");
        assert_eq!(serde_json::from_value::<Identity>(value).unwrap(), known);

        assert_eq!(
            serde_json::to_value(Identity::unknown()).unwrap(),
            json!({"unknown": true})
        );
        assert_eq!(
            serde_json::from_value::<Identity>(json!({"unknown": true})).unwrap(),
            Identity::unknown()
        );
        assert!(serde_json::from_value::<Identity>(json!({"unknown": false})).is_err());
        assert_eq!(
            serde_json::to_value(Identity::erased()).unwrap(),
            json!({"erased": true})
        );
        assert_eq!(
            serde_json::from_value::<Identity>(json!({"erased": true})).unwrap(),
            Identity::erased()
        );
        assert!(serde_json::from_value::<Identity>(json!({"erased": false})).is_err());
        assert!(serde_json::from_value::<Identity>(json!({})).is_err());
    }

    #[test]
    fn a_seen_face_is_a_face_with_an_optional_identity() {
        let face = json!({
            "score": 0.5,
            "box": {"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0},
            "landmarks": {
                "left_eye": {"x": 1.0, "y": 1.0}, "right_eye": {"x": 2.0, "y": 1.0},
                "nose": {"x": 1.5, "y": 2.0}, "mouth_left": {"x": 1.0, "y": 3.0},
                "mouth_right": {"x": 2.0, "y": 3.0}
            }
        });
        let plain: SeenFace = serde_json::from_value(face.clone()).unwrap();
        assert_eq!(plain.identity, None);
        assert_eq!(serde_json::to_value(&plain).unwrap(), face);
        let mut with = face;
        with["identity"] = json!({"unknown": true});
        let seen: SeenFace = serde_json::from_value(with.clone()).unwrap();
        assert_eq!(seen.identity, Some(Identity::unknown()));
        assert_eq!(serde_json::to_value(&seen).unwrap(), with);
    }
}
