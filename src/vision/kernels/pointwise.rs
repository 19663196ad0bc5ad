//! [`PointwiseConv`]: a channel-last 1×1 convolution with its bias and ReLU,
//! and the rule that swaps it in for tract's `Conv`.
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::{activation, channel_last_patch, const_f32, filled_output, following_relu, Activation, Isa};
use vigil_kernels::pointwise::{self as kernel, PackedWeights};

/// A channel-last 1×1 convolution with its bias and, optionally, the ReLU
/// that follows it: `[.., cin]` in, `[.., cout]` out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointwiseConv {
    weights: Arc<PackedWeights>,
    activation: Activation,
    isa: Isa,
}

impl PointwiseConv {
    pub fn new(weights: PackedWeights, activation: Activation, isa: Isa) -> Self {
        Self {
            weights: Arc::new(weights),
            activation,
            isa,
        }
    }
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "VigilPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}→{} channels, {:?}, {:?}",
            self.weights.input_channels(),
            self.weights.output_channels(),
            self.activation,
            self.isa
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
        let (cin, cout) = (self.weights.input_channels(), self.weights.output_channels());
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
            kernel::run(&self.weights, self.activation, x, chunk, self.isa);
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(
            x.datum_type == f32::datum_type(),
            "VigilPointwiseConv runs on f32"
        );
        ensure!(
            x.shape.last() == Some(&self.weights.input_channels().to_dim()),
            "VigilPointwiseConv expects {} input channels last, got {:?}",
            self.weights.input_channels(),
            x.shape
        );
        let mut shape: TVec<TDim> = x.shape.iter().cloned().collect();
        *shape.last_mut().unwrap() = self.weights.output_channels().to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let pixels: TDim = inputs[0].shape.iter().rev().skip(1).product();
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            pixels * (self.weights.input_channels() * self.weights.output_channels())
        )))
    }

    as_op!();
}

/// Replaces an ONNX-style 1×1 convolution (NCHW, f32, stride 1, one group,
/// constant weights) and the ReLU after it by [`PointwiseConv`] between two
/// axis moves.
pub(super) fn rule(
    isa: Isa,
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
    rule_if_some!(kernel = const_f32(model, node.inputs[1], cout * cin)?);
    rule_if_some!(bias = const_f32(model, node.inputs[2], cout)?);

    let relu = following_relu(model, node)?;
    let op = PointwiseConv::new(
        PackedWeights::new(&kernel, &bias, cout, cin),
        activation(relu),
        isa,
    );
    channel_last_patch(model, node, relu, op).map(Some)
}
