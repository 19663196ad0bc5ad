//! Where a face is in an image: boxes, points and the five landmarks, in
//! the pixels of the image as stored (after its EXIF orientation).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An axis-aligned box in original image pixels; `(x, y)` is the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BoundingBox {
    /// Builds a box from its corners; inverted corners give an empty box.
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self {
            x: x1,
            y: y1,
            width: (x2 - x1).max(0.0),
            height: (y2 - y1).max(0.0),
        }
    }

    pub fn right(&self) -> f32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.height
    }

    pub fn area(&self) -> f32 {
        self.width * self.height
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let w = (self.right().min(other.right()) - self.x.max(other.x)).max(0.0);
        let h = (self.bottom().min(other.bottom()) - self.y.max(other.y)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The part of the box inside a `width`×`height` image.
    pub fn clamped(&self, width: f32, height: f32) -> Self {
        let x1 = self.x.clamp(0.0, width);
        let y1 = self.y.clamp(0.0, height);
        let x2 = self.right().clamp(0.0, width);
        let y2 = self.bottom().clamp(0.0, height);
        Self::from_corners(x1, y1, x2, y2)
    }
}

/// A point in original image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn clamped(&self, width: f32, height: f32) -> Self {
        Self {
            x: self.x.clamp(0.0, width),
            y: self.y.clamp(0.0, height),
        }
    }
}

/// The five CenterFace landmarks. "Left" and "right" are as seen in the
/// image (the subject's right eye is `left_eye`), which is how the model was
/// trained (WIDER FACE / RetinaFace annotation order).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Landmarks {
    pub left_eye: Point,
    pub right_eye: Point,
    pub nose: Point,
    pub mouth_left: Point,
    pub mouth_right: Point,
}

impl Landmarks {
    pub fn from_array(p: [Point; 5]) -> Self {
        Self {
            left_eye: p[0],
            right_eye: p[1],
            nose: p[2],
            mouth_left: p[3],
            mouth_right: p[4],
        }
    }

    pub fn to_array(&self) -> [Point; 5] {
        [
            self.left_eye,
            self.right_eye,
            self.nose,
            self.mouth_left,
            self.mouth_right,
        ]
    }

    /// The same landmarks moved point by point.
    pub fn map(&self, f: impl Fn(Point) -> Point) -> Self {
        Self::from_array(self.to_array().map(f))
    }
}

/// One detected face, in original image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Face {
    /// Detector confidence in `[0, 1]`.
    pub score: f32,
    #[serde(rename = "box")]
    #[schema(rename = "box")]
    pub bbox: BoundingBox,
    pub landmarks: Landmarks,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BoundingBox::from_corners(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        let far = BoundingBox::from_corners(20.0, 20.0, 30.0, 30.0);
        assert_eq!(a.iou(&far), 0.0);
        let half = BoundingBox::from_corners(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
        let empty = BoundingBox::from_corners(3.0, 3.0, 3.0, 3.0);
        assert_eq!(empty.iou(&empty), 0.0);
    }
}
