//! The arithmetic of vigil's own convolution operators (the tract glue lives
//! in `vigil::vision::kernels`): channel-last 1×1 ([`pointwise`]) and
//! depthwise 3×3 ([`depthwise`]) convolutions with their bias and ReLU, each
//! with an AVX-512 implementation and a portable one that any CPU runs and
//! the tests use as a reference. Also the other loops every image or face
//! goes through: the detector's input [`resize`] and embedding
//! [`distance`]s.
//!
//! Outputs are `&mut [MaybeUninit<f32>]`: the operators allocate them
//! uninitialised (zeroing would cost a pass over memory) and every kernel
//! writes each element exactly once.
//!
//! A crate of its own so that debug builds (the test suite) can compile it
//! optimised without optimising all of vigil: at opt-level 0 the vector code
//! is many times slower. Release builds compile it at opt-level 3 and the
//! rest of vigil at 1 (Cargo.toml's profile).

pub mod dense;
pub mod depthwise;
pub mod distance;
pub mod pointwise;
pub mod pointwise_int8;
pub mod resize;

/// Packed weights, compared bit for bit so that equality is an equivalence
/// (tract compares operators to deduplicate them, which needs `Eq`).
#[derive(Clone)]
struct Floats(Vec<f32>);

impl PartialEq for Floats {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Eq for Floats {}

impl std::ops::Deref for Floats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.0
    }
}

/// The output rows a row-split kernel computes, each with the input image it
/// reads: `out` holds whole rows of `row_len` values, from row `first_row` of
/// a stack of images of `rows_per_image` output rows each, and `input` holds
/// those images, `image_len` values each. Yields (image, row in the image,
/// row). Panics if `out` is not whole rows or reaches past the input.
fn output_rows<'a>(
    out: &'a mut [std::mem::MaybeUninit<f32>],
    row_len: usize,
    rows_per_image: usize,
    first_row: usize,
    input: &'a [f32],
    image_len: usize,
) -> impl Iterator<Item = (&'a [f32], usize, &'a mut [std::mem::MaybeUninit<f32>])> {
    assert!(
        row_len > 0 && out.len().is_multiple_of(row_len),
        "out must hold whole rows"
    );
    assert!(
        rows_per_image > 0 && image_len > 0,
        "empty images have no output rows"
    );
    let rows = out.len() / row_len;
    assert!(
        (first_row + rows).div_ceil(rows_per_image) * image_len <= input.len(),
        "out rows beyond the input's images"
    );
    out.chunks_mut(row_len).enumerate().map(move |(r, row)| {
        let (image, y) = ((first_row + r) / rows_per_image, (first_row + r) % rows_per_image);
        (&input[image * image_len..(image + 1) * image_len], y, row)
    })
}

/// `values` seen as output storage, for the tests (the kernels take
/// `MaybeUninit` so that callers can hand them fresh memory).
#[cfg(test)]
fn as_output(values: &mut [f32]) -> &mut [std::mem::MaybeUninit<f32>] {
    // SAFETY: same layout; the kernels only ever write initialised f32
    // values into it, so `values` stays initialised.
    unsafe { &mut *(values as *mut [f32] as *mut [std::mem::MaybeUninit<f32>]) }
}

/// Register tiles shared by the 1×1 and dense kernels: `NP` pixels × `NB`
/// blocks of 16 output channels, accumulated in AVX-512 registers.
#[cfg(target_arch = "x86_64")]
mod tile {
    use std::arch::x86_64::*;

    use super::LANES;

    /// Every pixel's accumulators start at its blocks' bias (`NB` blocks at `bias`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn from_bias<const NB: usize, const NP: usize>(bias: *const f32) -> [[__m512; NB]; NP] {
        let mut acc = [[_mm512_setzero_ps(); NB]; NP];
        for b in 0..NB {
            // SAFETY: the caller passes NB whole blocks of bias.
            let v = unsafe { _mm512_loadu_ps(bias.add(b * LANES)) };
            for pixel in acc.iter_mut() {
                pixel[b] = v;
            }
        }
        acc
    }

    /// Stores pixel `p`'s blocks at `dst + p · pixel_stride`, through the
    /// ReLU if `relu`, the last block only in the lanes of `last_mask`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn store<const NB: usize, const NP: usize>(
        acc: &[[__m512; NB]; NP],
        dst: *mut f32,
        pixel_stride: usize,
        last_mask: __mmask16,
        relu: bool,
    ) {
        let zero = _mm512_setzero_ps();
        for (p, pixel) in acc.iter().enumerate() {
            for (b, &v) in pixel.iter().enumerate() {
                let v = if relu { _mm512_max_ps(v, zero) } else { v };
                // SAFETY: the caller passes NP pixels of output at `dst`,
                // each with NB blocks, the last one as wide as `last_mask`.
                unsafe {
                    let at = dst.add(p * pixel_stride + b * LANES);
                    if b + 1 == NB {
                        _mm512_mask_storeu_ps(at, last_mask, v);
                    } else {
                        _mm512_storeu_ps(at, v);
                    }
                }
            }
        }
    }
}

/// For a 3-tap window of a padded 3×3 convolution starting at `start` (one
/// pixel before the output pixel's position), the input index of each tap
/// that falls inside `0..size`; the others read the zero padding.
fn window(start: isize, size: usize) -> [Option<usize>; 3] {
    std::array::from_fn(|t| {
        let i = start + t as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    })
}

/// The taps of [`window`] that fall inside the image, as (tap, index).
fn taps_inside(start: isize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    window(start, size)
        .into_iter()
        .enumerate()
        .filter_map(|(t, i)| Some((t, i?)))
}

/// f32 lanes of one AVX-512 register: channels are processed in blocks of this many.
pub const LANES: usize = 16;

/// What is applied to each output value after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// `max(v, 0)`, ONNX `Relu`.
    Relu,
}

impl Activation {
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
        }
    }
}

/// Which implementation the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, for any CPU (and the reference in tests).
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The fastest implementation this CPU runs.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        Isa::Portable
    }
}
