//! [`DenseConv3x3`]: a dense 3×3 convolution (padding 1, stride 1 or 2) with
//! its bias and ReLU, channel-last output, reading the network's input image
//! channel-first where it is, and the rule that swaps it in for tract's `Conv`.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::source::TypedSource;

use vigil_kernels::dense::{self as kernel, DenseWeights, Input, Layout};

use super::{activation, const_f32, filled_output, following_relu, padded_3x3_stride, Activation, Isa};

/// `[n, c, h, w]` (channel-first) or `[n, h, w, c]` in, `[n, ⌈h/s⌉, ⌈w/s⌉, cout]` out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseConv3x3 {
    weights: Arc<DenseWeights>,
    layout: Layout,
    activation: Activation,
    isa: Isa,
}

impl DenseConv3x3 {
    pub fn new(weights: DenseWeights, layout: Layout, activation: Activation, isa: Isa) -> Self {
        Self {
            weights: Arc::new(weights),
            layout,
            activation,
            isa,
        }
    }

    /// (images, channels, height, width) of an input shape.
    fn dims<D: Clone>(&self, shape: &[D]) -> Option<[D; 4]> {
        let [n, a, b, c] = shape else { return None };
        Some(match self.layout {
            Layout::ChannelFirst => [n.clone(), a.clone(), b.clone(), c.clone()],
            Layout::ChannelLast => [n.clone(), c.clone(), a.clone(), b.clone()],
        })
    }
}

impl Op for DenseConv3x3 {
    fn name(&self) -> StaticName {
        "VigilDenseConv3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}→{} channels, stride {}, input {:?}, {:?}, {:?}",
            self.weights.input_channels(),
            self.weights.output_channels(),
            self.weights.stride(),
            self.layout,
            self.activation,
            self.isa
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DenseConv3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let cin = self.weights.input_channels();
        let Some([n, c, h, w]) = self.dims(x.shape()) else {
            bail!("VigilDenseConv3x3 wants a rank-4 input, got {:?}", x.shape());
        };
        ensure!(
            x.datum_type() == f32::datum_type() && c == cin && h > 0 && w > 0,
            "VigilDenseConv3x3 wants f32 with {cin} channels ({:?}), got {:?} {:?}",
            self.layout,
            x.datum_type(),
            x.shape()
        );
        let cout = self.weights.output_channels();
        let (ho, wo) = (self.weights.output_size(h), self.weights.output_size(w));
        let view = x.try_as_plain_ram()?;
        let input = Input {
            data: view.as_slice::<f32>()?,
            height: h,
            width: w,
            layout: self.layout,
        };
        // Output rows are independent.
        let work = n * ho * wo * cout * cin * 9;
        let output = filled_output(&[n, ho, wo, cout], wo * cout, work, |first, rows| {
            kernel::run_rows(&self.weights, self.activation, input, rows, first, self.isa);
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DenseConv3x3 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        let Some([n, c, h, w]) = self.dims(&x.shape) else {
            bail!("VigilDenseConv3x3 wants a rank-4 input, got {:?}", x.shape);
        };
        ensure!(x.datum_type == f32::datum_type(), "VigilDenseConv3x3 runs on f32");
        ensure!(
            c == self.weights.input_channels().to_dim(),
            "VigilDenseConv3x3 expects {} channels, got {:?}",
            self.weights.input_channels(),
            x.shape
        );
        let s = self.weights.stride() as u64;
        Ok(tvec!(f32::fact([
            n,
            h.div_ceil(s),
            w.div_ceil(s),
            self.weights.output_channels().to_dim()
        ])))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let out = self.output_facts(inputs)?.remove(0);
        let per_output = self.weights.input_channels() * 9;
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            out.shape.volume() * per_output
        )))
    }

    as_op!();
}

/// Replaces an ONNX-style dense 3×3 convolution (NCHW, f32, one group,
/// padding 1, stride 1 or 2, constant weights) and the ReLU after it by
/// [`DenseConv3x3`]. It reads a model input channel-first as it is (no
/// transposition of the image); any other input is moved channel-last like
/// the neighbouring operators' outputs.
pub(super) fn rule(
    isa: Isa,
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    conv: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let spec = &conv.pool_spec;
    let (cin, cout) = (spec.input_channels, spec.output_channels);
    rule_if!(conv.group == 1);
    rule_if_some!(stride = padded_3x3_stride(model, node, conv)?);
    rule_if_some!(kernel = const_f32(model, node.inputs[1], cout * cin * 9)?);
    rule_if_some!(bias = const_f32(model, node.inputs[2], cout)?);

    let relu = following_relu(model, node)?;
    let from_source = model.node(node.inputs[0].node).op_is::<TypedSource>();
    let layout = if from_source {
        Layout::ChannelFirst
    } else {
        Layout::ChannelLast
    };
    let op = DenseConv3x3::new(
        DenseWeights::new(&kernel, &bias, cout, cin, stride),
        layout,
        activation(relu),
        isa,
    );

    let mut patch = TypedModelPatch::default();
    let mut wire = patch.tap_model(model, node.inputs[0])?;
    if layout == Layout::ChannelLast {
        wire = patch.wire_node(format!("{name}.nhwc_in"), AxisOp::Move(1, 3), &[wire])?[0];
    }
    let out = patch.wire_node(format!("{name}.vigil"), op, &[wire])?;
    let nchw = patch.wire_node(format!("{name}.nhwc_out"), AxisOp::Move(3, 1), &out)?;
    patch.shunt_outside(model, relu.unwrap_or(node.id.into()), nchw[0])?;
    Ok(Some(patch))
}
