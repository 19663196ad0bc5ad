//! The arithmetic of a dense 3×3 convolution with one pixel of zero padding
//! and stride 1 or 2 (CenterFace's first layer and its head), writing
//! channel-last output from channel-first or channel-last input:
//! `out[y, x, o] = act(bias[o] + Σ_{ky,kx,i} in[i, y·s + ky − 1, x·s + kx − 1] · k[o, i, ky, kx])`.
//!
//! Like the 1×1 kernel, output channels sit on the vector axis and input
//! values are broadcast from where they are, so reading the network's
//! channel-first input costs no transposition.

use std::mem::MaybeUninit;

use super::{output_rows, window, Activation, Floats, Isa, LANES};

const TAPS: usize = 9;

/// How the input is laid out (the output is always channel-last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[n, c, h, w]`, e.g. the network's input image.
    ChannelFirst,
    /// `[n, h, w, c]`.
    ChannelLast,
}

/// The weights of one convolution, packed as `[tap][input channel][output
/// channel]` with output channels padded to whole blocks, and its bias.
#[derive(Clone, PartialEq, Eq)]
pub struct DenseWeights {
    cin: usize,
    cout: usize,
    padded: usize,
    stride: usize,
    weights: Floats,
    bias: Floats,
}

impl std::fmt::Debug for DenseWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DenseWeights({}→{}, stride {})",
            self.cin, self.cout, self.stride
        )
    }
}

impl DenseWeights {
    /// Packs `kernel` given as `[cout][cin][3][3]` (ONNX's OIHW) and `bias`
    /// of `cout` values.
    pub fn new(kernel: &[f32], bias: &[f32], cout: usize, cin: usize, stride: usize) -> Self {
        assert_eq!(
            kernel.len(),
            cout * cin * TAPS,
            "kernel must be cout × cin × 3 × 3"
        );
        assert_eq!(bias.len(), cout, "one bias per output channel");
        assert!(stride == 1 || stride == 2, "stride 1 or 2");
        assert!(cin > 0 && cout > 0, "at least one channel in and out");
        let padded = cout.div_ceil(LANES) * LANES;
        let mut weights = vec![0.0; TAPS * cin * padded];
        for o in 0..cout {
            for i in 0..cin {
                for t in 0..TAPS {
                    weights[(t * cin + i) * padded + o] = kernel[(o * cin + i) * TAPS + t];
                }
            }
        }
        let mut padded_bias = vec![0.0; padded];
        padded_bias[..cout].copy_from_slice(bias);
        Self {
            cin,
            cout,
            padded,
            stride,
            weights: Floats(weights),
            bias: Floats(padded_bias),
        }
    }

    pub fn input_channels(&self) -> usize {
        self.cin
    }

    pub fn output_channels(&self) -> usize {
        self.cout
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Output height (or width) for an input of `size` pixels.
    pub fn output_size(&self, size: usize) -> usize {
        size.div_ceil(self.stride)
    }
}

/// The input: whole images of `height × width` pixels in `layout`.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub data: &'a [f32],
    pub height: usize,
    pub width: usize,
    pub layout: Layout,
}

/// Element strides of one image: (row, column, channel).
fn strides(input: &Input, cin: usize) -> (usize, usize, usize) {
    match input.layout {
        Layout::ChannelFirst => (input.width, 1, input.height * input.width),
        Layout::ChannelLast => (input.width * cin, cin, 1),
    }
}

/// Computes whole output rows: `out` holds rows `first_row..` of the output
/// seen as `images × out_height` rows of `out_width × cout` values.
pub fn run_rows(
    w: &DenseWeights,
    act: Activation,
    input: Input,
    out: &mut [MaybeUninit<f32>],
    first_row: usize,
    isa: Isa,
) {
    let (ho, wo) = (w.output_size(input.height), w.output_size(input.width));
    let image_len = input.height * input.width * w.cin;
    let strides = strides(&input, w.cin);
    for (src, y, dst) in output_rows(out, wo * w.cout, ho, first_row, input.data, image_len) {
        let rows_in = window(y as isize * w.stride as isize - 1, input.height);
        match isa {
            Isa::Portable => portable_row(w, act, src, strides, input.width, rows_in, dst),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                assert!(std::arch::is_x86_feature_detected!("avx512f"));
                // SAFETY: AVX-512F is present (checked above); `src` is one
                // whole image and `dst` one whole output row (`output_rows`),
                // which bounds every access of the kernel.
                unsafe { avx512::row(w, act, src, strides, input.width, rows_in, dst) }
            }
        }
    }
}

fn portable_row(
    w: &DenseWeights,
    act: Activation,
    src: &[f32],
    (rs, cs, chs): (usize, usize, usize),
    wi: usize,
    rows: [Option<usize>; 3],
    dst: &mut [MaybeUninit<f32>],
) {
    for (x, out) in dst.chunks_mut(w.cout).enumerate() {
        let cols = window(x as isize * w.stride as isize - 1, wi);
        for (o, value) in out.iter_mut().enumerate() {
            let mut acc = w.bias[o];
            for (ky, iy) in rows.iter().enumerate() {
                let Some(iy) = iy else { continue };
                for (kx, ix) in cols.iter().enumerate() {
                    let Some(ix) = ix else { continue };
                    for i in 0..w.cin {
                        let k = w.weights[((ky * 3 + kx) * w.cin + i) * w.padded + o];
                        acc += src[iy * rs + ix * cs + i * chs] * k;
                    }
                }
            }
            value.write(act.apply(acc));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{window, Activation, DenseWeights, LANES};
    use crate::tile;

    /// One output row, everything a tile needs to know about it.
    struct Row<'a> {
        w: &'a DenseWeights,
        src: *const f32,
        dst: *mut f32,
        strides: (usize, usize, usize),
        width: usize,
        rows: [Option<usize>; 3],
        relu: bool,
    }

    /// One output row, all output channels: the columns whose windows are
    /// inside the image in tiles, the border columns one by one.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row(
        w: &DenseWeights,
        act: Activation,
        src: &[f32],
        strides: (usize, usize, usize),
        wi: usize,
        rows: [Option<usize>; 3],
        dst: &mut [MaybeUninit<f32>],
    ) {
        let s = w.stride;
        let wo = dst.len() / w.cout;
        let row = Row {
            w,
            src: src.as_ptr(),
            dst: dst.as_mut_ptr().cast::<f32>(),
            strides,
            width: wi,
            rows,
            relu: act == Activation::Relu,
        };
        // Columns 1..inner_end read a whole 3-wide window inside the image.
        let inner_end = if wi >= 2 { ((wi - 2) / s + 1).min(wo) } else { 0 }.max(1);
        let blocks = w.padded / LANES;
        let mut b0 = 0;
        while b0 < blocks {
            let nb = (blocks - b0).min(2);
            // SAFETY: columns passed are < wo (the row's length) and the
            // tiles' columns 1..inner_end have in-image windows; blocks
            // b0..b0 + nb exist in the padded weights.
            unsafe {
                if nb == 2 {
                    span::<2, 12>(&row, b0, inner_end, wo);
                } else {
                    span::<1, 16>(&row, b0, inner_end, wo);
                }
            }
            b0 += nb;
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn span<const NB: usize, const NP: usize>(row: &Row, b0: usize, inner_end: usize, wo: usize) {
        let mut x = 1;
        // SAFETY: see `row`.
        unsafe {
            while x + NP <= inner_end {
                tile::<NB, NP, false>(row, b0, x);
                x += NP;
            }
            while x < inner_end {
                tile::<NB, 1, false>(row, b0, x);
                x += 1;
            }
            tile::<NB, 1, true>(row, b0, 0);
            for x in inner_end..wo {
                tile::<NB, 1, true>(row, b0, x);
            }
        }
    }

    /// `NP` output columns from `x0` × `NB` blocks of output channels.
    /// `EDGE` checks each tap's column against the image (one column only).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const NB: usize, const NP: usize, const EDGE: bool>(row: &Row, b0: usize, x0: usize) {
        let w = row.w;
        let (rs, cs, chs) = row.strides;
        let s = w.stride;
        let cols = window(x0 as isize * s as isize - 1, row.width);
        let lanes = (w.cout - (b0 + NB - 1) * LANES).min(LANES);
        let last_mask: __mmask16 = if lanes == LANES {
            0xffff
        } else {
            (1u16 << lanes) - 1
        };
        // SAFETY: the caller passes columns whose taps are inside the image
        // (or `EDGE`, where each tap is checked), and blocks that exist.
        unsafe {
            let wp = w.weights.as_ptr().add(b0 * LANES);
            let mut acc = tile::from_bias::<NB, NP>(w.bias.as_ptr().add(b0 * LANES));
            for (ky, iy) in row.rows.iter().enumerate() {
                let Some(iy) = *iy else { continue };
                for (kx, col) in cols.iter().enumerate() {
                    if EDGE && col.is_none() {
                        continue;
                    }
                    // Column of pixel 0's tap; pixel p's is s·p further.
                    let ix = x0 * s + kx - 1;
                    let base = row.src.add(iy * rs + ix * cs);
                    let taps = wp.add((ky * 3 + kx) * w.cin * w.padded);
                    for i in 0..w.cin {
                        let mut k = [_mm512_setzero_ps(); NB];
                        for (b, v) in k.iter_mut().enumerate() {
                            *v = _mm512_loadu_ps(taps.add(i * w.padded + b * LANES));
                        }
                        for (p, a) in acc.iter_mut().enumerate() {
                            let v = _mm512_set1_ps(*base.add(p * s * cs + i * chs));
                            for b in 0..NB {
                                a[b] = _mm512_fmadd_ps(v, k[b], a[b]);
                            }
                        }
                    }
                }
            }
            tile::store(
                &acc,
                row.dst.add(x0 * w.cout + b0 * LANES),
                w.cout,
                last_mask,
                row.relu,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::as_output;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.377 + seed).sin() * 2.0).collect()
    }

    /// The definition on channel-first data, with explicit zero padding.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        k: &[f32],
        bias: &[f32],
        x: &[f32],
        n: usize,
        h: usize,
        wi: usize,
        cin: usize,
        cout: usize,
        s: usize,
    ) -> Vec<f32> {
        let (ho, wo) = (h.div_ceil(s), wi.div_ceil(s));
        let mut out = vec![0.0; n * ho * wo * cout];
        for img in 0..n {
            for y in 0..ho {
                for xo in 0..wo {
                    for o in 0..cout {
                        let mut acc = bias[o] as f64;
                        for i in 0..cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((y * s + ky) as isize - 1, (xo * s + kx) as isize - 1);
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wi as isize {
                                        continue;
                                    }
                                    let v = x[((img * cin + i) * h + iy as usize) * wi + ix as usize];
                                    acc += v as f64 * k[((o * cin + i) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        out[((img * ho + y) * wo + xo) * cout + o] = acc as f32;
                    }
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn check(isa: Isa, n: usize, h: usize, wi: usize, cin: usize, cout: usize, s: usize, act: Activation) {
        let k = values(cout * cin * 9, 0.2);
        let bias = values(cout, 1.3);
        let chw = values(n * cin * h * wi, 2.1);
        let w = DenseWeights::new(&k, &bias, cout, cin, s);
        let want: Vec<f32> = reference(&k, &bias, &chw, n, h, wi, cin, cout, s)
            .into_iter()
            .map(|v| act.apply(v))
            .collect();
        // The same images channel-last.
        let mut hwc = vec![0.0; chw.len()];
        for img in 0..n {
            for i in 0..cin {
                for p in 0..h * wi {
                    hwc[(img * h * wi + p) * cin + i] = chw[(img * cin + i) * h * wi + p];
                }
            }
        }
        for (layout, data) in [(Layout::ChannelFirst, &chw), (Layout::ChannelLast, &hwc)] {
            let input = Input {
                data,
                height: h,
                width: wi,
                layout,
            };
            // In two calls split at every row, the way threads split them
            // (mid-image too when there are several images).
            let rows = n * h.div_ceil(s);
            let row_len = w.output_size(wi) * cout;
            for split in 0..=rows {
                let mut out = vec![f32::NAN; want.len() + 1];
                let len = want.len();
                let (a, b) = out[..len].split_at_mut(split * row_len);
                run_rows(&w, act, input, as_output(a), 0, isa);
                run_rows(&w, act, input, as_output(b), split, isa);
                assert!(out[len].is_nan(), "wrote past the output");
                for (ix, (g, r)) in out.iter().zip(&want).enumerate() {
                    let tolerance = 1e-4 * (1.0 + r.abs()) * ((cin * 9) as f32).sqrt();
                    assert!(
                        (g - r).abs() <= tolerance,
                        "{isa:?} {layout:?} {n}×{h}×{wi}, {cin}→{cout}, stride {s}, split at row {split}: \
                         out[{ix}] = {g}, want {r}"
                    );
                }
            }
        }
    }

    const SHAPES: &[(usize, usize, usize, usize, usize)] = &[
        // images, height, width, cin, cout
        (1, 1, 1, 1, 1),
        (1, 3, 2, 3, 5),
        (1, 9, 30, 3, 32),
        (2, 7, 5, 4, 20),
        (1, 6, 17, 24, 24),
        (1, 4, 40, 2, 48),
    ];

    #[test]
    fn portable_matches_the_definition() {
        for &(n, h, w, cin, cout) in SHAPES {
            for s in [1, 2] {
                check(Isa::Portable, n, h, w, cin, cout, s, Activation::Identity);
                check(Isa::Portable, n, h, w, cin, cout, s, Activation::Relu);
            }
        }
    }

    #[test]
    fn the_fastest_kernel_matches_the_definition() {
        for &(n, h, w, cin, cout) in SHAPES {
            for s in [1, 2] {
                check(Isa::detect(), n, h, w, cin, cout, s, Activation::Identity);
                check(Isa::detect(), n, h, w, cin, cout, s, Activation::Relu);
            }
        }
    }
}
