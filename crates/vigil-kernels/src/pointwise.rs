//! The arithmetic of a channel-last 1×1 convolution:
//! `out[p, o] = act(bias[o] + Σ_i x[p, i] · w[o, i])` for every pixel `p`.
//!
//! Laid out the way the data already is: `x` rows are pixels with their
//! input channels contiguous, `out` rows are pixels with their output
//! channels contiguous. The weights are packed once into 16-channel output
//! blocks so one AVX-512 register holds 16 output channels; each input value
//! is broadcast straight from `x`, so the activations are never repacked.

use std::mem::MaybeUninit;

use super::{Activation, Floats, Isa, LANES};

/// The weights and bias of one 1×1 convolution, packed as `[block][input
/// channel][LANES]` with the last block zero-padded.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedWeights {
    cin: usize,
    cout: usize,
    blocks: usize,
    weights: Floats,
    bias: Floats,
}

impl std::fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeights({}→{})", self.cin, self.cout)
    }
}

impl PackedWeights {
    /// Packs `kernel` given as `[cout][cin]` (ONNX's OIHW with 1×1 spatial
    /// dimensions) and `bias` of `cout` values.
    pub fn new(kernel: &[f32], bias: &[f32], cout: usize, cin: usize) -> Self {
        assert_eq!(kernel.len(), cout * cin, "kernel must be cout × cin");
        assert_eq!(bias.len(), cout, "one bias per output channel");
        let blocks = cout.div_ceil(LANES);
        let mut weights = vec![0.0; blocks * cin * LANES];
        let mut padded_bias = vec![0.0; blocks * LANES];
        for o in 0..cout {
            let (block, lane) = (o / LANES, o % LANES);
            for i in 0..cin {
                weights[(block * cin + i) * LANES + lane] = kernel[o * cin + i];
            }
            padded_bias[o] = bias[o];
        }
        Self {
            cin,
            cout,
            blocks,
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

    fn weight(&self, o: usize, i: usize) -> f32 {
        self.weights[((o / LANES) * self.cin + i) * LANES + o % LANES]
    }
}

/// Computes `out` (`pixels × cout`) from `x` (`pixels × cin`).
pub fn run(w: &PackedWeights, act: Activation, x: &[f32], out: &mut [MaybeUninit<f32>], isa: Isa) {
    assert_eq!(x.len() % w.cin.max(1), 0, "x must hold whole pixels");
    let pixels = x.len().checked_div(w.cin).unwrap_or(0);
    assert_eq!(
        out.len(),
        pixels * w.cout,
        "out must hold cout values per pixel of x"
    );
    match isa {
        Isa::Portable => portable(w, act, x, out, pixels),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            assert!(std::arch::is_x86_feature_detected!("avx512f"));
            // SAFETY: the CPU has AVX-512F (checked above) and the lengths of
            // `x` and `out` match `pixels`, `cin` and `cout` (asserted above),
            // which is all the kernel's pointer arithmetic relies on.
            unsafe { avx512::run(w, act, x, out, pixels) }
        }
    }
}

fn portable(w: &PackedWeights, act: Activation, x: &[f32], out: &mut [MaybeUninit<f32>], pixels: usize) {
    for p in 0..pixels {
        let row = &x[p * w.cin..(p + 1) * w.cin];
        for o in 0..w.cout {
            let mut acc = w.bias[o];
            for (i, v) in row.iter().enumerate() {
                acc += v * w.weight(o, i);
            }
            out[p * w.cout + o].write(act.apply(acc));
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{Activation, PackedWeights, LANES};
    use crate::tile;

    /// Pixels per outer step: a multiple of every tile height below, so the
    /// tiles of each block group line up and only the image's last pixels
    /// take the one-pixel path.
    pub(crate) const STEP: usize = 48;

    /// How many output blocks one tile covers and how many pixels it takes
    /// at a time: `NB × NP` accumulators plus `NB` weight registers and one
    /// broadcast fit AVX-512's 32 registers. (The 8-bit kernel's tiles are
    /// the same sizes: one register per accumulator too.)
    pub(crate) fn groups(blocks: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut b = 0;
        while b < blocks {
            let nb = match blocks - b {
                n if n % 4 == 0 => 4,
                n if n % 3 == 0 => 3,
                n if n >= 2 => 2,
                _ => 1,
            };
            out.push((b, nb));
            b += nb;
        }
        out
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(
        w: &PackedWeights,
        act: Activation,
        x: &[f32],
        out: &mut [MaybeUninit<f32>],
        pixels: usize,
    ) {
        let groups = groups(w.blocks);
        let mut p = 0;
        while p < pixels {
            let end = (p + STEP).min(pixels);
            for &(b0, nb) in &groups {
                // SAFETY: pixels p..end are within `x` and `out`; blocks
                // b0..b0 + nb are within the packed weights.
                unsafe {
                    match nb {
                        4 => span::<4, 6>(w, act, x, out, b0, p, end),
                        3 => span::<3, 8>(w, act, x, out, b0, p, end),
                        2 => span::<2, 12>(w, act, x, out, b0, p, end),
                        _ => span::<1, 16>(w, act, x, out, b0, p, end),
                    }
                }
            }
            p = end;
        }
    }

    /// Pixels `p..end` of the output blocks `b0..b0 + NB`: whole tiles of
    /// `NP` pixels, then the rest one by one.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn span<const NB: usize, const NP: usize>(
        w: &PackedWeights,
        act: Activation,
        x: &[f32],
        out: &mut [MaybeUninit<f32>],
        b0: usize,
        mut p: usize,
        end: usize,
    ) {
        let last_lanes = (w.cout - (b0 + NB - 1) * LANES).min(LANES);
        let mask: __mmask16 = if last_lanes == LANES {
            0xffff
        } else {
            (1u16 << last_lanes) - 1
        };
        let relu = act == Activation::Relu;
        // SAFETY (both loops): `p + NP <= end <= pixels` (resp. `p < end`),
        // so every pixel row read from `x` and written to `out` exists;
        // `b0 + NB <= blocks`, so the weight and bias reads are in the
        // packed vectors; only the last block is partial and it is written
        // through `mask`, which stops at `cout`.
        unsafe {
            while p + NP <= end {
                tile::<NB, NP>(
                    w,
                    x.as_ptr().add(p * w.cin),
                    out.as_mut_ptr().cast::<f32>().add(p * w.cout),
                    b0,
                    mask,
                    relu,
                );
                p += NP;
            }
            while p < end {
                tile::<NB, 1>(
                    w,
                    x.as_ptr().add(p * w.cin),
                    out.as_mut_ptr().cast::<f32>().add(p * w.cout),
                    b0,
                    mask,
                    relu,
                );
                p += 1;
            }
        }
    }

    /// `NP` pixels × `NB` blocks of 16 output channels, accumulated in
    /// registers over every input channel, then biased, activated and stored.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const NB: usize, const NP: usize>(
        w: &PackedWeights,
        x: *const f32,
        out: *mut f32,
        b0: usize,
        last_mask: __mmask16,
        relu: bool,
    ) {
        let cin = w.cin;
        // SAFETY: the caller guarantees NP pixel rows at `x` and `out` and
        // NB blocks from `b0` (see `span`).
        unsafe {
            let wp = w.weights.as_ptr().add(b0 * cin * LANES);
            let bp = w.bias.as_ptr().add(b0 * LANES);
            let mut acc = tile::from_bias::<NB, NP>(bp);
            for i in 0..cin {
                let mut wv = [_mm512_setzero_ps(); NB];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(wp.add((b * cin + i) * LANES));
                }
                for (p, row) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*x.add(p * cin + i));
                    for b in 0..NB {
                        row[b] = _mm512_fmadd_ps(a, wv[b], row[b]);
                    }
                }
            }
            tile::store(&acc, out.add(b0 * LANES), w.cout, last_mask, relu);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::as_output;

    /// Deterministic, non-trivial values (no RNG needed for a reproducible test).
    pub(crate) fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.7311 + seed).sin() * 3.0).collect()
    }

    fn reference(
        kernel: &[f32],
        bias: &[f32],
        x: &[f32],
        cout: usize,
        cin: usize,
        act: Activation,
    ) -> Vec<f32> {
        let pixels = x.len() / cin;
        let mut out = vec![0.0; pixels * cout];
        for p in 0..pixels {
            for o in 0..cout {
                let mut acc = bias[o] as f64;
                for i in 0..cin {
                    acc += x[p * cin + i] as f64 * kernel[o * cin + i] as f64;
                }
                let v = acc as f32;
                out[p * cout + o] = if act == Activation::Relu { v.max(0.0) } else { v };
            }
        }
        out
    }

    fn check(isa: Isa, cout: usize, cin: usize, pixels: usize, act: Activation) {
        let kernel = values(cout * cin, 0.3);
        let bias = values(cout, 1.7);
        let x = values(pixels * cin, 2.9);
        let w = PackedWeights::new(&kernel, &bias, cout, cin);
        // A canary past the end catches a store beyond `cout` on the last pixel.
        let mut out = vec![f32::NAN; pixels * cout + 1];
        let (body, canary) = out.split_at_mut(pixels * cout);
        run(&w, act, &x, as_output(body), isa);
        assert!(canary[0].is_nan(), "wrote past the output");
        let want = reference(&kernel, &bias, &x, cout, cin, act);
        for (ix, (g, r)) in body.iter().zip(&want).enumerate() {
            let tolerance = 1e-4 * (1.0 + r.abs()) * (cin as f32).sqrt();
            assert!(
                (g - r).abs() <= tolerance,
                "{isa:?} cout={cout} cin={cin} pixels={pixels}: out[{ix}] = {g}, want {r}"
            );
        }
    }

    /// Channel counts that hit every block grouping (1 to 4 blocks, partial
    /// last blocks) and pixel counts that hit whole tiles, tails and the
    /// 48-pixel step boundary.
    pub(crate) const SHAPES: &[(usize, usize)] = &[
        (1, 1),
        (3, 5),
        (16, 16),
        (24, 144),
        (32, 3),
        (48, 7),
        (64, 64),
        (96, 16),
        (144, 24),
        (200, 9),
    ];

    #[test]
    fn portable_matches_the_definition() {
        for &(cout, cin) in SHAPES {
            for pixels in [0, 1, 7, 50] {
                check(Isa::Portable, cout, cin, pixels, Activation::Identity);
                check(Isa::Portable, cout, cin, pixels, Activation::Relu);
            }
        }
    }

    #[test]
    fn the_fastest_kernel_matches_the_definition() {
        let isa = Isa::detect();
        for &(cout, cin) in SHAPES {
            for pixels in [0, 1, 5, 6, 13, 47, 48, 49, 97, 200] {
                check(isa, cout, cin, pixels, Activation::Identity);
                check(isa, cout, cin, pixels, Activation::Relu);
            }
        }
    }

    #[test]
    fn packing_keeps_every_weight_and_pads_with_zeros() {
        let kernel = values(20 * 3, 0.1);
        let w = PackedWeights::new(&kernel, &[0.5; 20], 20, 3);
        for o in 0..20 {
            for i in 0..3 {
                assert_eq!(w.weight(o, i), kernel[o * 3 + i]);
            }
        }
        for o in 20..32 {
            for i in 0..3 {
                assert_eq!(w.weight(o, i), 0.0);
            }
        }
    }
}
