//! vigil's own operator for CenterFace's 1×1 convolutions, swapped into the
//! tract graph before it is optimised.
//!
//! Why: profiling the optimised plan per node (`cargo bench --bench
//! detector -- --profile`) showed tract lowering these convolutions, which are most of
//! MobileNetV2's arithmetic, to matrix products with the pixels on the
//! kernel's vector axis. With channel-last activations that axis is strided
//! in the output, so every result is stored one float at a time, and the
//! activations are repacked before each product: the 16→96 expansion at
//! 320×240 took 17 ms where onnxruntime takes 7. This operator keeps the
//! output channels on the vector axis instead (see [`kernel`]).
//!
//! Everything else (depthwise and 3×3 convolutions, the decoder head) stays
//! tract's. The operator is used only where it has a fast kernel (AVX-512);
//! elsewhere the graph is left as it was.

pub mod kernel;

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

pub use kernel::{Activation, Isa, PackedWeights};

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
        // SAFETY: every element is written by `kernel::run` below (it covers
        // all pixels × cout), so no uninitialised value is ever read.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let out = unsafe { output.as_slice_mut_unchecked::<f32>() };
        let macs = xs.len() * cout;
        // Pixels are independent: split them across the plan's executor
        // (whole pixels only, so results do not depend on the thread count).
        tract_linalg::multithread::par_chunks_mut(out, cout.max(1), macs, |first, chunk| {
            let pixels = chunk.len() / cout.max(1);
            kernel::run(
                &self.weights,
                self.activation,
                &xs[first * cin..(first + pixels) * cin],
                chunk,
                self.isa,
            );
            Ok(())
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

/// Replaces every eligible ONNX-style 1×1 convolution of `model` (NCHW, f32,
/// stride 1, one group, constant weights) by [`PointwiseConv`] between two
/// axis moves, folding a following ReLU into it. Returns how many were
/// replaced; nothing is done (0) when this CPU has no fast kernel.
///
/// Run on the typed model before decluttering: the declutter pass then
/// cancels the moves between neighbouring channel-last operators.
pub fn swap_in(model: &mut TypedModel) -> TractResult<usize> {
    let isa = Isa::detect();
    if isa == Isa::Portable {
        return Ok(0);
    }
    let before = count(model);
    Rewriter::<()>::default()
        .with_rule_for("vigil-pointwise", move |_, model, node, name, conv: &Conv| {
            rule(isa, model, node, name, conv)
        })
        .rewrite(&(), model)?;
    Ok(count(model) - before)
}

fn count(model: &TypedModel) -> usize {
    model.nodes.iter().filter(|n| n.op_is::<PointwiseConv>()).count()
}

fn rule(
    isa: Isa,
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
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
    rule_if_some!(kernel = model.outlet_fact(node.inputs[1])?.konst.clone());
    rule_if_some!(bias = model.outlet_fact(node.inputs[2])?.konst.clone());
    rule_if!(kernel.len() == cout * cin && kernel.datum_type() == f32::datum_type());
    rule_if!(bias.datum_type() == f32::datum_type() && (bias.len() == cout || bias.len() == 1));
    let kernel = kernel.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    let bias = bias.try_as_plain_ram()?.as_slice::<f32>()?;
    let bias: Vec<f32> = if bias.len() == cout {
        bias.to_vec()
    } else {
        vec![bias[0]; cout]
    };

    let relu = following_relu(model, node)?;
    let activation = if relu.is_some() {
        Activation::Relu
    } else {
        Activation::Identity
    };
    let op = PointwiseConv::new(PackedWeights::new(&kernel, &bias, cout, cin), activation, isa);

    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, node.inputs[0])?;
    let nhwc = patch.wire_node(format!("{name}.nhwc_in"), AxisOp::Move(1, 3), &[input])?;
    let conv = patch.wire_node(format!("{name}.pointwise"), op, &nhwc)?;
    let nchw = patch.wire_node(format!("{name}.nhwc_out"), AxisOp::Move(3, 1), &conv)?;
    let replaced = relu.unwrap_or(node.id.into());
    patch.shunt_outside(model, replaced, nchw[0])?;
    Ok(Some(patch))
}

/// The output of the ReLU applied to `conv`'s output when that ReLU is the
/// conv's only consumer (as tract imports ONNX `Relu`: `max(x, 0)`).
fn following_relu(model: &TypedModel, conv: &TypedNode) -> TractResult<Option<OutletId>> {
    let outlet: OutletId = conv.id.into();
    if model.output_outlets()?.contains(&outlet) {
        return Ok(None);
    }
    let [succ] = conv.outputs[0].successors.as_slice() else {
        return Ok(None);
    };
    let next = model.node(succ.node);
    let Some(bin) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if bin.0.name() != "Max" || next.inputs.len() != 2 {
        return Ok(None);
    }
    let other = next.inputs[1 - succ.slot];
    let is_zero = model
        .outlet_fact(other)?
        .konst
        .as_ref()
        .and_then(|k| {
            k.try_as_plain_ram()
                .ok()?
                .as_slice::<f32>()
                .ok()
                .map(|s| s.iter().all(|v| *v == 0.0))
        })
        .unwrap_or(false);
    Ok(is_zero.then(|| next.id.into()))
}
