//! Face geometry in original-image pixels, and the mapping between the
//! original image and the letterboxed network input.

pub use vigil_wire::faces::{BoundingBox, Face, Landmarks, Point};

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
