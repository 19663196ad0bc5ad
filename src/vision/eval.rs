//! Detector accuracy on a dlib-style annotated image set.

use std::path::{Path, PathBuf};

use super::detector::{DetectParams, Detector};
use super::geometry::{BoundingBox, Face};
use super::image_input::{decode_image, ImageLimits};

/// A detection matches a ground-truth box at this IoU or above.
pub const MATCH_IOU: f32 = 0.5;

/// One annotated face. `ignore` boxes (dlib's `ignore='1'`: too small,
/// occluded, …) are neither required nor counted against the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthBox {
    pub bbox: BoundingBox,
    pub ignore: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnnotatedImage {
    pub file: PathBuf,
    pub boxes: Vec<TruthBox>,
}

/// Parses dlib's imglab XML (`<image file=…><box top left width height
/// [ignore='1']/>…</image>`); image paths are resolved against `base_dir`.
pub fn parse_dlib_xml(xml: &str, base_dir: &Path) -> anyhow::Result<Vec<AnnotatedImage>> {
    let doc = roxmltree::Document::parse(xml)?;
    let mut images = Vec::new();
    for image in doc.descendants().filter(|n| n.has_tag_name("image")) {
        let file = image
            .attribute("file")
            .ok_or_else(|| anyhow::anyhow!("<image> without a file attribute"))?;
        let mut boxes = Vec::new();
        for b in image.children().filter(|n| n.has_tag_name("box")) {
            let num = |name: &str| -> anyhow::Result<f32> {
                let v = b
                    .attribute(name)
                    .ok_or_else(|| anyhow::anyhow!("<box> in {file} without {name}"))?;
                v.trim()
                    .parse::<f32>()
                    .map_err(|e| anyhow::anyhow!("<box {name}='{v}'> in {file}: {e}"))
            };
            boxes.push(TruthBox {
                bbox: BoundingBox {
                    x: num("left")?,
                    y: num("top")?,
                    width: num("width")?,
                    height: num("height")?,
                },
                ignore: matches!(b.attribute("ignore"), Some(v) if v.trim() != "0"),
            });
        }
        images.push(AnnotatedImage {
            file: base_dir.join(file),
            boxes,
        });
    }
    Ok(images)
}

/// Outcome of matching one image's detections to its boxes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchCounts {
    /// Faces that must be found (non-ignored boxes).
    pub expected: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    /// Detections that matched only an ignored box: not counted either way.
    pub ignored: usize,
}

/// Greedy matching by descending score: each detection takes the unmatched
/// box it overlaps most (IoU ≥ [`MATCH_IOU`]). Matching a required box is a
/// true positive, matching only an ignored box is neutral, anything else is
/// a false positive.
pub fn match_detections(detections: &[Face], truth: &[TruthBox]) -> MatchCounts {
    let mut order: Vec<&Face> = detections.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut taken = vec![false; truth.len()];
    let mut counts = MatchCounts {
        expected: truth.iter().filter(|t| !t.ignore).count(),
        ..MatchCounts::default()
    };
    for det in order {
        let best = |want_ignored: bool| {
            truth
                .iter()
                .enumerate()
                .filter(|(i, t)| !taken[*i] && t.ignore == want_ignored)
                .map(|(i, t)| (i, det.bbox.iou(&t.bbox)))
                .filter(|(_, iou)| *iou >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        if let Some((i, _)) = best(false) {
            taken[i] = true;
            counts.true_positives += 1;
        } else if let Some((i, _)) = best(true) {
            taken[i] = true;
            counts.ignored += 1;
        } else {
            counts.false_positives += 1;
        }
    }
    counts
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageResult {
    pub file: PathBuf,
    pub detected: usize,
    pub counts: MatchCounts,
    /// True for images known to contain no face.
    pub negative: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub images: Vec<ImageResult>,
    pub expected: usize,
    pub true_positives: usize,
    /// Over the annotated images; detections on negatives are counted in
    /// `negatives_with_faces` instead.
    pub false_positives: usize,
    /// How many face-free images had at least one detection.
    pub negatives_with_faces: usize,
}

impl EvalReport {
    pub fn recall(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.true_positives as f64 / self.expected as f64
        }
    }

    pub fn precision(&self) -> f64 {
        let found = self.true_positives + self.false_positives;
        if found == 0 {
            1.0
        } else {
            self.true_positives as f64 / found as f64
        }
    }

    /// The machine-readable summary line other tools parse.
    pub fn summary_line(&self) -> String {
        format!(
            "recall={:.4} precision={:.4} false_positives={} negatives_with_faces={}",
            self.recall(),
            self.precision(),
            self.false_positives,
            self.negatives_with_faces
        )
    }
}

/// The annotation files and the face-free images of a dataset directory.
pub const ANNOTATION_FILES: [&str; 2] = ["training.xml", "testing.xml"];
pub const NEGATIVE_FILES: [&str; 1] = ["dogs.jpg"];

/// Runs the detector over `dir`'s annotated images and negatives.
pub fn evaluate_dir(detector: &Detector, dir: &Path, params: &DetectParams) -> anyhow::Result<EvalReport> {
    let mut annotated = Vec::new();
    for name in ANNOTATION_FILES {
        let path = dir.join(name);
        let xml = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        annotated.extend(parse_dlib_xml(&xml, dir).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    let negatives: Vec<PathBuf> = NEGATIVE_FILES.iter().map(|n| dir.join(n)).collect();
    evaluate(detector, &annotated, &negatives, params)
}

pub fn evaluate(
    detector: &Detector,
    annotated: &[AnnotatedImage],
    negatives: &[PathBuf],
    params: &DetectParams,
) -> anyhow::Result<EvalReport> {
    // Evaluation images are trusted local files; they only need to decode.
    let limits = ImageLimits {
        max_bytes: usize::MAX,
        ..ImageLimits::default()
    };
    let detect = |path: &Path| -> anyhow::Result<Vec<Face>> {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let image = decode_image(&bytes, &limits).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(detector.detect_with(&image, params)?.faces)
    };
    let mut report = EvalReport {
        images: Vec::new(),
        expected: 0,
        true_positives: 0,
        false_positives: 0,
        negatives_with_faces: 0,
    };
    for item in annotated {
        let faces = detect(&item.file)?;
        let counts = match_detections(&faces, &item.boxes);
        report.expected += counts.expected;
        report.true_positives += counts.true_positives;
        report.false_positives += counts.false_positives;
        report.images.push(ImageResult {
            file: item.file.clone(),
            detected: faces.len(),
            counts,
            negative: false,
        });
    }
    for path in negatives {
        let faces = detect(path)?;
        if !faces.is_empty() {
            report.negatives_with_faces += 1;
        }
        report.images.push(ImageResult {
            file: path.clone(),
            detected: faces.len(),
            counts: MatchCounts {
                false_positives: faces.len(),
                ..MatchCounts::default()
            },
            negative: true,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::{Landmarks, Point};

    fn det(score: f32, x: f32, y: f32, w: f32, h: f32) -> Face {
        Face {
            score,
            bbox: BoundingBox {
                x,
                y,
                width: w,
                height: h,
            },
            landmarks: Landmarks::from_array([Point { x, y }; 5]),
        }
    }

    fn truth(x: f32, y: f32, w: f32, h: f32, ignore: bool) -> TruthBox {
        TruthBox {
            bbox: BoundingBox {
                x,
                y,
                width: w,
                height: h,
            },
            ignore,
        }
    }

    #[test]
    fn parses_dlib_xml_with_ignored_boxes() {
        let xml = "<?xml version='1.0' encoding='ISO-8859-1'?>
            <dataset><images>
              <image file='a.jpg' width='500' height='375'>
                <box top='90' left='194' width='37' height='38'/>
                <box top='1' left='2' width='3' height='4' ignore='1'/>
              </image>
              <image file='b.jpg'/>
            </images></dataset>";
        let images = parse_dlib_xml(xml, Path::new("/data")).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].file, Path::new("/data/a.jpg"));
        assert_eq!(images[0].boxes[0], truth(194.0, 90.0, 37.0, 38.0, false));
        assert!(images[0].boxes[1].ignore);
        assert!(images[1].boxes.is_empty());
        assert!(parse_dlib_xml(
            "<dataset><images><image file='x'><box top='a'/></image></images></dataset>",
            Path::new(".")
        )
        .is_err());
    }

    #[test]
    fn greedy_matching_counts_hits_misses_duplicates_and_ignored() {
        let boxes = [
            truth(0.0, 0.0, 10.0, 10.0, false),
            truth(100.0, 0.0, 10.0, 10.0, false),
            truth(200.0, 0.0, 10.0, 10.0, true),
        ];
        let dets = [
            det(0.9, 1.0, 1.0, 10.0, 10.0),     // hit on box 0
            det(0.8, 0.0, 0.0, 10.0, 11.0),     // duplicate of box 0: false positive
            det(0.7, 200.0, 0.0, 10.0, 10.0),   // ignored box: neutral
            det(0.6, 500.0, 500.0, 10.0, 10.0), // nothing there: false positive
            det(0.5, 104.0, 0.0, 10.0, 10.0),   // IoU 6/14 < 0.5 with box 1: false positive
        ];
        let c = match_detections(&dets, &boxes);
        assert_eq!(
            c,
            MatchCounts {
                expected: 2,
                true_positives: 1,
                false_positives: 3,
                ignored: 1
            }
        );
    }

    #[test]
    fn higher_scores_choose_first() {
        // Both detections overlap the one box; the better-scoring one gets it
        // even though it comes second in the input.
        let boxes = [truth(0.0, 0.0, 10.0, 10.0, false)];
        let dets = [det(0.6, 0.0, 0.0, 10.0, 10.0), det(0.9, 1.0, 0.0, 10.0, 10.0)];
        let c = match_detections(&dets, &boxes);
        assert_eq!((c.true_positives, c.false_positives), (1, 1));
    }

    #[test]
    fn summary_line_has_the_documented_shape() {
        let report = EvalReport {
            images: Vec::new(),
            expected: 43,
            true_positives: 42,
            false_positives: 1,
            negatives_with_faces: 0,
        };
        assert_eq!(
            report.summary_line(),
            "recall=0.9767 precision=0.9767 false_positives=1 negatives_with_faces=0"
        );
    }
}
