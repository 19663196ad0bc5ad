//! Face geometry in original-image pixels, and the mapping between the
//! original image and the letterboxed network input.

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

    fn map(&self, f: impl Fn(Point) -> Point) -> Self {
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

/// How an image of `orig_width`×`orig_height` was scaled by `scale` into the
/// top-left corner of a `input_width`×`input_height` network input (the rest
/// is zero padding). Padding only on the right and bottom keeps the inverse
/// mapping a pure division.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub orig_width: u32,
    pub orig_height: u32,
    /// Size of the resized image inside the input.
    pub resized_width: u32,
    pub resized_height: u32,
    /// Network input size: the resized size rounded up to `multiple`.
    pub input_width: u32,
    pub input_height: u32,
    /// Resized ÷ original, per axis (they differ by rounding only).
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Letterbox {
    /// Fits an image so its longer side is `max_side` (images are scaled up
    /// as well as down, so every input of a given aspect ratio gets the same
    /// network shape), then pads each side to a multiple of `multiple`.
    pub fn fit(orig_width: u32, orig_height: u32, max_side: u32, multiple: u32) -> Self {
        let orig_width = orig_width.max(1);
        let orig_height = orig_height.max(1);
        let max_side = max_side.max(multiple);
        let long = orig_width.max(orig_height) as f64;
        let factor = max_side as f64 / long;
        let rw = ((orig_width as f64 * factor).round() as u32).clamp(1, max_side);
        let rh = ((orig_height as f64 * factor).round() as u32).clamp(1, max_side);
        let round_up = |v: u32| v.div_ceil(multiple) * multiple;
        Self {
            orig_width,
            orig_height,
            resized_width: rw,
            resized_height: rh,
            input_width: round_up(rw),
            input_height: round_up(rh),
            scale_x: rw as f32 / orig_width as f32,
            scale_y: rh as f32 / orig_height as f32,
        }
    }

    /// Maps a point in network-input pixels back to original pixels.
    pub fn to_original(&self, p: Point) -> Point {
        Point {
            x: p.x / self.scale_x,
            y: p.y / self.scale_y,
        }
    }

    /// Maps a face found in network-input pixels back to the original image,
    /// clamped to it (the padding and the box margins can reach outside).
    pub fn face_to_original(&self, score: f32, bbox: BoundingBox, landmarks: Landmarks) -> Face {
        let (w, h) = (self.orig_width as f32, self.orig_height as f32);
        let tl = self.to_original(Point { x: bbox.x, y: bbox.y });
        let br = self.to_original(Point {
            x: bbox.right(),
            y: bbox.bottom(),
        });
        Face {
            score,
            bbox: BoundingBox::from_corners(tl.x, tl.y, br.x, br.y).clamped(w, h),
            landmarks: landmarks.map(|p| self.to_original(p).clamped(w, h)),
        }
    }
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

    #[test]
    fn letterbox_keeps_aspect_and_pads_to_multiple() {
        let lb = Letterbox::fit(1000, 750, 640, 32);
        assert_eq!((lb.resized_width, lb.resized_height), (640, 480));
        assert_eq!((lb.input_width, lb.input_height), (640, 480));
        let lb = Letterbox::fit(500, 1000, 640, 32);
        assert_eq!((lb.resized_width, lb.resized_height), (320, 640));
        let lb = Letterbox::fit(1000, 333, 640, 32);
        assert_eq!((lb.resized_width, lb.resized_height), (640, 213));
        assert_eq!((lb.input_width, lb.input_height), (640, 224));
        // Small images are scaled up to the same shape as large ones.
        let lb = Letterbox::fit(100, 75, 640, 32);
        assert_eq!((lb.input_width, lb.input_height), (640, 480));
        // Degenerate inputs still give a valid, non-empty shape.
        let lb = Letterbox::fit(1, 10_000, 320, 32);
        assert_eq!((lb.resized_width, lb.resized_height), (1, 320));
        assert_eq!((lb.input_width, lb.input_height), (32, 320));
    }

    #[test]
    fn face_maps_back_to_original_pixels_and_is_clamped() {
        // 1000×333 → 640×213 inside a 640×224 input: scale 0.64 horizontally.
        let lb = Letterbox::fit(1000, 333, 640, 32);
        let pt = |x, y| Point { x, y };
        let lm = Landmarks::from_array([
            pt(64.0, 32.0),
            pt(128.0, 32.0),
            pt(96.0, 64.0),
            pt(70.0, 96.0),
            pt(700.0, 220.0), // in the padding: clamps to the image corner
        ]);
        let face = lb.face_to_original(0.9, BoundingBox::from_corners(32.0, 16.0, 160.0, 230.0), lm);
        let sy = 213.0 / 333.0;
        assert!((face.bbox.x - 50.0).abs() < 1e-3);
        assert!((face.bbox.y - 16.0 / sy).abs() < 1e-3);
        assert!((face.bbox.width - 200.0).abs() < 1e-3);
        // The bottom edge was in the padding, so it stops at the image.
        assert!((face.bbox.bottom() - 333.0).abs() < 1e-3);
        assert!((face.landmarks.left_eye.x - 100.0).abs() < 1e-3);
        assert!((face.landmarks.nose.y - 64.0 / sy).abs() < 1e-3);
        assert_eq!(face.landmarks.mouth_right, pt(1000.0, 333.0));
        assert_eq!(face.score, 0.9);
    }
}
