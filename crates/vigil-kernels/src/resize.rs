//! Image → network input: a bilinear resize of packed RGB bytes into three
//! f32 planes, in one pass (what every upload and frame goes through before
//! the detector).

/// Where one output column (or row) samples the source: the two neighbours
/// and the weight of the second. Precomputed once per axis so the per-pixel
/// loop is two loads, two multiply-adds and no index arithmetic.
struct Taps {
    lo: Vec<usize>,
    hi: Vec<usize>,
    w: Vec<f32>,
}

impl Taps {
    /// Half-pixel-centre bilinear sampling (what OpenCV's INTER_LINEAR, used
    /// by the reference CenterFace pre-processing, does). `stride` scales the
    /// indices so columns come out as byte offsets into a row.
    fn new(src: usize, dst: usize, stride: usize) -> Self {
        let ratio = src as f32 / dst as f32;
        let last = src.saturating_sub(1);
        let mut taps = Taps {
            lo: Vec::with_capacity(dst),
            hi: Vec::with_capacity(dst),
            w: Vec::with_capacity(dst),
        };
        for d in 0..dst {
            let s = ((d as f32 + 0.5) * ratio - 0.5).max(0.0);
            let lo = (s as usize).min(last);
            let hi = (lo + 1).min(last);
            taps.lo.push(lo * stride);
            taps.hi.push(hi * stride);
            taps.w.push(s - lo as f32);
        }
        taps
    }
}

/// A packed RGB image (`width`×`height`, 3 bytes a pixel, rows back to back).
#[derive(Debug, Clone, Copy)]
pub struct Rgb<'a> {
    pub bytes: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// Resizes `src` to `width`×`height` into the top-left corner of three
/// planes `stride` values wide (R, G and B), as values 0..=255; what lies
/// outside that corner is left as it is.
///
/// # Panics
/// When `src.bytes` is not `width * height * 3` bytes, or a plane is too
/// small for `height` rows of `stride` (≥ `width`) values.
pub fn bilinear_into_planes(
    src: Rgb<'_>,
    planes: [&mut [f32]; 3],
    stride: usize,
    width: usize,
    height: usize,
) {
    assert_eq!(src.bytes.len(), src.width * src.height * 3, "packed RGB");
    assert!(width <= stride, "{width} columns in planes {stride} wide");
    if src.width == 0 || src.height == 0 || width == 0 || height == 0 {
        return;
    }
    assert!(
        planes.iter().all(|p| p.len() >= (height - 1) * stride + width),
        "planes too small"
    );
    let row_bytes = src.width * 3;
    let cols = Taps::new(src.width, width, 3);
    let rows = Taps::new(src.height, height, row_bytes);
    let [r_plane, g_plane, b_plane] = planes;
    for y in 0..height {
        let top = &src.bytes[rows.lo[y]..rows.lo[y] + row_bytes];
        let bottom = &src.bytes[rows.hi[y]..rows.hi[y] + row_bytes];
        let wy = rows.w[y];
        let out = y * stride..y * stride + width;
        let (r_out, g_out, b_out) = (
            &mut r_plane[out.clone()],
            &mut g_plane[out.clone()],
            &mut b_plane[out],
        );
        for x in 0..width {
            // SAFETY: `Taps::new` clamps every index to the last source
            // column times 3, so `lo + 2` and `hi + 2` are < `row_bytes`,
            // the length of `top` and `bottom`; `x < width` is the length of
            // the three output slices and of the tap vectors.
            unsafe {
                let (lo, hi, wx) = (
                    *cols.lo.get_unchecked(x),
                    *cols.hi.get_unchecked(x),
                    *cols.w.get_unchecked(x),
                );
                for (c, out) in [&mut *r_out, &mut *g_out, &mut *b_out].into_iter().enumerate() {
                    let t0 = f32::from(*top.get_unchecked(lo + c));
                    let t1 = f32::from(*top.get_unchecked(hi + c));
                    let b0 = f32::from(*bottom.get_unchecked(lo + c));
                    let b1 = f32::from(*bottom.get_unchecked(hi + c));
                    let t = t0 + (t1 - t0) * wx;
                    let b = b0 + (b1 - b0) * wx;
                    *out.get_unchecked_mut(x) = t + (b - t) * wy;
                }
            }
        }
    }
}
