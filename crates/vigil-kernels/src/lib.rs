//! The arithmetic of vigil's own convolution operators (the tract glue lives
//! in `vigil::vision::kernels`): channel-last 1×1 ([`pointwise`]) and
//! depthwise 3×3 ([`depthwise`]) convolutions with their bias and ReLU, each
//! with an AVX-512 implementation and a portable one that any CPU runs and
//! the tests use as a reference.
//!
//! A crate of its own so that debug builds (the test suite) can compile it
//! optimised without optimising all of vigil: at opt-level 0 the vector code
//! is many times slower.

pub mod dense;
pub mod depthwise;
pub mod pointwise;

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
