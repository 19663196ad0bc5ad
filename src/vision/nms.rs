//! Greedy non-maximum suppression, as in the reference CenterFace code.

use super::geometry::Face;

/// Keeps the best-scoring face of every cluster: faces are visited by
/// descending score and any later face whose IoU with a kept one is at least
/// `iou_threshold` is dropped. Returns the kept faces, best first.
pub fn nms(mut faces: Vec<Face>, iou_threshold: f32) -> Vec<Face> {
    // total_cmp keeps the sort well-defined even if a score were NaN.
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::with_capacity(faces.len().min(64));
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) < iou_threshold) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::{BoundingBox, Landmarks, Point};

    fn face(score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Face {
        let p = Point { x: x1, y: y1 };
        Face {
            score,
            bbox: BoundingBox::from_corners(x1, y1, x2, y2),
            landmarks: Landmarks::from_array([p; 5]),
        }
    }

    #[test]
    fn overlapping_boxes_collapse_to_the_best_one() {
        let faces = vec![
            face(0.6, 0.0, 0.0, 10.0, 10.0),
            face(0.9, 1.0, 1.0, 11.0, 11.0),
            face(0.7, 50.0, 50.0, 60.0, 60.0),
            face(0.8, 0.5, 0.5, 10.5, 10.5),
        ];
        let kept = nms(faces, 0.3);
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
    }

    #[test]
    fn threshold_is_inclusive_like_the_reference() {
        // IoU of these two is exactly 1/3.
        let a = face(0.9, 0.0, 0.0, 10.0, 10.0);
        let b = face(0.8, 5.0, 0.0, 15.0, 10.0);
        assert!((a.bbox.iou(&b.bbox) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(nms(vec![a, b], 1.0 / 3.0).len(), 1);
        assert_eq!(nms(vec![a, b], 0.34).len(), 2);
    }

    #[test]
    fn suppressed_faces_do_not_suppress_others() {
        // b overlaps a and c; a beats b, so c survives even though b would
        // have suppressed it.
        let a = face(0.9, 0.0, 0.0, 10.0, 10.0);
        let b = face(0.8, 4.0, 0.0, 14.0, 10.0);
        let c = face(0.7, 8.0, 0.0, 18.0, 10.0);
        let kept = nms(vec![c, b, a], 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
        assert!(nms(Vec::new(), 0.3).is_empty());
    }
}
