//! The arithmetic of a channel-last depthwise 3×3 convolution with one pixel
//! of zero padding and stride 1 or 2 (MobileNetV2's):
//! `out[y, x, c] = act(bias[c] + Σ_{ky,kx} in[y·s + ky − 1, x·s + kx − 1, c] · k[c, ky, kx])`.
//!
//! Work is split by output rows, each computed for all channels in blocks of
//! 16: a block's nine taps stay in registers for the whole row.

use std::mem::MaybeUninit;

use super::{output_rows, taps_inside, window, Activation, Floats, Isa, LANES};

const TAPS: usize = 9;

/// A depthwise convolution's taps, packed as `[tap][channel]` (channels
/// padded to whole blocks), and its bias.
#[derive(Clone, PartialEq, Eq)]
pub struct DepthwiseWeights {
    channels: usize,
    padded: usize,
    stride: usize,
    taps: Floats,
    bias: Floats,
}

impl std::fmt::Debug for DepthwiseWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DepthwiseWeights({} channels, stride {})",
            self.channels, self.stride
        )
    }
}

impl DepthwiseWeights {
    /// Packs `kernel` given as `[channel][3][3]` (ONNX's OIHW with one input
    /// channel per group) and `bias` of one value per channel.
    pub fn new(kernel: &[f32], bias: &[f32], channels: usize, stride: usize) -> Self {
        assert_eq!(kernel.len(), channels * TAPS, "kernel must be channels × 3 × 3");
        assert_eq!(bias.len(), channels, "one bias per channel");
        assert!(stride == 1 || stride == 2, "stride 1 or 2");
        assert!(channels > 0, "at least one channel");
        let padded = channels.div_ceil(LANES) * LANES;
        let mut taps = vec![0.0; TAPS * padded];
        for c in 0..channels {
            for t in 0..TAPS {
                taps[t * padded + c] = kernel[c * TAPS + t];
            }
        }
        let mut padded_bias = vec![0.0; padded];
        padded_bias[..channels].copy_from_slice(bias);
        Self {
            channels,
            padded,
            stride,
            taps: Floats(taps),
            bias: Floats(padded_bias),
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Output height (or width) for an input of `size` pixels.
    pub fn output_size(&self, size: usize) -> usize {
        size.div_ceil(self.stride)
    }
}

/// The input's dimensions, channel-last: `images × height × width × channels`.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub data: &'a [f32],
    pub height: usize,
    pub width: usize,
}

/// Computes whole output rows: `out` holds rows `first_row..` of the output
/// seen as `images × out_height` rows of `out_width × channels` values.
pub fn run_rows(
    w: &DepthwiseWeights,
    act: Activation,
    input: Input,
    out: &mut [MaybeUninit<f32>],
    first_row: usize,
    isa: Isa,
) {
    let (ho, wo) = (w.output_size(input.height), w.output_size(input.width));
    let row_len = input.width * w.channels;
    let image_len = input.height * row_len;
    for (src, y, dst) in output_rows(out, wo * w.channels, ho, first_row, input.data, image_len) {
        let rows = w
            .input_rows(y, input.height)
            .map(|iy| iy.map(|iy| &src[iy * row_len..(iy + 1) * row_len]));
        run_row(w, act, rows, dst, isa);
    }
}

impl DepthwiseWeights {
    /// The input rows output row `y` reads, top to bottom, for an input of
    /// `height` rows: `None` where the window is in the zero padding.
    pub fn input_rows(&self, y: usize, height: usize) -> [Option<usize>; 3] {
        window(y as isize * self.stride as isize - 1, height)
    }
}

/// Computes one output row from the input rows its window covers (as
/// [`DepthwiseWeights::input_rows`] names them), each a whole input row of
/// `width × channels` values; `out` is the output row.
pub fn run_row(
    w: &DepthwiseWeights,
    act: Activation,
    rows: [Option<&[f32]>; 3],
    out: &mut [MaybeUninit<f32>],
    isa: Isa,
) {
    if out.is_empty() {
        return;
    }
    let width = rows
        .iter()
        .flatten()
        .map(|r| r.len() / w.channels)
        .next()
        .unwrap_or(0);
    assert!(
        rows.iter().flatten().all(|r| r.len() == width * w.channels),
        "input rows of {width} pixels × {} channels",
        w.channels
    );
    assert_eq!(
        out.len(),
        w.output_size(width) * w.channels,
        "one whole output row"
    );
    match isa {
        Isa::Portable => portable_row(w, act, rows, width, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            assert!(std::arch::is_x86_feature_detected!("avx512f"));
            // SAFETY: AVX-512F is present (checked above); every row holds
            // `width` pixels and `out` one output row (asserted above),
            // which bounds every access of the kernel.
            unsafe { avx512::row(w, act, rows, width, out) }
        }
    }
}

fn portable_row(
    w: &DepthwiseWeights,
    act: Activation,
    rows: [Option<&[f32]>; 3],
    wi: usize,
    dst: &mut [MaybeUninit<f32>],
) {
    let c = w.channels;
    let s = w.stride as isize;
    for (xo, out) in dst.chunks_mut(c).enumerate() {
        for (ch, o) in out.iter_mut().enumerate() {
            let mut acc = w.bias[ch];
            for (ky, row) in rows.iter().enumerate() {
                let Some(row) = row else { continue };
                for (kx, ix) in taps_inside(xo as isize * s - 1, wi) {
                    acc += row[ix * c + ch] * w.taps[(ky * 3 + kx) * w.padded + ch];
                }
            }
            o.write(act.apply(acc));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{Activation, DepthwiseWeights, LANES, TAPS};
    use crate::taps_inside;

    /// What one 16-channel block of a row needs: the taps, the bias, where
    /// its channels start in the output row, and which lanes are real
    /// channels.
    struct Block {
        k: [__m512; TAPS],
        bias: __m512,
        dst: *mut f32,
        mask: __mmask16,
        relu: bool,
        channels: usize,
    }

    impl Block {
        /// Pixel `ix` of the input row whose block starts at `row`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn pixel(&self, row: *const f32, ix: usize) -> __m512 {
            // SAFETY: the caller passes a pixel inside the row.
            unsafe { _mm512_maskz_loadu_ps(self.mask, row.add(ix * self.channels)) }
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn store(&self, x: usize, acc: __m512) {
            let acc = if self.relu {
                _mm512_max_ps(acc, _mm512_setzero_ps())
            } else {
                acc
            };
            // SAFETY: the caller passes a column of the output row.
            unsafe { _mm512_mask_storeu_ps(self.dst.add(x * self.channels), self.mask, acc) }
        }
    }

    /// One output row, all channels, from the input rows of its window
    /// (1 to 3 of them at the borders), each `wi` pixels.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row(
        w: &DepthwiseWeights,
        act: Activation,
        rows: [Option<&[f32]>; 3],
        wi: usize,
        dst: &mut [MaybeUninit<f32>],
    ) {
        let c = w.channels;
        let s = w.stride;
        let wo = dst.len() / c;
        // Columns 1..inner_end read a whole 3-wide window inside the image
        // (column 0 reads column −1; x is inner while x·s + 1 ≤ wi − 1).
        let inner_end = if wi >= 2 { ((wi - 2) / s + 1).min(wo) } else { 0 };
        for c0 in (0..c).step_by(LANES) {
            let lanes = (c - c0).min(LANES);
            // SAFETY: `taps` and `bias` are padded to whole blocks, so the 16
            // lanes at `c0` exist; input and output accesses go through
            // `Block`, masked to the `lanes` channels that exist at `c0`, at
            // pixels inside the rows (`taps_inside`, the inner range) and
            // columns of the output row (`x < wo`).
            unsafe {
                let starts = rows.map(|r| r.map(|r| r.as_ptr().add(c0)));
                let mut k = [_mm512_setzero_ps(); TAPS];
                for (t, v) in k.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(w.taps.as_ptr().add(t * w.padded + c0));
                }
                let b = Block {
                    k,
                    bias: _mm512_loadu_ps(w.bias.as_ptr().add(c0)),
                    dst: dst.as_mut_ptr().cast::<f32>().add(c0),
                    mask: if lanes == LANES {
                        0xffff
                    } else {
                        (1u16 << lanes) - 1
                    },
                    relu: act == Activation::Relu,
                    channels: c,
                };
                for x in 1..inner_end {
                    let ix = x * s - 1;
                    // One partial sum per kernel row shortens the FMA chain.
                    let mut part = [_mm512_setzero_ps(); 3];
                    for (ky, row) in starts.iter().enumerate() {
                        let Some(row) = *row else { continue };
                        let acc = _mm512_mul_ps(b.pixel(row, ix), b.k[ky * 3]);
                        let acc = _mm512_fmadd_ps(b.pixel(row, ix + 1), b.k[ky * 3 + 1], acc);
                        part[ky] = _mm512_fmadd_ps(b.pixel(row, ix + 2), b.k[ky * 3 + 2], acc);
                    }
                    let acc = _mm512_add_ps(_mm512_add_ps(b.bias, part[0]), _mm512_add_ps(part[1], part[2]));
                    b.store(x, acc);
                }
                // Border columns: every tap checked.
                for x in std::iter::once(0).chain(inner_end.max(1)..wo) {
                    let mut acc = b.bias;
                    for (ky, row) in starts.iter().enumerate() {
                        let Some(row) = *row else { continue };
                        for (kx, ix) in taps_inside(x as isize * s as isize - 1, wi) {
                            acc = _mm512_fmadd_ps(b.pixel(row, ix), b.k[ky * 3 + kx], acc);
                        }
                    }
                    b.store(x, acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::as_output;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.618 + seed).sin() * 2.0).collect()
    }

    /// The definition, with explicit zero padding.
    fn reference(
        kernel: &[f32],
        bias: &[f32],
        x: &[f32],
        h: usize,
        wi: usize,
        c: usize,
        s: usize,
    ) -> Vec<f32> {
        let images = x.len() / (h * wi * c);
        let (ho, wo) = (h.div_ceil(s), wi.div_ceil(s));
        let mut out = vec![0.0; images * ho * wo * c];
        for n in 0..images {
            for y in 0..ho {
                for xo in 0..wo {
                    for ch in 0..c {
                        let mut acc = bias[ch] as f64;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = ((y * s + ky) as isize - 1, (xo * s + kx) as isize - 1);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wi as isize {
                                    continue;
                                }
                                let v = x[((n * h + iy as usize) * wi + ix as usize) * c + ch];
                                acc += v as f64 * kernel[ch * 9 + ky * 3 + kx] as f64;
                            }
                        }
                        out[((n * ho + y) * wo + xo) * c + ch] = acc as f32;
                    }
                }
            }
        }
        out
    }

    fn check(isa: Isa, images: usize, h: usize, wi: usize, c: usize, s: usize, act: Activation) {
        let kernel = values(c * 9, 0.4);
        let bias = values(c, 1.1);
        let x = values(images * h * wi * c, 2.3);
        let w = DepthwiseWeights::new(&kernel, &bias, c, s);
        let (ho, wo) = (w.output_size(h), w.output_size(wi));
        let want: Vec<f32> = reference(&kernel, &bias, &x, h, wi, c, s)
            .into_iter()
            .map(|v| act.apply(v))
            .collect();
        let input = Input {
            data: &x,
            height: h,
            width: wi,
        };
        // All rows at once, then in two calls split at every row, the way
        // threads split them (mid-image too when there are several images).
        let mut whole = vec![f32::NAN; images * ho * wo * c + 1];
        let len = whole.len() - 1;
        run_rows(&w, act, input, as_output(&mut whole[..len]), 0, isa);
        assert!(whole[len].is_nan(), "wrote past the output");
        let shape = format!("{isa:?} {images}×{h}×{wi}×{c} stride {s}");
        for (ix, (g, r)) in whole.iter().zip(&want).enumerate() {
            assert!(
                (g - r).abs() <= 1e-4 * (1.0 + r.abs()),
                "{shape}: out[{ix}] = {g}, want {r}"
            );
        }
        for split in 0..=images * ho {
            let mut parts = vec![f32::NAN; len];
            let (a, b) = parts.split_at_mut(split * wo * c);
            run_rows(&w, act, input, as_output(a), 0, isa);
            run_rows(&w, act, input, as_output(b), split, isa);
            for (ix, (g, q)) in whole.iter().zip(&parts).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    q.to_bits(),
                    "{shape}: out[{ix}] differs when split at row {split}"
                );
            }
        }
    }

    const SHAPES: &[(usize, usize, usize, usize)] = &[
        // images, height, width, channels
        (1, 1, 1, 1),
        (1, 2, 3, 16),
        (1, 5, 7, 3),
        (1, 8, 8, 32),
        (2, 6, 9, 20),
        (1, 7, 6, 48),
        (1, 12, 16, 144),
    ];

    #[test]
    fn portable_matches_the_definition() {
        for &(n, h, w, c) in SHAPES {
            for s in [1, 2] {
                check(Isa::Portable, n, h, w, c, s, Activation::Identity);
                check(Isa::Portable, n, h, w, c, s, Activation::Relu);
            }
        }
    }

    #[test]
    fn the_fastest_kernel_matches_the_definition() {
        for &(n, h, w, c) in SHAPES {
            for s in [1, 2] {
                check(Isa::detect(), n, h, w, c, s, Activation::Identity);
                check(Isa::detect(), n, h, w, c, s, Activation::Relu);
            }
        }
    }
}
