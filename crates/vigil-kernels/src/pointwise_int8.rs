//! The 1×1 convolution of [`super::pointwise`] computed in 8-bit integers,
//! for CPUs with AVX-512 VNNI.
//!
//! Why: `vpdpbusd` does 64 byte multiply-adds per instruction where an f32
//! FMA does 16; measured on the development machine (a Xeon with VNNI and
//! BF16 but no AMX exposed), it issues as fast as the FMA, so 4× the
//! multiply-adds per second. BF16's `vdpbf16ps` was measured too: 32
//! multiply-adds per instruction but a quarter of the FMA's rate, a loss.
//!
//! The arithmetic, chosen so the integer sums are exact and the error is the
//! rounding of inputs and weights alone:
//! - weights, per output channel `o`, symmetric: `w ≈ sw[o] · q`, `q` in
//!   −127..=127, quantized once when the plan is built;
//! - activations, per pixel `p` (the kernel broadcasts one pixel's values at
//!   a time, so a scale per pixel costs one multiply in the epilogue, and a
//!   pixel's values share one range far more tightly than a whole tensor's):
//!   `x ≈ sx[p] · (u − zp[p])`, `u` in 0..=255, with `zp = 0` for a pixel
//!   with no negative value (after a ReLU: all 256 levels) and 128 otherwise;
//! - `out[p, o] = bias[o] + sx[p] · sw[o] · (Σ u·q − zp[p] · Σ q)`, the sums
//!   in i32 (at most 255 · 127 per product: no overflow below 66 000 input
//!   channels).
//!
//! Activations are quantized [`STEP`] pixels at a time, into a buffer that
//! stays in cache while every output block reads it.

use std::mem::MaybeUninit;

use super::pointwise::avx512::STEP;
use super::{Activation, Floats, LANES};

/// Input channels per `vpdpbusd` lane: four bytes make one 32-bit lane.
const QUAD: usize = 4;

/// The weights of one 1×1 convolution in 8 bits, packed as `[block][input
/// quad][LANES][QUAD]` (one 64-byte register per block and quad), with the
/// per-channel scales, the sums the zero point subtracts, and the bias.
#[derive(Clone, PartialEq, Eq)]
pub struct Int8Weights {
    cin: usize,
    cout: usize,
    quads: usize,
    blocks: usize,
    weights: Vec<i8>,
    /// `Σ_i q[o, i]`, zero in the padding lanes.
    sums: Vec<i32>,
    scales: Floats,
    bias: Floats,
}

impl std::fmt::Debug for Int8Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Int8Weights({}→{})", self.cin, self.cout)
    }
}

impl Int8Weights {
    /// Quantizes `kernel` given as `[cout][cin]` (ONNX's OIHW with 1×1
    /// spatial dimensions); `bias` has `cout` values and stays f32.
    pub fn new(kernel: &[f32], bias: &[f32], cout: usize, cin: usize) -> Self {
        assert_eq!(kernel.len(), cout * cin, "kernel must be cout × cin");
        assert_eq!(bias.len(), cout, "one bias per output channel");
        let blocks = cout.div_ceil(LANES);
        let quads = cin.div_ceil(QUAD);
        let mut weights = vec![0i8; blocks * quads * LANES * QUAD];
        let mut sums = vec![0i32; blocks * LANES];
        let mut scales = vec![0.0f32; blocks * LANES];
        let mut padded_bias = vec![0.0f32; blocks * LANES];
        for o in 0..cout {
            let row = &kernel[o * cin..(o + 1) * cin];
            let scale = row.iter().fold(0.0f32, |m, w| m.max(w.abs())) / 127.0;
            let (block, lane) = (o / LANES, o % LANES);
            for (i, w) in row.iter().enumerate() {
                let q = if scale > 0.0 {
                    (w / scale).round_ties_even().clamp(-127.0, 127.0) as i8
                } else {
                    0
                };
                weights[((block * quads + i / QUAD) * LANES + lane) * QUAD + i % QUAD] = q;
                sums[o] += i32::from(q);
            }
            scales[o] = scale;
            padded_bias[o] = bias[o];
        }
        Self {
            cin,
            cout,
            quads,
            blocks,
            weights,
            sums,
            scales: Floats(scales),
            bias: Floats(padded_bias),
        }
    }

    pub fn input_channels(&self) -> usize {
        self.cin
    }

    pub fn output_channels(&self) -> usize {
        self.cout
    }

    #[cfg(test)]
    fn weight(&self, o: usize, i: usize) -> i8 {
        self.weights[(((o / LANES) * self.quads + i / QUAD) * LANES + o % LANES) * QUAD + i % QUAD]
    }
}

/// Whether this CPU runs [`run`]: AVX-512 with VNNI.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes `out` (`pixels × cout`) from `x` (`pixels × cin`). Panics on a
/// CPU without [`supported`] instructions.
pub fn run(w: &Int8Weights, act: Activation, x: &[f32], out: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len() % w.cin.max(1), 0, "x must hold whole pixels");
    let pixels = x.len().checked_div(w.cin).unwrap_or(0);
    assert_eq!(
        out.len(),
        pixels * w.cout,
        "out must hold cout values per pixel of x"
    );
    assert!(supported(), "the 8-bit 1×1 convolution needs AVX-512 VNNI");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the instructions (asserted above) and the lengths
    // of `x` and `out` match `pixels`, `cin` and `cout` (asserted above),
    // which is all the kernel's pointer arithmetic relies on.
    unsafe {
        vnni::run(w, act, x, out, pixels)
    }
}

/// One pixel's quantization: `dst` gets `u` for each of `x`'s values (and
/// zeros up to its end, the padding to whole quads); returns `(sx, zp)`.
/// The reference for the vector code, in the tests.
#[cfg(test)]
fn quantize_pixel(x: &[f32], dst: &mut [u8]) -> (f32, u8) {
    let (lo, hi) = x
        .iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (scale, zp) = range_scale(lo, hi);
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (d, v) in dst.iter_mut().zip(x) {
        *d = ((v * inv).round_ties_even() + f32::from(zp)).clamp(0.0, 255.0) as u8;
    }
    dst[x.len()..].fill(0);
    (scale, zp)
}

/// The scale and zero point for a pixel whose values lie in `lo..=hi`
/// (`lo ≤ 0 ≤ hi`). A scale too small for its inverse to be finite (or not
/// a number, from a NaN or infinite input) is 0: the pixel reads as zeros.
/// Images never produce those; the network's f32 layers would propagate a
/// NaN where this one drops it.
fn range_scale(lo: f32, hi: f32) -> (f32, u8) {
    let (scale, zp) = if lo >= 0.0 {
        (hi / 255.0, 0)
    } else {
        (hi.max(-lo) / 127.0, 128)
    };
    if scale >= f32::MIN_POSITIVE && scale.is_finite() {
        (scale, zp)
    } else {
        (0.0, zp)
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{range_scale, Activation, Int8Weights, LANES, QUAD, STEP};
    use crate::pointwise::avx512::groups;
    use crate::tile;

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn run(
        w: &Int8Weights,
        act: Activation,
        x: &[f32],
        out: &mut [MaybeUninit<f32>],
        pixels: usize,
    ) {
        let groups = groups(w.blocks);
        let row = w.quads * QUAD;
        let mut quantized = vec![0u8; STEP * row];
        let mut scales = [0.0f32; STEP];
        let mut zero_points = [0u8; STEP];
        let relu = act == Activation::Relu;
        let mut p = 0;
        while p < pixels {
            let end = (p + STEP).min(pixels);
            for (k, q) in (p..end).zip(quantized.chunks_exact_mut(row)) {
                // SAFETY: pixel k < pixels is a whole row of `x`; `q` holds
                // `row ≥ cin` bytes.
                let (s, zp) = unsafe { quantize_pixel(x.as_ptr().add(k * w.cin), w.cin, q) };
                scales[k - p] = s;
                zero_points[k - p] = zp;
            }
            let step = Step {
                x: quantized.as_ptr(),
                row,
                scales: scales.as_ptr(),
                zero_points: zero_points.as_ptr(),
                // SAFETY: p < pixels, a row of `out`.
                out: unsafe { out.as_mut_ptr().cast::<f32>().add(p * w.cout) },
                pixels: end - p,
                relu,
            };
            for &(b0, nb) in &groups {
                // SAFETY: the step's buffers hold `end - p` pixels and
                // blocks b0..b0 + nb are within the packed weights.
                unsafe {
                    match nb {
                        4 => step.span::<4, 6>(w, b0),
                        3 => step.span::<3, 8>(w, b0),
                        2 => step.span::<2, 12>(w, b0),
                        _ => step.span::<1, 16>(w, b0),
                    }
                }
            }
            p = end;
        }
    }

    /// `super::quantize_pixel` in vector code: the same bytes and scale.
    #[target_feature(enable = "avx512f")]
    unsafe fn quantize_pixel(x: *const f32, cin: usize, dst: &mut [u8]) -> (f32, u8) {
        let chunks = cin.div_ceil(LANES);
        let mask = |c: usize| -> __mmask16 {
            let n = (cin - c * LANES).min(LANES);
            if n == LANES {
                0xffff
            } else {
                (1u16 << n) - 1
            }
        };
        // SAFETY (all loads): `x` holds `cin` values and each load is masked
        // to the ones below `cin`; the stores are masked likewise and `dst`
        // holds at least `cin` bytes.
        let (scale, zp) = unsafe {
            let mut lo = _mm512_setzero_ps();
            let mut hi = _mm512_setzero_ps();
            for c in 0..chunks {
                let v = _mm512_maskz_loadu_ps(mask(c), x.add(c * LANES));
                lo = _mm512_min_ps(lo, v);
                hi = _mm512_max_ps(hi, v);
            }
            let (scale, zp) = range_scale(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
            let inv = _mm512_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
            let offset = _mm512_set1_ps(f32::from(zp));
            let (floor, ceiling) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
            for c in 0..chunks {
                let v = _mm512_maskz_loadu_ps(mask(c), x.add(c * LANES));
                // Round (to nearest even, the default mode) before the zero
                // point as the reference does: the sum is then exact.
                let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(v, inv),
                );
                let u = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, offset), floor), ceiling);
                _mm512_mask_cvtusepi32_storeu_epi8(
                    dst.as_mut_ptr().add(c * LANES).cast(),
                    mask(c),
                    _mm512_cvttps_epi32(u),
                );
            }
            (scale, zp)
        };
        dst[cin..].fill(0);
        (scale, zp)
    }

    /// One step's quantized pixels and where their outputs go.
    struct Step {
        /// `pixels` rows of `row` bytes.
        x: *const u8,
        row: usize,
        scales: *const f32,
        zero_points: *const u8,
        /// `pixels` rows of `cout` outputs.
        out: *mut f32,
        pixels: usize,
        relu: bool,
    }

    impl Step {
        /// The step's pixels for output blocks `b0..b0 + NB`: whole tiles of
        /// `NP` pixels, then the rest one by one.
        #[target_feature(enable = "avx512f,avx512vnni")]
        unsafe fn span<const NB: usize, const NP: usize>(&self, w: &Int8Weights, b0: usize) {
            let last_lanes = (w.cout - (b0 + NB - 1) * LANES).min(LANES);
            let mask: __mmask16 = if last_lanes == LANES {
                0xffff
            } else {
                (1u16 << last_lanes) - 1
            };
            let mut p = 0;
            // SAFETY: every tile's pixels are below `self.pixels`, and
            // `b0 + NB <= blocks` (the caller's guarantee).
            unsafe {
                while p + NP <= self.pixels {
                    self.tile::<NB, NP>(w, p, b0, mask);
                    p += NP;
                }
                while p < self.pixels {
                    self.tile::<NB, 1>(w, p, b0, mask);
                    p += 1;
                }
            }
        }

        /// `NP` pixels from `p` × `NB` blocks of 16 output channels: integer
        /// sums over every input quad in registers, then dequantized,
        /// biased, activated and stored.
        #[target_feature(enable = "avx512f,avx512vnni")]
        #[inline]
        unsafe fn tile<const NB: usize, const NP: usize>(
            &self,
            w: &Int8Weights,
            p: usize,
            b0: usize,
            mask: __mmask16,
        ) {
            // SAFETY: pixels p..p + NP are in the step (caller), blocks
            // b0..b0 + NB in the weights; each pixel row holds `quads`
            // 4-byte groups.
            unsafe {
                let wp = w.weights.as_ptr().add(b0 * w.quads * LANES * QUAD);
                let xp = self.x.add(p * self.row);
                let mut acc = [[_mm512_setzero_si512(); NB]; NP];
                for q in 0..w.quads {
                    let mut wv = [_mm512_setzero_si512(); NB];
                    for (b, v) in wv.iter_mut().enumerate() {
                        *v = _mm512_loadu_si512(wp.add((b * w.quads + q) * LANES * QUAD).cast());
                    }
                    for (k, pixel) in acc.iter_mut().enumerate() {
                        let quad = xp.add(k * self.row + q * QUAD).cast::<i32>().read_unaligned();
                        let a = _mm512_set1_epi32(quad);
                        for b in 0..NB {
                            pixel[b] = _mm512_dpbusd_epi32(pixel[b], a, wv[b]);
                        }
                    }
                }
                let mut values = [[_mm512_setzero_ps(); NB]; NP];
                for (k, (pixel, sums)) in values.iter_mut().zip(&acc).enumerate() {
                    let sx = _mm512_set1_ps(*self.scales.add(p + k));
                    let zp = _mm512_set1_epi32(i32::from(*self.zero_points.add(p + k)));
                    for b in 0..NB {
                        let lane0 = (b0 + b) * LANES;
                        let total = _mm512_sub_epi32(
                            sums[b],
                            _mm512_mullo_epi32(zp, _mm512_loadu_si512(w.sums.as_ptr().add(lane0).cast())),
                        );
                        let scale = _mm512_mul_ps(sx, _mm512_loadu_ps(w.scales.as_ptr().add(lane0)));
                        pixel[b] = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(total),
                            scale,
                            _mm512_loadu_ps(w.bias.as_ptr().add(lane0)),
                        );
                    }
                }
                tile::store(
                    &values,
                    self.out.add(p * w.cout + b0 * LANES),
                    w.cout,
                    mask,
                    self.relu,
                );
            }
        }
    }

    #[cfg(test)]
    pub(super) fn quantize_pixel_vector(x: &[f32], dst: &mut [u8]) -> (f32, u8) {
        assert!(super::supported() && dst.len() >= x.len());
        // SAFETY: the CPU has the instructions; `dst` holds `x.len()` bytes.
        unsafe { quantize_pixel(x.as_ptr(), x.len(), dst) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::as_output;
    use crate::pointwise::tests::{values, SHAPES};

    /// The 8-bit arithmetic spelled out: quantize each pixel, sum exactly,
    /// dequantize.
    fn reference(w: &Int8Weights, x: &[f32], act: Activation) -> Vec<f32> {
        let pixels = x.len() / w.cin;
        let mut u = vec![0u8; w.quads * QUAD];
        let mut out = Vec::with_capacity(pixels * w.cout);
        for p in 0..pixels {
            let (sx, zp) = quantize_pixel(&x[p * w.cin..(p + 1) * w.cin], &mut u);
            for o in 0..w.cout {
                let dot: i32 = (0..w.cin)
                    .map(|i| i32::from(u[i]) * i32::from(w.weight(o, i)))
                    .sum();
                let total = dot - i32::from(zp) * w.sums[o];
                out.push(act.apply(total as f32 * (sx * w.scales[o]) + w.bias[o]));
            }
        }
        out
    }

    /// Rectified inputs (every value ≥ 0) as after a ReLU, or signed ones.
    fn inputs(pixels: usize, cin: usize, rectified: bool) -> Vec<f32> {
        let x = values(pixels * cin, 2.9);
        if rectified {
            x.into_iter().map(|v| v.max(0.0)).collect()
        } else {
            x
        }
    }

    #[test]
    fn quantized_sums_stay_within_the_rounding_of_inputs_and_weights() {
        for &(cout, cin) in SHAPES {
            let kernel = values(cout * cin, 0.3);
            let bias = values(cout, 1.7);
            let w = Int8Weights::new(&kernel, &bias, cout, cin);
            for rectified in [false, true] {
                let x = inputs(9, cin, rectified);
                let got = reference(&w, &x, Activation::Identity);
                for p in 0..9 {
                    let row = &x[p * cin..(p + 1) * cin];
                    let hi = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let sx = if rectified { hi / 255.0 } else { hi / 127.0 };
                    for o in 0..cout {
                        let wrow = &kernel[o * cin..(o + 1) * cin];
                        let sw = wrow.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                        let exact: f64 = bias[o] as f64
                            + row
                                .iter()
                                .zip(wrow)
                                .map(|(a, b)| *a as f64 * *b as f64)
                                .sum::<f64>();
                        // |x·w − x'·w'| ≤ Σ |x|·sw/2 + |w|·sx/2 + sx·sw/4.
                        let bound = row.iter().map(|v| v.abs()).sum::<f32>() * sw / 2.0
                            + wrow.iter().map(|v| v.abs()).sum::<f32>() * sx / 2.0
                            + cin as f32 * sx * sw / 4.0
                            + 1e-4 * (1.0 + exact.abs() as f32);
                        let g = got[p * cout + o];
                        assert!(
                            (g as f64 - exact).abs() <= bound as f64,
                            "cout={cout} cin={cin} rectified={rectified}: out[{p},{o}] = {g}, exact {exact}, bound {bound}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_vector_kernel_computes_the_reference() {
        if !supported() {
            eprintln!("no AVX-512 VNNI on this CPU: the 8-bit kernel is not used here");
            return;
        }
        for &(cout, cin) in SHAPES {
            let kernel = values(cout * cin, 0.3);
            let bias = values(cout, 1.7);
            let w = Int8Weights::new(&kernel, &bias, cout, cin);
            for pixels in [0, 1, 5, 6, 13, 47, 48, 49, 97, 200] {
                for rectified in [false, true] {
                    for act in [Activation::Identity, Activation::Relu] {
                        let x = inputs(pixels, cin, rectified);
                        let mut out = vec![f32::NAN; pixels * cout + 1];
                        let (body, canary) = out.split_at_mut(pixels * cout);
                        run(&w, act, &x, as_output(body));
                        assert!(canary[0].is_nan(), "wrote past the output");
                        let want = reference(&w, &x, act);
                        for (ix, (g, r)) in body.iter().zip(&want).enumerate() {
                            // Same integers; the f32 epilogue may fuse differently.
                            assert!(
                                (g - r).abs() <= 1e-5 * (1.0 + r.abs()),
                                "cout={cout} cin={cin} pixels={pixels} {act:?}: out[{ix}] = {g}, want {r}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn vector_quantization_gives_the_reference_bytes() {
        if !supported() {
            return;
        }
        for cin in [1, 3, 15, 16, 17, 40, 144] {
            for rectified in [false, true] {
                for seed in [0.1f32, 5.0] {
                    let x: Vec<f32> = values(cin, seed)
                        .into_iter()
                        .map(|v| if rectified { v.max(0.0) } else { v })
                        .collect();
                    let padded = cin.div_ceil(QUAD) * QUAD;
                    let (mut a, mut b) = (vec![7u8; padded], vec![7u8; padded]);
                    let want = quantize_pixel(&x, &mut a);
                    let got = vnni::quantize_pixel_vector(&x, &mut b);
                    assert_eq!(got, want, "cin={cin} rectified={rectified}");
                    assert_eq!(a, b, "cin={cin} rectified={rectified}");
                }
            }
        }
        // A pixel of zeros quantizes to its zero point with scale 0.
        let mut z = vec![9u8; 8];
        assert_eq!(vnni::quantize_pixel_vector(&[0.0; 5], &mut z), (0.0, 0));
        assert_eq!(z, [0; 8]);
    }

    #[test]
    fn weights_keep_their_signs_and_the_largest_maps_to_127() {
        let kernel = [0.5, -1.0, 0.25, 0.0, 2.0, -2.0];
        let w = Int8Weights::new(&kernel, &[0.0, 1.0], 2, 3);
        assert_eq!([w.weight(0, 0), w.weight(0, 1), w.weight(0, 2)], [64, -127, 32]);
        assert_eq!([w.weight(1, 0), w.weight(1, 1), w.weight(1, 2)], [0, 127, -127]);
        assert_eq!(&w.sums[..2], &[-31, 0]);
        // Padding lanes and the fourth input of the quad are zero.
        assert_eq!(w.weight(5, 1), 0);
        assert_eq!(w.weight(0, 3), 0);
    }
}
