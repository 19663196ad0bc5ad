//! The reference data of the recognizer's tests: the model file and what
//! `scripts/recognizer_reference.py reference` wrote with dlib itself
//! (`make recognizer-reference`, run by `make test`). Also compiled into the
//! crate's unit tests (`src/align.rs`), hence no dependency on the crate.
//!
//! Missing files fail the test with the command that makes them: a
//! recognizer test that skips itself would pass without testing anything.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn models_dir() -> PathBuf {
    std::env::var_os("VIGIL_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

pub fn model_path() -> PathBuf {
    let path = models_dir().join("dlib_face_recognition_resnet_model_v1.dat");
    assert!(path.is_file(), "{} is missing: run `make models`", path.display());
    path
}

pub fn predictor_path() -> PathBuf {
    let path = models_dir().join("shape_predictor_5_face_landmarks.dat");
    assert!(path.is_file(), "{} is missing: run `make models`", path.display());
    path
}

pub fn reference_dir() -> PathBuf {
    let dir = models_dir().join("test-assets/recognizer");
    assert!(
        dir.join("faces.tsv").is_file(),
        "{} is missing: run `make recognizer-reference` (dlib-bin computes it)",
        dir.join("faces.tsv").display()
    );
    dir
}

/// An RGB image read from a binary PPM (P6, maxval 255) as the script writes it.
pub struct Ppm {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

pub fn read_ppm(path: &Path) -> Ppm {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // Header: "P6\n<w> <h>\n255\n".
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..pos]).unwrap().to_string());
    }
    pos += 1;
    assert_eq!(
        (fields[0].as_str(), fields[3].as_str()),
        ("P6", "255"),
        "{}",
        path.display()
    );
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = bytes[pos..].to_vec();
    assert_eq!(data.len(), width * height * 3, "{}", path.display());
    Ppm { width, height, data }
}

/// One face dlib found, with everything dlib computed for it.
pub struct Face {
    /// `<person>/<photo>` or `faces/<photo>`.
    pub photo: String,
    pub index: usize,
    /// The identities set's folder name; None for the faces set.
    pub person: Option<String>,
    pub image: PathBuf,
    pub chip: PathBuf,
    pub dlib_box_area: f64,
    /// dlib's chip_details: left, top, right, bottom, angle.
    pub dlib_chip: [f64; 5],
    pub dlib_landmarks: [f32; 10],
    /// CenterFace's landmarks of the same face (image-left eye first), if it
    /// found it.
    pub centerface: Option<[f32; 10]>,
    /// dlib's descriptor of `chip`.
    pub from_chip: Vec<f32>,
    /// dlib's descriptor from its whole pipeline (same chip, computed inside
    /// `compute_face_descriptor(img, shape)`).
    pub pipeline: Vec<f32>,
    /// dlib's HOG detector's rectangle: left, top, right, bottom.
    pub dlib_rect: [f32; 4],
    /// CenterFace's box of the same face (x1, y1, x2, y2, score), if it
    /// found it.
    pub centerface_box: Option<[f32; 5]>,
    /// dlib's rectangle moved and resized, and dlib's 5 points predicted in
    /// it (the script's PROBES).
    pub probes: Vec<([f32; 4], [f32; 10])>,
}

fn floats<T: std::str::FromStr>(field: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    field.split_whitespace().map(|v| v.parse().unwrap()).collect()
}

pub fn faces() -> Vec<Face> {
    let dir = reference_dir();
    let text = std::fs::read_to_string(dir.join("faces.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let c = [
        "photo",
        "face",
        "person",
        "image",
        "chip",
        "dlib_box_area",
        "dlib_chip_rect_angle",
        "dlib_landmarks",
        "centerface_landmarks",
        "descriptor_from_chip",
        "descriptor_pipeline",
        "dlib_rect",
        "centerface_box",
        "probe_rects_landmarks",
    ]
    .map(col);
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            Face {
                photo: f[c[0]].to_string(),
                index: f[c[1]].parse().unwrap(),
                person: (f[c[2]] != "-").then(|| f[c[2]].to_string()),
                image: dir.join(f[c[3]]),
                chip: dir.join(f[c[4]]),
                dlib_box_area: f[c[5]].parse().unwrap(),
                dlib_chip: floats(f[c[6]]).try_into().unwrap(),
                dlib_landmarks: floats(f[c[7]]).try_into().unwrap(),
                centerface: (f[c[8]] != "-").then(|| floats(f[c[8]]).try_into().unwrap()),
                from_chip: floats(f[c[9]]),
                pipeline: floats(f[c[10]]),
                dlib_rect: floats(f[c[11]]).try_into().unwrap(),
                centerface_box: (f[c[12]] != "-").then(|| floats(f[c[12]]).try_into().unwrap()),
                probes: floats::<f32>(f[c[13]])
                    .chunks_exact(14)
                    .map(|p| (p[..4].try_into().unwrap(), p[4..].try_into().unwrap()))
                    .collect(),
            }
        })
        .collect()
}

/// Quantiles of `values` (sorted copy): min, median, p90, max.
pub fn summary(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "n={} min={:.3e} median={:.3e} p90={:.3e} max={:.3e}",
        v.len(),
        q(0.0),
        q(0.5),
        q(0.9),
        q(1.0)
    )
}

pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

/// Verification on every pair of `(person, descriptor)`: same person when
/// closer than `threshold`.
pub struct PairStats {
    pub same_pairs: usize,
    pub diff_pairs: usize,
    /// Pairs decided right at `threshold`.
    pub accuracy: f64,
    /// Largest distance of a same-person pair, smallest of a different-person pair.
    pub max_same: f64,
    pub min_diff: f64,
}

pub fn pair_stats(items: &[(&str, &[f32])], threshold: f64) -> PairStats {
    let (mut same, mut diff, mut right) = (0, 0, 0);
    let (mut max_same, mut min_diff) = (0f64, f64::INFINITY);
    for (i, (pa, a)) in items.iter().enumerate() {
        for (pb, b) in &items[i + 1..] {
            let d = l2(a, b);
            if pa == pb {
                same += 1;
                max_same = max_same.max(d);
                right += usize::from(d < threshold);
            } else {
                diff += 1;
                min_diff = min_diff.min(d);
                right += usize::from(d >= threshold);
            }
        }
    }
    PairStats {
        same_pairs: same,
        diff_pairs: diff,
        accuracy: right as f64 / (same + diff) as f64,
        max_same,
        min_diff,
    }
}
