//! [`PointwiseConv`]: a channel-last 1×1 convolution with its bias and ReLU,
//! and the rule that swaps it in for tract's `Conv`.
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::{
    activation, channel_last_patch, const_f32, filled_output, following_relu, Activation, Isa, Precision,
};
use vigil_kernels::pointwise::{self as kernel, PackedWeights};
use vigil_kernels::pointwise_int8::{self as int8_kernel, Int8Weights};

/// A channel-last 1×1 convolution with its bias and, optionally, the ReLU
/// that follows it: `[.., cin]` in, `[.., cout]` out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointwiseConv {
    arithmetic: Arithmetic,
    activation: Activation,
}

/// How the products are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arithmetic {
    F32(Arc<PackedWeights>, Isa),
    /// Only built where `int8_kernel::supported()`.
    Int8(Arc<Int8Weights>),
}

/// Whether 8 bits make a 1×1 convolution of `cin` → `cout` channels over
/// `pixels` pixels faster. Quantizing costs a pass over each pixel's inputs
/// whatever `cout` is, and the saving grows with `cout`; on large tensors
/// the layer waits on memory, not on multiply-adds, and 8 bits only add the
/// pass. Measured per node at 640×480, one thread (`cargo bench --bench
/// detector -- --profile`, int8 ÷ f32): 0.36–0.54 for 64→384, 96→576,
/// 160→960 and 960→320 at 30×40 and below; 0.8 for 32→192 at 60×80 (4.3 MB
/// moved); 1.1–1.2 for 24→144 at 120×160 (13 MB) and 16→96 at 240×320;
/// 1.1–1.3 for 32- and 24-channel outputs at any size; 3 for 24→1. (Those
/// figures predate the fused expansions: 16→96 and 24→144 at those sizes
/// now run inside `ExpandDepthwise`, in f32 by this same rule; int8 there
/// was not measured.)
fn int8_pays(cin: usize, cout: usize, pixels: usize) -> bool {
    const MIN_OUTPUTS: usize = 64;
    const MAX_BYTES_MOVED: usize = 8 << 20;
    cout >= MIN_OUTPUTS && pixels.saturating_mul(cin + cout).saturating_mul(4) <= MAX_BYTES_MOVED
}

impl PointwiseConv {
    /// `kernel` as `[cout][cin]`, applied to `pixels` pixels.
    /// [`Precision::Int8`] computes in 8-bit integers where the CPU has
    /// AVX-512 VNNI and the layer gains by it ([`int8_pays`]), in f32 with
    /// `isa` elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernel: &[f32],
        bias: &[f32],
        cout: usize,
        cin: usize,
        activation: Activation,
        isa: Isa,
        precision: Precision,
        pixels: usize,
    ) -> Self {
        let int8 = precision == Precision::Int8 && int8_kernel::supported() && int8_pays(cin, cout, pixels);
        let arithmetic = if int8 {
            Arithmetic::Int8(Arc::new(Int8Weights::new(kernel, bias, cout, cin)))
        } else {
            Arithmetic::F32(Arc::new(PackedWeights::new(kernel, bias, cout, cin)), isa)
        };
        Self {
            arithmetic,
            activation,
        }
    }

    /// `(cin, cout)`.
    pub(super) fn channels(&self) -> (usize, usize) {
        match &self.arithmetic {
            Arithmetic::F32(w, _) => (w.input_channels(), w.output_channels()),
            Arithmetic::Int8(w) => (w.input_channels(), w.output_channels()),
        }
    }

    /// `out` (`pixels × cout`) from `x` (`pixels × cin`).
    pub(super) fn compute(&self, x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
        match &self.arithmetic {
            Arithmetic::F32(w, isa) => kernel::run(w, self.activation, x, out, *isa),
            Arithmetic::Int8(w) => int8_kernel::run(w, self.activation, x, out),
        }
    }
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "VigilPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (cin, cout) = self.channels();
        let arithmetic = match &self.arithmetic {
            Arithmetic::F32(_, isa) => format!("f32 {isa:?}"),
            Arithmetic::Int8(_) => "int8 VNNI".to_owned(),
        };
        Ok(vec![format!(
            "{cin}→{cout} channels, {:?}, {arithmetic}",
            self.activation
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let (cin, cout) = self.channels();
        ensure!(
            x.datum_type() == f32::datum_type() && x.shape().last() == Some(&cin),
            "VigilPointwiseConv wants f32 [.., {cin}], got {:?} {:?}",
            x.datum_type(),
            x.shape()
        );
        let mut shape: TVec<usize> = x.shape().into();
        *shape.last_mut().unwrap() = cout;
        let view = x.try_as_plain_ram()?;
        let xs = view.as_slice::<f32>()?;
        // Pixels are independent: one row per pixel.
        let output = filled_output(&shape, cout, xs.len() * cout, |first, chunk| {
            let pixels = chunk.len() / cout;
            let x = &xs[first * cin..(first + pixels) * cin];
            self.compute(x, chunk);
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        let (cin, cout) = self.channels();
        ensure!(
            x.datum_type == f32::datum_type(),
            "VigilPointwiseConv runs on f32"
        );
        ensure!(
            x.shape.last() == Some(&cin.to_dim()),
            "VigilPointwiseConv expects {cin} input channels last, got {:?}",
            x.shape
        );
        let mut shape: TVec<TDim> = x.shape.iter().cloned().collect();
        *shape.last_mut().unwrap() = cout.to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let pixels: TDim = inputs[0].shape.iter().rev().skip(1).product();
        let (cin, cout) = self.channels();
        Ok(tvec!((Cost::FMA(f32::datum_type()), pixels * (cin * cout))))
    }

    as_op!();
}

/// Replaces an ONNX-style 1×1 convolution (NCHW, f32, stride 1, one group,
/// constant weights) and the ReLU after it by [`PointwiseConv`] between two
/// axis moves.
pub(super) fn rule(
    isa: Isa,
    precision: Precision,
    model: &TypedModel,
    node: &TypedNode,
    conv: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let spec = &conv.pool_spec;
    rule_if!(conv.q_params.is_none() && conv.group == 1 && node.inputs.len() == 3);
    rule_if!(spec.data_format == DataFormat::NCHW && conv.kernel_fmt == KernelFormat::OIHW);
    rule_if!(spec.kernel_shape.iter().all(|&k| k == 1));
    rule_if!(spec.strides.as_ref().is_none_or(|s| s.iter().all(|&s| s == 1)));
    let x = model.outlet_fact(node.inputs[0])?;
    let y = &node.outputs[0].fact;
    rule_if!(x.datum_type == f32::datum_type() && x.rank() == 4);
    // Same spatial size in and out: no padding to emulate.
    rule_if!(x.shape[2..] == y.shape[2..]);
    let (cout, cin) = (spec.output_channels, spec.input_channels);
    // The shapes are concrete when the rule runs (one plan per shape); a
    // symbolic one counts as large.
    let pixels = x.shape[2..]
        .iter()
        .try_fold(1usize, |n, d| Some(n.saturating_mul(d.to_usize().ok()?)))
        .unwrap_or(usize::MAX);
    rule_if_some!(kernel = const_f32(model, node.inputs[1], cout * cin)?);
    rule_if_some!(bias = const_f32(model, node.inputs[2], cout)?);

    let relu = following_relu(model, node)?;
    let op = PointwiseConv::new(
        &kernel,
        &bias,
        cout,
        cin,
        activation(relu),
        isa,
        precision,
        pixels,
    );
    channel_last_patch(model, node, relu, op).map(Some)
}
