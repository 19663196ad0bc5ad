//! Image → network input: bilinear resize, RGB planes, zero padding, in one pass.

use image::RgbImage;
use tract_onnx::prelude::{Tensor, TractResult};

use super::geometry::Letterbox;

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
    fn new(src: u32, dst: u32, stride: usize) -> Self {
        let ratio = src as f32 / dst as f32;
        let last = src.saturating_sub(1) as usize;
        let mut taps = Taps {
            lo: Vec::with_capacity(dst as usize),
            hi: Vec::with_capacity(dst as usize),
            w: Vec::with_capacity(dst as usize),
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

/// Builds the `[1, 3, input_height, input_width]` f32 tensor CenterFace
/// expects: RGB in 0..=255 (the model has no normalisation), the resized
/// image in the top-left corner, zeros elsewhere.
pub fn to_input_tensor(image: &RgbImage, lb: &Letterbox) -> TractResult<Tensor> {
    let (iw, ih) = (lb.input_width as usize, lb.input_height as usize);
    let (rw, rh) = (lb.resized_width as usize, lb.resized_height as usize);
    let mut tensor = Tensor::zero::<f32>(&[1, 3, ih, iw])?;
    let (sw, sh) = image.dimensions();
    if sw == 0 || sh == 0 {
        return Ok(tensor);
    }
    let src: &[u8] = image.as_raw();
    let row_bytes = sw as usize * 3;
    let cols = Taps::new(sw, rw as u32, 3);
    let rows = Taps::new(sh, rh as u32, row_bytes);

    let plane = ih * iw;
    let mut view = tensor.try_as_plain_ram_mut()?;
    let data = view.as_slice_mut::<f32>()?;
    let (r_plane, rest) = data.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);

    for y in 0..rh {
        let top = &src[rows.lo[y]..rows.lo[y] + row_bytes];
        let bottom = &src[rows.hi[y]..rows.hi[y] + row_bytes];
        let wy = rows.w[y];
        let out = y * iw..y * iw + rw;
        let (r_out, g_out, b_out) = (
            &mut r_plane[out.clone()],
            &mut g_plane[out.clone()],
            &mut b_plane[out],
        );
        for x in 0..rw {
            // SAFETY: `Taps::new` clamps every index to the last source
            // column times 3, so `lo + 2` and `hi + 2` are < `row_bytes`,
            // the length of `top` and `bottom`; `x < rw` is the length of
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
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn same_size_copies_pixels_into_planes_and_pads_with_zeros() {
        let img = RgbImage::from_fn(40, 20, |x, y| Rgb([x as u8, y as u8, 200]));
        let lb = Letterbox::fit(40, 20, 40, 32);
        assert_eq!((lb.input_width, lb.input_height), (64, 32));
        let t = to_input_tensor(&img, &lb).unwrap();
        assert_eq!(t.shape(), &[1, 3, 32, 64]);
        let v = t.to_plain_array_view::<f32>().unwrap();
        assert_eq!(v[[0, 0, 5, 7]], 7.0);
        assert_eq!(v[[0, 1, 5, 7]], 5.0);
        assert_eq!(v[[0, 2, 19, 39]], 200.0);
        assert_eq!(v[[0, 2, 20, 10]], 0.0, "padding rows are zero");
        assert_eq!(v[[0, 0, 3, 40]], 0.0, "padding columns are zero");
    }

    #[test]
    fn downscale_by_two_averages_neighbours() {
        // Columns alternate 0 / 100: half-pixel-centred 2:1 sampling lands
        // exactly between each pair.
        let img = RgbImage::from_fn(64, 64, |x, _| Rgb([if x % 2 == 0 { 0 } else { 100 }; 3]));
        let lb = Letterbox::fit(64, 64, 32, 32);
        let t = to_input_tensor(&img, &lb).unwrap();
        let v = t.to_plain_array_view::<f32>().unwrap();
        for x in 0..32 {
            assert!((v[[0, 1, 10, x]] - 50.0).abs() < 1e-4, "x={x}");
        }
    }

    #[test]
    fn upscale_interpolates_and_stays_in_range() {
        let img = RgbImage::from_fn(3, 2, |x, y| Rgb([(x * 100) as u8, (y * 255) as u8, 7]));
        let lb = Letterbox::fit(3, 2, 96, 32);
        let t = to_input_tensor(&img, &lb).unwrap();
        let v = t.to_plain_array_view::<f32>().unwrap();
        assert!(v.iter().all(|&p| (0.0..=255.0).contains(&p)));
        assert_eq!(v[[0, 0, 0, 0]], 0.0);
        let right = v[[0, 0, 0, 95]];
        assert!(right > 195.0 && right <= 200.0, "{right}");
        assert_eq!(v[[0, 1, 63, 0]], 255.0);
        assert_eq!(v[[0, 2, 30, 50]], 7.0);
    }
}
