//! [`DepthwiseConv`]: a channel-last depthwise 3×3 convolution (padding 1,
//! stride 1 or 2) with its bias and ReLU, and the rule that swaps it in for
//! tract's `Conv`.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;

use super::{
    activation, channel_last_patch, const_f32, filled_output, following_relu, padded_3x3_stride, Activation,
    Isa,
};
use vigil_kernels::depthwise::{self as kernel, DepthwiseWeights, Input};

/// `[n, h, w, c]` in, `[n, ⌈h/s⌉, ⌈w/s⌉, c]` out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthwiseConv {
    weights: Arc<DepthwiseWeights>,
    activation: Activation,
    isa: Isa,
}

impl DepthwiseConv {
    pub fn new(weights: DepthwiseWeights, activation: Activation, isa: Isa) -> Self {
        Self {
            weights: Arc::new(weights),
            activation,
            isa,
        }
    }

    pub(super) fn weights(&self) -> &DepthwiseWeights {
        &self.weights
    }

    /// One output row from the input rows of its window (see
    /// `DepthwiseWeights::input_rows`).
    pub(super) fn run_row(&self, rows: [Option<&[f32]>; 3], out: &mut [std::mem::MaybeUninit<f32>]) {
        kernel::run_row(&self.weights, self.activation, rows, out, self.isa);
    }
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "VigilDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "3×3 on {} channels, stride {}, {:?}, {:?}",
            self.weights.channels(),
            self.weights.stride(),
            self.activation,
            self.isa
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let c = self.weights.channels();
        let &[n, h, w, xc] = x.shape() else {
            bail!("VigilDepthwiseConv wants [n, h, w, c], got {:?}", x.shape());
        };
        ensure!(
            x.datum_type() == f32::datum_type() && xc == c && h > 0 && w > 0,
            "VigilDepthwiseConv wants f32 [n, h, w, {c}], got {:?} {:?}",
            x.datum_type(),
            x.shape()
        );
        let (ho, wo) = (self.weights.output_size(h), self.weights.output_size(w));
        let view = x.try_as_plain_ram()?;
        let input = Input {
            data: view.as_slice::<f32>()?,
            height: h,
            width: w,
        };
        // Output rows are independent.
        let output = filled_output(&[n, ho, wo, c], wo * c, n * ho * wo * c * 9, |first, rows| {
            kernel::run_rows(&self.weights, self.activation, input, rows, first, self.isa);
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(
            x.datum_type == f32::datum_type() && x.rank() == 4,
            "VigilDepthwiseConv runs on f32 [n, h, w, c]"
        );
        ensure!(
            x.shape[3] == self.weights.channels().to_dim(),
            "VigilDepthwiseConv expects {} channels last, got {:?}",
            self.weights.channels(),
            x.shape
        );
        let s = self.weights.stride() as u64;
        let shape = [
            x.shape[0].clone(),
            x.shape[1].clone().div_ceil(s),
            x.shape[2].clone().div_ceil(s),
            x.shape[3].clone(),
        ];
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let out = self.output_facts(inputs)?.remove(0);
        Ok(tvec!((Cost::FMA(f32::datum_type()), out.shape.volume() * 9)))
    }

    as_op!();
}

/// Replaces an ONNX-style depthwise 3×3 convolution (NCHW, f32, one group
/// per channel, padding 1, stride 1 or 2, constant weights) and the ReLU
/// after it by [`DepthwiseConv`] between two axis moves.
pub(super) fn rule(
    isa: Isa,
    model: &TypedModel,
    node: &TypedNode,
    conv: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let spec = &conv.pool_spec;
    let c = spec.input_channels;
    rule_if!(conv.group == c && spec.output_channels == c && c > 1);
    rule_if_some!(stride = padded_3x3_stride(model, node, conv)?);
    rule_if_some!(kernel = const_f32(model, node.inputs[1], c * 9)?);
    rule_if_some!(bias = const_f32(model, node.inputs[2], c)?);

    let relu = following_relu(model, node)?;
    let op = DepthwiseConv::new(
        DepthwiseWeights::new(&kernel, &bias, c, stride),
        activation(relu),
        isa,
    );
    channel_last_patch(model, node, relu, op).map(Some)
}
