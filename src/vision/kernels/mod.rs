//! vigil's own operators for CenterFace's convolutions, swapped into the
//! tract graph before it is optimised.
//!
//! Why: profiling the optimised plan per node (`cargo bench --bench detector
//! -- --profile`) showed where tract lost to onnxruntime on this network:
//! - tract lowers the 1×1 convolutions, most of MobileNetV2's arithmetic, to
//!   matrix products with the pixels on the kernel's vector axis. With
//!   channel-last activations that axis is strided in the output, so every
//!   result is stored one float at a time, and the activations are repacked
//!   before each product: the 16→96 expansion at 320×240 took 17 ms where
//!   onnxruntime takes 7. [`PointwiseConv`] keeps the output channels on the
//!   vector axis instead.
//! - tract's depthwise convolution splits channels between threads, so with
//!   two threads each one walks the whole image for half the channels and the
//!   pair is slower than one thread alone. [`DepthwiseConv`] splits rows.
//! - the first convolution's output (32 channels at half the input size)
//!   went through a transposition to channel-last that took longer than the
//!   convolution. [`DenseConv3x3`] reads the channel-first image and writes
//!   channel-last; it also runs the head's 3×3 convolution.
//!
//! All three fold the ReLU that follows them. The transposed convolutions of
//! the feature pyramid and the batch norms after them stay tract's.
//!
//! The operators are used only where they have a fast kernel (AVX-512);
//! elsewhere the graph is left as it was (see `centerface::Kernels`). Their
//! arithmetic is in the `vigil-kernels` crate; this module is the tract glue.

mod dense;
mod depthwise;
mod expand_depthwise;
mod pointwise;

use std::mem::MaybeUninit;

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

pub use dense::DenseConv3x3;
pub use depthwise::DepthwiseConv;
pub use expand_depthwise::ExpandDepthwise;
pub use pointwise::PointwiseConv;
pub use vigil_kernels::pointwise_int8::supported as int8_supported;
pub use vigil_kernels::{Activation, Isa};

/// The arithmetic of the 1×1 convolutions, most of CenterFace's work (the
/// other operators are f32 always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 8-bit integers on CPUs with AVX-512 VNNI (f32 on others); see
    /// `vigil_kernels::pointwise_int8` for the arithmetic and its error.
    #[default]
    Int8,
    F32,
}

/// Replaces every convolution of `model` that one of vigil's operators
/// handles, with the ReLU that follows it, the operators computing with
/// `isa` (and the 1×1 ones with `precision`). Returns how many were replaced. (With [`Isa::Portable`] they are
/// slower than tract's: that is for tests on any CPU.)
///
/// Run on the typed model before decluttering: the declutter pass then
/// cancels the axis moves between neighbouring channel-last operators.
pub fn swap_in(model: &mut TypedModel, isa: Isa, precision: Precision) -> TractResult<usize> {
    // Only the nodes the graph still runs (a fused pair counts as one).
    let ours = |m: &TypedModel| -> TractResult<usize> {
        Ok(m.eval_order()?
            .into_iter()
            .map(|n| m.node(n))
            .filter(|n| {
                n.op_is::<PointwiseConv>()
                    || n.op_is::<DepthwiseConv>()
                    || n.op_is::<DenseConv3x3>()
                    || n.op_is::<ExpandDepthwise>()
            })
            .count())
    };
    let before = ours(model)?;
    Rewriter::<()>::default()
        .with_rule_for("vigil-pointwise", move |_, model, node, _, conv: &Conv| {
            pointwise::rule(isa, precision, model, node, conv)
        })
        .with_rule_for("vigil-depthwise", move |_, model, node, _, conv: &Conv| {
            depthwise::rule(isa, model, node, conv)
        })
        .with_rule_for("vigil-dense", move |_, model, node, name, conv: &Conv| {
            dense::rule(isa, model, node, name, conv)
        })
        .rewrite(&(), model)?;
    // Then the expansions whose output only a depthwise convolution reads,
    // now that both are vigil's.
    Rewriter::<()>::default()
        .with_rule_for(
            "vigil-expand-depthwise",
            |_, model, node, _, dw: &DepthwiseConv| expand_depthwise::rule(model, node, dw),
        )
        .rewrite(&(), model)?;
    Ok(ours(model)? - before)
}

/// A new f32 tensor of `shape` whose elements `fill` writes, every one of
/// them, split in rows of `row_len` across the plan's executor (whole rows
/// only, so results do not depend on the thread count): `fill(first_row,
/// rows)`. `work` (elements read or multiply-adds) decides whether
/// splitting is worth it.
///
/// The storage is not zeroed first (that would be one more pass over memory
/// per layer); the kernels take it as `MaybeUninit` and write each element.
fn filled_output(
    shape: &[usize],
    row_len: usize,
    work: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> TractResult<Tensor> {
    // SAFETY: only read after `fill` has written every element (the kernels'
    // contract, checked by their tests).
    let mut output = unsafe { Tensor::uninitialized::<f32>(shape)? };
    let len = output.len();
    if len == 0 {
        return Ok(output);
    }
    ensure!(
        row_len > 0 && len.is_multiple_of(row_len),
        "{len} elements are not rows of {row_len}"
    );
    // SAFETY: the tensor owns `len` f32 of plain storage, non-empty here;
    // viewing them as `MaybeUninit` claims nothing about their contents.
    let out = unsafe {
        std::slice::from_raw_parts_mut(
            output.as_ptr_mut_unchecked::<f32>().cast::<MaybeUninit<f32>>(),
            len,
        )
    };
    tract_linalg::multithread::par_chunks_mut(out, row_len, work, |first, rows| {
        fill(first, rows);
        Ok(())
    })?;
    Ok(output)
}

/// The stride (1 or 2) of `conv` if it is the kind of 3×3 convolution vigil's
/// 3×3 kernels compute: f32 NCHW data, OIHW weights and bias as inputs, one
/// pixel of zero padding on every side, no dilation, the same stride on both
/// axes, and so an output of ⌈size / stride⌉ pixels. `None` otherwise.
fn padded_3x3_stride(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<usize>> {
    let spec = &conv.pool_spec;
    rule_if!(conv.q_params.is_none() && node.inputs.len() == 3);
    rule_if!(spec.data_format == DataFormat::NCHW && conv.kernel_fmt == KernelFormat::OIHW);
    rule_if!(*spec.kernel_shape == [3, 3]);
    rule_if!(spec.dilations.as_ref().is_none_or(|d| d.iter().all(|&d| d == 1)));
    let stride = match spec.strides.as_deref() {
        None | Some([1, 1]) => 1,
        Some([2, 2]) => 2,
        _ => return Ok(None),
    };
    let one = |p: &[usize]| p == [1, 1];
    rule_if!(match &spec.padding {
        PaddingSpec::Explicit(before, after) | PaddingSpec::ExplicitOnnxPool(before, after, _) => {
            one(before) && one(after)
        }
        _ => false,
    });
    let x = model.outlet_fact(node.inputs[0])?;
    rule_if!(x.datum_type == f32::datum_type() && x.rank() == 4);
    let y = &node.outputs[0].fact;
    let s = stride as u64;
    rule_if!(y.shape[2] == x.shape[2].clone().div_ceil(s) && y.shape[3] == x.shape[3].clone().div_ceil(s));
    Ok(Some(stride))
}

/// The f32 values of a constant input with `len` elements (or one, then
/// repeated), or `None` when the input is not such a constant.
fn const_f32(model: &TypedModel, outlet: OutletId, len: usize) -> TractResult<Option<Vec<f32>>> {
    let Some(value) = model.outlet_fact(outlet)?.konst.clone() else {
        return Ok(None);
    };
    if value.datum_type() != f32::datum_type() || (value.len() != len && value.len() != 1) {
        return Ok(None);
    }
    // A constant tract keeps in another storage is left to tract.
    let Some(values) = value
        .try_as_plain_ram()
        .ok()
        .and_then(|v| v.as_slice::<f32>().ok().map(<[f32]>::to_vec))
    else {
        return Ok(None);
    };
    Ok(Some(if values.len() == len {
        values
    } else {
        vec![values[0]; len]
    }))
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
    // Same shape out as in: a zero that broadcasts to a bigger shape is not
    // a plain ReLU.
    if bin.0.name() != "Max"
        || next.inputs.len() != 2
        || next.outputs[0].fact.shape != conv.outputs[0].fact.shape
    {
        return Ok(None);
    }
    let other = next.inputs[1 - succ.slot];
    let zero = model
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
    Ok(zero.then(|| next.id.into()))
}

/// The patch that runs `op` channel-last in place of the NCHW `conv` (and
/// of the ReLU folded into `op`, if any): move channels last, run, move them
/// back. Consecutive channel-last operators leave back-to-back moves that the
/// declutter pass removes.
fn channel_last_patch(
    model: &TypedModel,
    conv: &TypedNode,
    relu: Option<OutletId>,
    op: impl TypedOp,
) -> TractResult<TypedModelPatch> {
    let name = &conv.name;
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, conv.inputs[0])?;
    let nhwc = patch.wire_node(format!("{name}.nhwc_in"), AxisOp::Move(1, 3), &[input])?;
    let out = patch.wire_node(format!("{name}.vigil"), op, &nhwc)?;
    let nchw = patch.wire_node(format!("{name}.nhwc_out"), AxisOp::Move(3, 1), &out)?;
    patch.shunt_outside(model, relu.unwrap_or(conv.id.into()), nchw[0])?;
    Ok(patch)
}

/// `values` seen as output storage for a kernel that writes every element
/// (they take `MaybeUninit` so that operators can hand them fresh memory).
fn as_output(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the kernels only ever write initialised f32
    // values into it, so `values` stays initialised.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// [`Activation::Relu`] when `relu` was found, for the operators' constructors.
fn activation(relu: Option<OutletId>) -> Activation {
    if relu.is_some() {
        Activation::Relu
    } else {
        Activation::Identity
    }
}
