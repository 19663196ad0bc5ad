//! Direct convolutions over channel-last activations with a one-pixel zero
//! border, output channels on the vector axis (16 per block: two AVX
//! registers) and a register tile of up to [`TILE`] output pixels, taken in
//! order across rows (and across the chips of a group).
//!
//! The window of one output pixel, for one kernel row, is contiguous in a
//! channel-last row (`size × channels` values), so the inner loop is a
//! straight walk over the weights (`[block][kernel row][that run][16]`)
//! with one broadcast input value per tile pixel. Every value is read from
//! where the previous layer wrote it: no im2col copy, no repacking.
//!
//! dlib's affine layer (its inference-time batch norm) is folded into the
//! weights and bias, and the ReLU and the residual sum are applied when the
//! tile is stored, so each convolution is one pass over its output.

use crate::model::{AffineParams, ConvParams};
use crate::Isa;

/// Output channels per weight block.
pub(crate) const BLOCK: usize = 16;
/// Pixels per register tile: 6 × 2 accumulators + 2 weights + 1 broadcast
/// fit the 16 AVX registers.
pub(crate) const TILE: usize = 6;

/// Shape of an activation buffer: `h × w` pixels of `c` channels, stored
/// with a zero border of one pixel all round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Layout {
    pub fn len(&self) -> usize {
        (self.h + 2) * (self.w + 2) * self.c
    }

    pub fn row_stride(&self) -> usize {
        (self.w + 2) * self.c
    }

    /// Offset of pixel (`y`, `x`), border included: (−1, −1) is the corner.
    pub fn at(&self, y: isize, x: isize) -> usize {
        (((y + 1) as usize) * (self.w + 2) + (x + 1) as usize) * self.c
    }
}

/// A convolution ready to run: weights scaled by the affine layer's gamma,
/// packed per block of 16 output channels.
pub(crate) struct PackedConv {
    pub cin: usize,
    pub cout: usize,
    pub size: usize,
    pub stride: usize,
    pub pad: usize,
    /// `[cout / 16][size][size · cin][16]`
    weights: Vec<f32>,
    /// `gamma · bias + beta`
    bias: Vec<f32>,
}

impl PackedConv {
    pub fn new(conv: ConvParams, affine: &AffineParams) -> Self {
        let ConvParams {
            filters: cout,
            channels: cin,
            size,
            stride,
            weights,
            bias,
        } = conv;
        assert!(cout % BLOCK == 0, "output channels come in blocks of {BLOCK}");
        let run = size * cin;
        let mut packed = vec![0.0; weights.len()];
        for o in 0..cout {
            let g = affine.gamma[o];
            for i in 0..cin {
                for ky in 0..size {
                    for kx in 0..size {
                        let src = ((o * cin + i) * size + ky) * size + kx;
                        let dst = (((o / BLOCK) * size + ky) * run + kx * cin + i) * BLOCK + o % BLOCK;
                        packed[dst] = weights[src] * g;
                    }
                }
            }
        }
        let bias = (0..cout)
            .map(|o| bias[o] * affine.gamma[o] + affine.beta[o])
            .collect();
        // dlib pads "same" only for stride 1.
        let pad = if stride == 1 { size / 2 } else { 0 };
        Self {
            cin,
            cout,
            size,
            stride,
            pad,
            weights: packed,
            bias,
        }
    }

    /// Output height (or width) for an input of `n` pixels.
    pub fn output_size(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.size) / self.stride + 1
    }

    /// Weights and biases held.
    pub fn weight_count(&self) -> usize {
        self.weights.len() + self.bias.len()
    }

    pub fn blocks(&self) -> usize {
        self.cout / BLOCK
    }

    fn panel(&self, block: usize) -> &[f32] {
        let len = self.size * self.size * self.cin * BLOCK;
        &self.weights[block * len..(block + 1) * len]
    }
}

/// Where a convolution reads and writes, and what it does on the way out,
/// for a group of images at once (one per chip of a batch): pixel tiles run
/// across images too, so the 4×4 and 1×1 layers of several chips fill whole
/// tiles and read each weight panel once for the group.
pub(crate) struct ConvIo<'a> {
    /// One input per image, each of `in_layout`.
    pub inputs: &'a [&'a [f32]],
    pub in_layout: Layout,
    pub out_layout: Layout,
    /// Output pixels computed: `out_h × out_w`, from the top-left of `out_layout`
    /// (a down block's output may be larger than its convolution's).
    pub out_h: usize,
    pub out_w: usize,
    /// Added before the ReLU, over its first `layout.c` channels; one per image.
    pub residuals: Option<(&'a [&'a [f32]], Layout)>,
    pub relu: bool,
}

/// The arguments of one tile of `NP ≤ TILE` output pixels, as raw pointers
/// for the kernels. Pixels are taken in row-major order across rows, so
/// small outputs (4×4, 3×3) still fill whole tiles.
struct Tile {
    /// Per pixel: its window's first input value (kernel row 0, column 0,
    /// channel 0).
    input: [*const f32; TILE],
    in_row: usize,
    size: usize,
    run: usize,
    weights: *const f32,
    bias: *const f32,
    out: [*mut f32; TILE],
    /// Per pixel, or all null (so the kernels test the first): added
    /// before the ReLU.
    residual: [*const f32; TILE],
    relu: bool,
}

/// Pixel tiles per output block (all images): work items are blocks × tiles.
pub(crate) fn tiles(io: &ConvIo) -> usize {
    (io.inputs.len() * io.out_h * io.out_w).div_ceil(TILE)
}

/// Computes work items `items` of the convolution: item `i` is pixel tile
/// `i % tiles` of channel block `i / tiles` (block-major, so one block's
/// weights stay in cache across its tiles). Pixels are numbered image by
/// image, row by row.
///
/// # Safety
/// `outs[k]` must point to a buffer of `io.out_layout.len()` floats (image
/// `k`'s output) that no one else reads or writes in the pixels and blocks
/// of `items` meanwhile. The shapes in `io` must be consistent with `conv`
/// (the plan builds them so; the assertions below check the bounds the
/// kernels rely on).
pub(crate) unsafe fn run(
    isa: Isa,
    conv: &PackedConv,
    io: &ConvIo,
    outs: &[*mut f32],
    items: std::ops::Range<usize>,
) {
    let (il, ol) = (io.in_layout, io.out_layout);
    assert_eq!(il.c, conv.cin);
    assert!(io.out_h <= ol.h && io.out_w <= ol.w && ol.c == conv.cout);
    assert_eq!(outs.len(), io.inputs.len());
    assert!(io.inputs.iter().all(|i| i.len() >= il.len()));
    assert!((io.out_h - 1) * conv.stride + conv.size <= il.h + 2 * conv.pad);
    assert!((io.out_w - 1) * conv.stride + conv.size <= il.w + 2 * conv.pad);
    if let Some((rs, rl)) = io.residuals {
        assert!(rl.h >= io.out_h && rl.w >= io.out_w && rl.c % BLOCK == 0 && rs.len() == outs.len());
        assert!(rs.iter().all(|r| r.len() >= rl.len()));
    }
    let pad = conv.pad as isize;
    let per_image = io.out_h * io.out_w;
    let pixels = per_image * outs.len();
    let per_block = tiles(io);
    for item in items {
        let (block, tile) = (item / per_block, item % per_block);
        let first = tile * TILE;
        let n = TILE.min(pixels - first);
        let residuals = io.residuals.filter(|(_, l)| block * BLOCK < l.c);
        let mut t = Tile {
            input: [std::ptr::null(); TILE],
            in_row: il.row_stride(),
            size: conv.size,
            run: conv.size * conv.cin,
            weights: conv.panel(block).as_ptr(),
            bias: conv.bias.as_ptr().add(block * BLOCK),
            out: [std::ptr::null_mut(); TILE],
            residual: [std::ptr::null(); TILE],
            relu: io.relu,
        };
        for p in 0..n {
            let (image, q) = ((first + p) / per_image, (first + p) % per_image);
            let (y, x) = ((q / io.out_w) as isize, (q % io.out_w) as isize);
            let (iy, ix) = (y * conv.stride as isize - pad, x * conv.stride as isize - pad);
            t.input[p] = io.inputs[image].as_ptr().add(il.at(iy, ix));
            t.out[p] = outs[image].add(ol.at(y, x) + block * BLOCK);
            if let Some((rs, l)) = residuals {
                t.residual[p] = rs[image].as_ptr().add(l.at(y, x) + block * BLOCK);
            }
        }
        dispatch(isa, n, &t);
    }
}

/// Picks the kernel for `n` pixels (a const generic, so each tile width
/// gets its own fully unrolled register tile).
///
/// # Safety
/// `t` as `run` builds it (its first `n` pixels set), and `isa` supported by
/// this CPU (the recognizer accepts no other).
unsafe fn dispatch(isa: Isa, n: usize, t: &Tile) {
    macro_rules! tiles {
        ($f:ident) => {
            match n {
                1 => $f::<1>(t),
                2 => $f::<2>(t),
                3 => $f::<3>(t),
                4 => $f::<4>(t),
                5 => $f::<5>(t),
                _ => $f::<6>(t),
            }
        };
    }
    match isa {
        Isa::Portable => tiles!(tile_portable),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => tiles!(tile_avx2),
    }
}

/// The reference kernel: the same loop as the AVX2 one, in plain Rust.
///
/// # Safety
/// As for [`dispatch`]: every pointer of the first `NP` pixels of `t` is
/// valid for the window, weights and output `run` checked.
unsafe fn tile_portable<const NP: usize>(t: &Tile) {
    let mut acc = [[0f32; BLOCK]; NP];
    for pixel in acc.iter_mut() {
        pixel.copy_from_slice(std::slice::from_raw_parts(t.bias, BLOCK));
    }
    let mut w = t.weights;
    for ky in 0..t.size {
        for j in 0..t.run {
            let wv = std::slice::from_raw_parts(w, BLOCK);
            for (p, pixel) in acc.iter_mut().enumerate() {
                let v = *t.input[p].add(ky * t.in_row + j);
                for (a, &wk) in pixel.iter_mut().zip(wv) {
                    *a += v * wk;
                }
            }
            w = w.add(BLOCK);
        }
    }
    for (p, pixel) in acc.iter().enumerate() {
        let out = std::slice::from_raw_parts_mut(t.out[p], BLOCK);
        for (o, (&a, dst)) in pixel.iter().zip(out.iter_mut()).enumerate() {
            let mut v = a;
            if !t.residual[0].is_null() {
                v += *t.residual[p].add(o);
            }
            *dst = if t.relu { v.max(0.0) } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const NP: usize>(t: &Tile) {
    use std::arch::x86_64::*;
    // SAFETY (whole function): `run` derives every pointer from buffers
    // whose bounds it asserted: for each of the NP pixels an input window of
    // `size` rows of `run` values, `in_row` apart; `size · run` weight
    // vectors of 16; 16 biases; an output (and residual) pixel of at least
    // 16 channels. The CPU features were detected before `Isa::Avx2Fma` was
    // accepted (`Isa::is_supported`).
    let b0 = _mm256_loadu_ps(t.bias);
    let b1 = _mm256_loadu_ps(t.bias.add(8));
    let mut acc0 = [b0; NP];
    let mut acc1 = [b1; NP];
    let mut w = t.weights;
    for ky in 0..t.size {
        let rows: [*const f32; NP] = std::array::from_fn(|p| t.input[p].add(ky * t.in_row));
        for j in 0..t.run {
            let w0 = _mm256_loadu_ps(w);
            let w1 = _mm256_loadu_ps(w.add(8));
            for p in 0..NP {
                let v = _mm256_broadcast_ss(&*rows[p].add(j));
                acc0[p] = _mm256_fmadd_ps(v, w0, acc0[p]);
                acc1[p] = _mm256_fmadd_ps(v, w1, acc1[p]);
            }
            w = w.add(BLOCK);
        }
    }
    let zero = _mm256_setzero_ps();
    for p in 0..NP {
        let (mut v0, mut v1) = (acc0[p], acc1[p]);
        if !t.residual[0].is_null() {
            let r = t.residual[p];
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(r));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(r.add(8)));
        }
        if t.relu {
            v0 = _mm256_max_ps(v0, zero);
            v1 = _mm256_max_ps(v1, zero);
        }
        let o = t.out[p];
        _mm256_storeu_ps(o, v0);
        _mm256_storeu_ps(o.add(8), v1);
    }
}
