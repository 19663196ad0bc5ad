//! dlib's 5-point shape predictor (`shape_predictor_5_face_landmarks.dat`,
//! CC0, Davis King): an ensemble of regression trees (Kazemi & Sullivan,
//! "One Millisecond Face Alignment with an Ensemble of Regression Trees",
//! CVPR 2014) that places the four eye corners and the base of the nose
//! inside a face rectangle. These are the points dlib's
//! `get_face_chip_details` aligns the recognition network's chips by, so
//! running dlib's predictor is what makes vigil's chips dlib's chips.
//!
//! The model, as `shape_predictor.h` serialises it (version 1):
//! - the initial shape: the mean face, 5 points in rectangle-normalised
//!   coordinates ((0, 0) the rectangle's top-left corner, (1, 1) its
//!   bottom-right);
//! - a cascade of forests; each tree is complete (2^d − 1 splits, 2^d
//!   leaves), a split compares the difference of two feature pixels with a
//!   threshold, a leaf holds a correction of the whole shape;
//! - per cascade, its feature pixels: each the index of a shape point (its
//!   anchor) and an offset from that point in the initial shape.
//!
//! Running it: start from the initial shape; at each cascade, move every
//! feature pixel with its anchor by the similarity transform that takes the
//! initial shape to the current one, read the image's grey level there
//! (`(r + g + b) / 3`, zero outside), walk every tree and add up the
//! leaves. The arithmetic follows dlib's types (f32 shape and offsets, f64
//! rectangle mapping, pixel positions rounded half up) so the same
//! rectangle gives the same points.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::align::Point;
use crate::serial::{FormatError, Reader};
use crate::RgbImage;

/// The file name in the models directory (`models/manifest.toml`).
pub const PREDICTOR_FILE: &str = "shape_predictor_5_face_landmarks.dat";
/// SHA-256 of the one predictor file this crate is tested with.
pub const PREDICTOR_SHA256: &str = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888";

/// Points of the shape. dlib's 68-point model would parse but is not what
/// `get_face_chip_details`' 5-point template is for.
pub const SHAPE_POINTS: usize = 5;

/// Bounds on what a file may declare before anything is allocated for it:
/// far above the real model (15 cascades of 500 depth-4 trees over 500
/// pixels) and far below what garbage would ask for.
const MAX_CASCADES: u64 = 100;
const MAX_TREES: u64 = 10_000;
const MAX_DEPTH: u32 = 12;
const MAX_FEATURE_PIXELS: u64 = 1 << 16;

/// Why a shape predictor file could not be loaded; none panics.
#[derive(Debug, thiserror::Error)]
pub enum PredictorError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A read error from a stream given to [`ShapePredictor::from_reader`].
    #[error("cannot read the shape predictor: {0}")]
    Read(std::io::Error),
    #[error("shape predictor file has sha256 {found}, expected {expected}")]
    Checksum { expected: String, found: String },
    #[error("shape predictor file is truncated: {what} at byte {offset} runs past the end")]
    Truncated { offset: usize, what: String },
    /// The bytes are not dlib's encoding, or the structure is not a shape
    /// predictor's (tree sizes, indices out of range, non-finite values).
    #[error("shape predictor file is malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("shape predictor has {found} points, expected dlib's 5-point model")]
    WrongPointCount { found: usize },
    #[error("shape predictor file has {bytes} bytes after the model, from byte {offset}")]
    TrailingData { offset: usize, bytes: u64 },
}

impl From<FormatError> for PredictorError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Truncated { offset, what } => PredictorError::Truncated { offset, what },
            FormatError::Malformed { offset, what } => PredictorError::Malformed { offset, what },
            FormatError::Read(e) => PredictorError::Read(e),
        }
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> PredictorError {
    PredictorError::Malformed {
        offset,
        what: what.into(),
    }
}

/// The rectangle the predictor runs in, in image pixels, with dlib's
/// corner convention: the initial shape's (0, 0) lands on (`left`, `top`)
/// and (1, 1) on (`right`, `bottom`). (A dlib `rectangle` of integer
/// corners is one of these as it is; its `width()` is `right − left + 1`.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceRect {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

/// The predictor's five points in image pixels, in dlib's order: the outer
/// and inner corner of the eye on the image's right (the subject's left
/// eye), the outer and inner corner of the other eye, the base of the nose.
/// Not rounded: dlib rounds each to the nearest pixel when it stores them
/// in a `full_object_detection`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape(pub [Point; SHAPE_POINTS]);

impl Shape {
    /// The points as dlib's `full_object_detection` holds them (rounded
    /// half up to whole pixels).
    pub fn rounded(&self) -> Shape {
        Shape(self.0.map(|p| Point {
            x: (p.x + 0.5).floor(),
            y: (p.y + 0.5).floor(),
        }))
    }
}

/// One split of a tree: left child when `pixel[a] − pixel[b] > threshold`.
#[derive(Debug, Clone, Copy)]
struct Split {
    a: u32,
    b: u32,
    threshold: f32,
}

/// One level of the cascade. Its trees all have `depth` levels (dlib's
/// trainer grows them so; a file whose trees differ is refused), stored
/// one after another.
#[derive(Clone)]
struct Cascade {
    depth: u32,
    /// Per tree, `2^depth − 1` splits in dlib's breadth-first order.
    splits: Vec<Split>,
    /// Per tree, `2^depth` corrections of the whole shape.
    leaves: Vec<[f32; 2 * SHAPE_POINTS]>,
    /// Per feature pixel: the shape point it moves with, and its offset
    /// from that point in the initial shape.
    anchors: Vec<u8>,
    deltas: Vec<[f32; 2]>,
}

/// dlib's 5-point face landmark model, loaded. `Send + Sync`, and
/// allocation-free per call but for a small buffer of pixel values.
#[derive(Clone)]
pub struct ShapePredictor {
    initial: [f32; 2 * SHAPE_POINTS],
    cascades: Vec<Cascade>,
}

impl std::fmt::Debug for ShapePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapePredictor")
            .field("cascades", &self.cascades.len())
            .field("trees", &self.trees())
            .finish_non_exhaustive()
    }
}

impl ShapePredictor {
    /// Reads and parses the file, checking its structure (not its hash: see
    /// [`ShapePredictor::load_verified`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PredictorError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| PredictorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::with_capacity(1 << 16, file)).map_err(|e| with_path(e, path))
    }

    /// Like [`ShapePredictor::load`], and also checks that the file is the
    /// one this crate was tested with ([`PREDICTOR_SHA256`]). A file that is
    /// not fails with [`PredictorError::Checksum`], even if it also fails
    /// to parse.
    pub fn load_verified(path: impl AsRef<Path>) -> Result<Self, PredictorError> {
        let path = path.as_ref();
        // 9 MB: read whole, hashed, then parsed from memory.
        let bytes = std::fs::read(path).map_err(|source| PredictorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let found = crate::sha256_hex(&bytes);
        if found != PREDICTOR_SHA256 {
            return Err(PredictorError::Checksum {
                expected: PREDICTOR_SHA256.into(),
                found,
            });
        }
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PredictorError> {
        Self::from_reader(bytes)
    }

    /// Parses a predictor from any stream, read once to its end.
    pub fn from_reader(src: impl Read) -> Result<Self, PredictorError> {
        parse(&mut Reader::new(src))
    }

    /// Total number of regression trees.
    pub fn trees(&self) -> usize {
        self.cascades.iter().map(|c| c.leaves.len() >> c.depth).sum()
    }

    /// Bytes held by the model's trees and feature pixels.
    pub fn memory_bytes(&self) -> usize {
        self.cascades
            .iter()
            .map(|c| {
                c.splits.len() * std::mem::size_of::<Split>()
                    + c.leaves.len() * std::mem::size_of::<[f32; 2 * SHAPE_POINTS]>()
                    + c.anchors.len()
                    + c.deltas.len() * std::mem::size_of::<[f32; 2]>()
            })
            .sum()
    }

    /// The five points of the face in `rect`, as dlib's
    /// `shape_predictor::operator()(image, rect)` finds them (before it
    /// rounds them to whole pixels).
    pub fn predict(&self, image: &RgbImage, rect: &FaceRect) -> Shape {
        let mut shape = self.initial;
        let (mut pixels, mut leaves) = (Vec::new(), Vec::new());
        for cascade in &self.cascades {
            let m = similarity(&self.initial, &shape);
            pixels.clear();
            pixels.extend(cascade.anchors.iter().zip(&cascade.deltas).map(|(&a, d)| {
                let a = usize::from(a);
                // f32 like dlib's shape matrix, then into the image in f64.
                let x = m[0][0] * d[0] + m[0][1] * d[1] + shape[2 * a];
                let y = m[1][0] * d[0] + m[1][1] * d[1] + shape[2 * a + 1];
                intensity(image, to_image(rect, x, y))
            }));
            // Two passes: walk every tree first, then add the leaves. The
            // leaves (4.8 MB for the whole model) are read one per tree at
            // an address known only at the end of its walk; walking all of
            // the cascade's trees first lets those reads overlap instead of
            // each stalling the sum. The sum keeps dlib's order (tree by
            // tree), so the result is the same.
            let splits_per_tree = (1usize << cascade.depth) - 1;
            leaves.clear();
            for (t, splits) in cascade.splits.chunks_exact(splits_per_tree).enumerate() {
                let mut i = 0;
                while i < splits_per_tree {
                    let s = splits[i];
                    // Indices were checked against the pixel count at load.
                    let left = pixels[s.a as usize] - pixels[s.b as usize] > s.threshold;
                    i = 2 * i + 2 - usize::from(left);
                }
                leaves.push((t << cascade.depth) + i - splits_per_tree);
            }
            for &leaf in &leaves {
                for (v, d) in shape.iter_mut().zip(&cascade.leaves[leaf]) {
                    *v += d;
                }
            }
        }
        Shape(std::array::from_fn(|i| {
            let [x, y] = to_image(rect, shape[2 * i], shape[2 * i + 1]);
            Point {
                x: x as f32,
                y: y as f32,
            }
        }))
    }
}

/// From rectangle-normalised to image coordinates (dlib's
/// `unnormalizing_tform`: (0, 0) to the top-left corner, (1, 1) to the
/// bottom-right one), in f64 as dlib's `point_transform_affine`.
fn to_image(rect: &FaceRect, x: f32, y: f32) -> [f64; 2] {
    let (left, top) = (f64::from(rect.left), f64::from(rect.top));
    [
        left + f64::from(x) * (f64::from(rect.right) - left),
        top + f64::from(y) * (f64::from(rect.bottom) - top),
    ]
}

/// dlib's grey level of the pixel nearest to `p` (`(r + g + b) / 3`
/// truncated, `assign_pixel` from RGB), 0 outside the image.
fn intensity(image: &RgbImage, p: [f64; 2]) -> f32 {
    // dlib converts to its integer `point` by rounding half up.
    let (x, y) = ((p[0] + 0.5).floor(), (p[1] + 0.5).floor());
    if !(x >= 0.0 && y >= 0.0 && x < image.width() as f64 && y < image.height() as f64) {
        return 0.0;
    }
    let at = (y as usize * image.width() + x as usize) * 3;
    let rgb = &image.data()[at..at + 3];
    ((u32::from(rgb[0]) + u32::from(rgb[1]) + u32::from(rgb[2])) / 3) as f32
}

/// The rotation-and-scale part of the least-squares similarity transform
/// from `from` to `to` (dlib's `find_similarity_transform`, Umeyama; in two
/// dimensions its closed form: the complex ratio `Σ conj(a)·b / Σ |a|²` of
/// the centred points), computed in f64 and rounded to f32 as dlib's
/// `matrix_cast<float>` does.
fn similarity(from: &[f32; 2 * SHAPE_POINTS], to: &[f32; 2 * SHAPE_POINTS]) -> [[f32; 2]; 2] {
    let n = SHAPE_POINTS as f64;
    let mean = |s: &[f32; 2 * SHAPE_POINTS]| {
        let (mut x, mut y) = (0.0, 0.0);
        for p in s.chunks_exact(2) {
            x += f64::from(p[0]);
            y += f64::from(p[1]);
        }
        [x / n, y / n]
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (a, b) in from.chunks_exact(2).zip(to.chunks_exact(2)) {
        let (ax, ay) = (f64::from(a[0]) - mf[0], f64::from(a[1]) - mf[1]);
        let (bx, by) = (f64::from(b[0]) - mt[0], f64::from(b[1]) - mt[1]);
        dot += ax * bx + ay * by;
        cross += ax * by - ay * bx;
        var += ax * ax + ay * ay;
    }
    let (c, s) = (dot / var, cross / var);
    [[c as f32, -s as f32], [s as f32, c as f32]]
}

fn with_path(e: PredictorError, path: &Path) -> PredictorError {
    match e {
        PredictorError::Read(source) => PredictorError::Io {
            path: path.to_path_buf(),
            source,
        },
        e => e,
    }
}

/// A finite f32 (dlib writes floats as mantissa and exponent; the model's
/// are all finite).
fn float<R: Read>(r: &mut Reader<R>, what: &str) -> Result<f32, PredictorError> {
    let at = r.pos;
    let v = r.float(what)? as f32;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(malformed(at, format!("{what} is not a finite f32")))
    }
}

/// A `std::vector`'s length, at most `max`.
fn length<R: Read>(r: &mut Reader<R>, max: u64, what: &str) -> Result<usize, PredictorError> {
    let at = r.pos;
    let n = r.count(what)?;
    if n > max {
        return Err(malformed(at, format!("{what}: {n} is more than {max}")));
    }
    Ok(n as usize)
}

/// A shape-sized `matrix<float,0,1>`: dlib writes the dimensions negated
/// (its newer format), then the values row by row. A column of another
/// even length is another model's shape.
fn shape_column<R: Read>(r: &mut Reader<R>, what: &str) -> Result<[f32; 2 * SHAPE_POINTS], PredictorError> {
    let at = r.pos;
    let (nr, nc) = (r.int(8, what)?, r.int(8, what)?);
    let (nr, nc) = (nr.unsigned_abs(), nc.unsigned_abs());
    if nc == 1 && nr % 2 == 0 && nr != 2 * SHAPE_POINTS as u64 {
        return Err(PredictorError::WrongPointCount {
            found: (nr / 2) as usize,
        });
    }
    if (nr, nc) != (2 * SHAPE_POINTS as u64, 1) {
        return Err(malformed(
            at,
            format!("{what}: a {nr}×{nc} matrix, expected {}×1", 2 * SHAPE_POINTS),
        ));
    }
    let mut values = [0f32; 2 * SHAPE_POINTS];
    for v in &mut values {
        *v = float(r, what)?;
    }
    Ok(values)
}

fn parse<R: Read>(r: &mut Reader<R>) -> Result<ShapePredictor, PredictorError> {
    let at = r.pos;
    let version = r.int(4, "shape predictor version")?;
    if version != 1 {
        return Err(malformed(
            at,
            format!("shape predictor version {version}, expected 1"),
        ));
    }
    let initial = shape_column(r, "initial shape")?;

    // The forests, then (in a separate vector each) the cascades' anchors
    // and offsets; the trees' pixel indices are checked once those are read.
    let n_cascades = length(r, MAX_CASCADES, "cascade count")?;
    if n_cascades == 0 {
        return Err(malformed(r.pos, "no cascades"));
    }
    let mut cascades = Vec::with_capacity(n_cascades);
    let mut split_offsets = Vec::with_capacity(n_cascades);
    for c in 0..n_cascades {
        let n_trees = length(r, MAX_TREES, "tree count")?;
        if n_trees == 0 {
            return Err(malformed(r.pos, format!("cascade {c} has no trees")));
        }
        let mut cascade = Cascade {
            depth: 0,
            splits: Vec::new(),
            leaves: Vec::new(),
            anchors: Vec::new(),
            deltas: Vec::new(),
        };
        for t in 0..n_trees {
            let at = r.pos;
            let n_splits = length(r, (1 << MAX_DEPTH) - 1, "split count")?;
            // Complete trees only: dlib walks them by index arithmetic.
            let depth = (n_splits + 1).trailing_zeros();
            if (n_splits + 1).count_ones() != 1 || depth == 0 {
                return Err(malformed(
                    at,
                    format!("cascade {c} tree {t}: {n_splits} splits is not a complete tree"),
                ));
            }
            if t == 0 {
                cascade.depth = depth;
                cascade.splits.reserve(n_trees * n_splits);
                cascade.leaves.reserve(n_trees * (n_splits + 1));
            } else if depth != cascade.depth {
                return Err(malformed(
                    at,
                    format!(
                        "cascade {c} tree {t} has depth {depth}, the cascade's first {}",
                        cascade.depth
                    ),
                ));
            }
            split_offsets.push(r.pos);
            for _ in 0..n_splits {
                let a = r.count("split pixel")?;
                let b = r.count("split pixel")?;
                let threshold = float(r, "split threshold")?;
                // Out-of-range values are refused once the pixel count is
                // known; saturate so the check sees them.
                let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                cascade.splits.push(Split {
                    a: clamp(a),
                    b: clamp(b),
                    threshold,
                });
            }
            let at = r.pos;
            let n_leaves = length(r, 1 << MAX_DEPTH, "leaf count")?;
            if n_leaves != n_splits + 1 {
                return Err(malformed(
                    at,
                    format!("cascade {c} tree {t}: {n_leaves} leaves for {n_splits} splits"),
                ));
            }
            for _ in 0..n_leaves {
                cascade.leaves.push(shape_column(r, "leaf value")?);
            }
        }
        cascades.push(cascade);
    }

    let at = r.pos;
    let n = length(r, MAX_CASCADES, "anchor list count")?;
    if n != n_cascades {
        return Err(malformed(
            at,
            format!("{n} anchor lists for {n_cascades} cascades"),
        ));
    }
    for (c, cascade) in cascades.iter_mut().enumerate() {
        let n_pixels = length(r, MAX_FEATURE_PIXELS, "feature pixel count")?;
        for _ in 0..n_pixels {
            let at = r.pos;
            let a = r.count("anchor")?;
            if a >= SHAPE_POINTS as u64 {
                return Err(malformed(
                    at,
                    format!("cascade {c}: anchor {a} of a {SHAPE_POINTS}-point shape"),
                ));
            }
            cascade.anchors.push(a as u8);
        }
    }
    let at = r.pos;
    let n = length(r, MAX_CASCADES, "offset list count")?;
    if n != n_cascades {
        return Err(malformed(
            at,
            format!("{n} offset lists for {n_cascades} cascades"),
        ));
    }
    for (c, cascade) in cascades.iter_mut().enumerate() {
        let at = r.pos;
        let n_pixels = length(r, MAX_FEATURE_PIXELS, "feature pixel count")?;
        if n_pixels != cascade.anchors.len() {
            return Err(malformed(
                at,
                format!(
                    "cascade {c}: {n_pixels} offsets for {} anchors",
                    cascade.anchors.len()
                ),
            ));
        }
        for _ in 0..n_pixels {
            let dx = float(r, "pixel offset")?;
            let dy = float(r, "pixel offset")?;
            cascade.deltas.push([dx, dy]);
        }
    }
    let end = r.pos;
    let extra = r.rest()?;
    if extra > 0 {
        return Err(PredictorError::TrailingData {
            offset: end,
            bytes: extra,
        });
    }

    // Every split reads two of its cascade's feature pixels.
    let mut trees = split_offsets.into_iter();
    for (c, cascade) in cascades.iter().enumerate() {
        let per_tree = (1usize << cascade.depth) - 1;
        let n_pixels = cascade.anchors.len() as u32;
        for (t, splits) in cascade.splits.chunks_exact(per_tree).enumerate() {
            let at = trees.next().expect("one offset per tree");
            if let Some(s) = splits.iter().find(|s| s.a >= n_pixels || s.b >= n_pixels) {
                return Err(malformed(
                    at,
                    format!(
                        "cascade {c} tree {t}: a split reads pixels {} and {} of {n_pixels}",
                        s.a, s.b
                    ),
                ));
            }
        }
    }
    Ok(ShapePredictor { initial, cascades })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_of_a_rotated_scaled_copy() {
        let from = [0.1f32, 0.2, 0.9, 0.2, 0.5, 0.5, 0.2, 0.8, 0.8, 0.8];
        let (k, a) = (1.3f64, 0.2f64);
        let mut to = [0f32; 10];
        for i in 0..5 {
            let (x, y) = (f64::from(from[2 * i]), f64::from(from[2 * i + 1]));
            to[2 * i] = (k * (a.cos() * x - a.sin() * y) + 3.0) as f32;
            to[2 * i + 1] = (k * (a.sin() * x + a.cos() * y) - 1.0) as f32;
        }
        let m = similarity(&from, &to);
        assert!((f64::from(m[0][0]) - k * a.cos()).abs() < 1e-6, "{m:?}");
        assert!((f64::from(m[1][0]) - k * a.sin()).abs() < 1e-6, "{m:?}");
        assert_eq!(m[0][1], -m[1][0]);
        assert_eq!(similarity(&from, &from), [[1.0, 0.0], [0.0, 1.0]]);
    }

    #[test]
    fn rectangles_map_corners_like_dlib() {
        let rect = FaceRect {
            left: 20.0,
            top: 30.0,
            right: 127.0,
            bottom: 140.0,
        };
        assert_eq!(to_image(&rect, 0.0, 0.0), [20.0, 30.0]);
        assert_eq!(to_image(&rect, 1.0, 1.0), [127.0, 140.0]);
        assert_eq!(to_image(&rect, 0.5, 0.5), [73.5, 85.0]);
    }

    #[test]
    fn intensity_rounds_half_up_and_is_zero_outside() {
        // 2×1 image: (10, 20, 31) then (255, 255, 254).
        let data = [10u8, 20, 31, 255, 255, 254];
        let image = RgbImage::new(&data, 2, 1).unwrap();
        assert_eq!(intensity(&image, [0.49, 0.0]), 20.0);
        assert_eq!(intensity(&image, [0.5, 0.0]), 254.0);
        assert_eq!(intensity(&image, [-0.5, 0.0]), 20.0);
        assert_eq!(intensity(&image, [-0.51, 0.0]), 0.0);
        assert_eq!(intensity(&image, [1.5, 0.0]), 0.0);
        assert_eq!(intensity(&image, [0.0, 0.5]), 0.0);
    }
}
