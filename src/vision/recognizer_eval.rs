//! How well embeddings tell people apart, on a folder of one sub-folder per
//! person (like ../shared/data/identities): every photo's largest face is
//! detected and embedded, every pair of embeddings compared.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::recognizer::{Embedding, FaceEmbedder};
use super::{decode_image, Detector, ImageLimits};

/// One photo's outcome.
#[derive(Debug, Clone)]
pub struct Photo {
    pub person: String,
    pub file: PathBuf,
    /// `None` when no face was found or it could not be embedded.
    pub embedding: Option<Embedding>,
    pub faces: usize,
}

/// Distances of every pair of embedded photos, split by whether both show
/// the same person.
#[derive(Debug, Clone, Default)]
pub struct PairDistances {
    pub same: Vec<f32>,
    pub different: Vec<f32>,
}

/// The figures of `vigil eval-recognizer`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairReport {
    /// Pairs decided right at the threshold evaluated.
    pub pair_accuracy: f64,
    pub same_pairs: usize,
    pub diff_pairs: usize,
    /// The threshold that decides the most pairs right (the middle of the
    /// best gap between two distances).
    pub best_threshold: f32,
    /// Same-person pairs accepted at the threshold that accepts at most one
    /// in a thousand different-person pairs.
    pub tar_at_far_0_001: f64,
    /// Photos without a face or without an embedding.
    pub missed: usize,
}

impl PairReport {
    /// The machine-readable last line.
    pub fn summary_line(&self) -> String {
        format!(
            "pair_accuracy={:.4} same_pairs={} diff_pairs={} best_threshold={:.3} tar_at_far_0.001={:.4} missed={}",
            self.pair_accuracy,
            self.same_pairs,
            self.diff_pairs,
            self.best_threshold,
            self.tar_at_far_0_001,
            self.missed
        )
    }
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

/// A folder's entries in name order, so that runs are comparable.
fn sorted(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    Ok(entries)
}

fn is_image(file: &Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Every photo under `dir`, the person being its folder's name; at least
/// `min_people` folders with photos.
pub fn photos_by_person(dir: &Path, min_people: usize) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut photos = Vec::new();
    for person_dir in sorted(dir)?.into_iter().filter(|p| p.is_dir()) {
        let person = person_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in sorted(&person_dir)?.into_iter().filter(|f| is_image(f)) {
            photos.push((person.clone(), file));
        }
    }
    let people = photos
        .iter()
        .map(|(p, _)| p)
        .collect::<std::collections::HashSet<_>>()
        .len();
    anyhow::ensure!(
        people >= min_people,
        "{} needs one folder of photos per person, at least {min_people} {}",
        dir.display(),
        if min_people == 1 { "person" } else { "people" }
    );
    Ok(photos)
}

/// Every photo in `dir` and its sub-folders (one level: strangers may be
/// sorted by person or not), labelled by the folder it is in.
pub fn photos_anywhere(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut photos = Vec::new();
    for entry in sorted(dir)? {
        if entry.is_dir() {
            let folder = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in sorted(&entry)?.into_iter().filter(|f| is_image(f)) {
                photos.push((folder.clone(), file));
            }
        } else if is_image(&entry) {
            photos.push((String::new(), entry));
        }
    }
    anyhow::ensure!(!photos.is_empty(), "{} has no photos", dir.display());
    Ok(photos)
}

/// Detects and embeds the largest face of each photo.
pub fn embed_photos(
    detector: &Detector,
    embedder: &dyn FaceEmbedder,
    photos: &[(String, PathBuf)],
) -> anyhow::Result<Vec<Photo>> {
    let limits = ImageLimits {
        max_bytes: usize::MAX,
        ..ImageLimits::default()
    };
    photos
        .iter()
        .map(|(person, file)| {
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let image = decode_image(&bytes, &limits).with_context(|| file.display().to_string())?;
            let detection = detector.detect(&image)?;
            let largest = detection
                .faces
                .iter()
                .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
                .copied();
            let embedding = largest.and_then(|face| embedder.embed_faces(&image, &[face]).pop().flatten());
            Ok(Photo {
                person: person.clone(),
                file: file.clone(),
                embedding,
                faces: detection.faces.len(),
            })
        })
        .collect()
}

/// Every pair of embedded photos.
pub fn pair_distances(photos: &[Photo]) -> PairDistances {
    let embedded: Vec<(&str, &Embedding)> = photos
        .iter()
        .filter_map(|p| p.embedding.as_ref().map(|e| (p.person.as_str(), e)))
        .collect();
    let mut pairs = PairDistances::default();
    for (i, (person_a, a)) in embedded.iter().enumerate() {
        for (person_b, b) in &embedded[i + 1..] {
            let distance = a.distance(b);
            if person_a == person_b {
                pairs.same.push(distance);
            } else {
                pairs.different.push(distance);
            }
        }
    }
    pairs
}

/// The report at `threshold` (same person when the distance is below it).
pub fn pair_report(pairs: &PairDistances, threshold: f32, missed: usize) -> PairReport {
    let right_at = |t: f32| {
        pairs.same.iter().filter(|&&d| d < t).count() + pairs.different.iter().filter(|&&d| d >= t).count()
    };
    let total = pairs.same.len() + pairs.different.len();
    let accuracy = |right: usize| {
        if total == 0 {
            0.0
        } else {
            right as f64 / total as f64
        }
    };

    let mut all: Vec<f32> = pairs.same.iter().chain(&pairs.different).copied().collect();
    all.sort_by(f32::total_cmp);
    all.dedup();
    // Between two neighbouring distances every threshold decides the same
    // pairs: try the middle of each gap, and below and above them all.
    let mut candidates: Vec<f32> = all.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    candidates.extend(all.first().map(|d| d - 1e-3));
    candidates.extend(all.last().map(|d| d + 1e-3));
    let best_threshold = candidates
        .iter()
        .copied()
        .max_by(|a, b| {
            right_at(*a)
                .cmp(&right_at(*b))
                // Among equally good thresholds, the one nearest the usual 0.6.
                .then_with(|| (b - 0.6).abs().total_cmp(&(a - 0.6).abs()))
        })
        .unwrap_or(threshold);

    let mut different = pairs.different.clone();
    different.sort_by(f32::total_cmp);
    let allowed = (different.len() as f64 * 0.001).floor() as usize;
    let far_threshold = different.get(allowed).copied().unwrap_or(f32::INFINITY);
    let tar = if pairs.same.is_empty() {
        0.0
    } else {
        pairs.same.iter().filter(|&&d| d < far_threshold).count() as f64 / pairs.same.len() as f64
    };
    PairReport {
        pair_accuracy: accuracy(right_at(threshold)),
        same_pairs: pairs.same.len(),
        diff_pairs: pairs.different.len(),
        best_threshold,
        tar_at_far_0_001: tar,
        missed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_known_distances() {
        let pairs = PairDistances {
            same: vec![0.3, 0.4, 0.65],
            different: vec![0.5, 0.7, 0.8, 0.9],
        };
        let report = pair_report(&pairs, 0.6, 2);
        // At 0.6: 0.3 and 0.4 accepted, 0.65 refused; 0.5 wrongly accepted.
        assert!((report.pair_accuracy - 5.0 / 7.0).abs() < 1e-9);
        assert_eq!((report.same_pairs, report.diff_pairs, report.missed), (3, 4, 2));
        // 0.45 (between 0.4 and 0.5) and 0.675 (between 0.65 and 0.7) both
        // decide 6 of 7; 0.675 is nearer 0.6.
        assert!((report.best_threshold - 0.675).abs() < 1e-6, "{report:?}");
        // 4 different pairs allow no false accept: accept below 0.5.
        assert!((report.tar_at_far_0_001 - 2.0 / 3.0).abs() < 1e-9);
        assert!(report.summary_line().ends_with("missed=2"));
    }
}
