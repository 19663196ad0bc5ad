//! [`ExpandDepthwise`]: a 1×1 expansion and the depthwise 3×3 convolution
//! that reads it, as one operator, so the expanded tensor is never stored
//! whole.
//!
//! Why: MobileNetV2's blocks expand 16–24 channels six-fold, and at the
//! largest sizes the expanded tensor does not fit in cache (16→96 at 240×320
//! for a 640×480 image: 29 MB written, then read back by the depthwise
//! convolution). Those layers waited on memory: per node at 640 on one
//! thread the 16→96 expansion took 4.2 ms and the depthwise after it 3.9 ms
//! for a few tens of millions of multiply-adds. Here each thread expands the
//! input rows its output rows need into three row buffers that stay in
//! cache, and runs the depthwise row from them.
//!
//! A thread's first output row recomputes up to two expanded rows its
//! neighbour also computes, so only large tensors are fused
//! ([`MIN_EXPANDED_BYTES`]); smaller ones fit in cache anyway.

use std::mem::MaybeUninit;

use tract_onnx::tract_core::internal::*;

use super::{as_output, filled_output, DepthwiseConv, PointwiseConv};

/// Expanded tensors smaller than this stay two operators.
const MIN_EXPANDED_BYTES: usize = 4 << 20;

/// `[n, h, w, cin]` in, `[n, ⌈h/s⌉, ⌈w/s⌉, cexp]` out: `depthwise(expand(x))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandDepthwise {
    expand: PointwiseConv,
    depthwise: DepthwiseConv,
}

impl Op for ExpandDepthwise {
    fn name(&self) -> StaticName {
        "VigilExpandDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = self.expand.info()?;
        info.extend(self.depthwise.info()?);
        Ok(info)
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

/// The expanded rows a thread holds: three, enough for one depthwise row,
/// each tagged with its (image, row).
struct ExpandedRows {
    values: Vec<f32>,
    row_len: usize,
    tags: [Option<(usize, usize)>; 3],
}

impl ExpandedRows {
    fn new(row_len: usize) -> Self {
        Self {
            values: vec![0.0; 3 * row_len],
            row_len,
            tags: [None; 3],
        }
    }

    fn slot(&self, tag: (usize, usize)) -> Option<usize> {
        self.tags.iter().position(|t| *t == Some(tag))
    }

    /// Makes sure row `tag` is held, computing it with `expand` into a slot
    /// that none of `keep` occupies.
    fn ensure(
        &mut self,
        tag: (usize, usize),
        keep: &[(usize, usize)],
        expand: impl FnOnce(&mut [MaybeUninit<f32>]),
    ) {
        if self.slot(tag).is_some() {
            return;
        }
        let free = self
            .tags
            .iter()
            .position(|t| t.is_none_or(|t| !keep.contains(&t)))
            .expect("three slots for at most three rows");
        expand(as_output(
            &mut self.values[free * self.row_len..(free + 1) * self.row_len],
        ));
        self.tags[free] = Some(tag);
    }

    fn row(&self, tag: (usize, usize)) -> &[f32] {
        let slot = self.slot(tag).expect("rows are ensured before use");
        &self.values[slot * self.row_len..(slot + 1) * self.row_len]
    }
}

impl EvalOp for ExpandDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let (cin, c) = self.expand.channels();
        let &[n, h, w, xc] = x.shape() else {
            bail!("VigilExpandDepthwise wants [n, h, w, c], got {:?}", x.shape());
        };
        ensure!(
            x.datum_type() == f32::datum_type() && xc == cin && h > 0 && w > 0,
            "VigilExpandDepthwise wants f32 [n, h, w, {cin}], got {:?} {:?}",
            x.datum_type(),
            x.shape()
        );
        let weights = self.depthwise.weights();
        let (ho, wo) = (weights.output_size(h), weights.output_size(w));
        let view = x.try_as_plain_ram()?;
        let xs = view.as_slice::<f32>()?;
        let input_row =
            |image: usize, y: usize| &xs[(image * h + y) * w * cin..(image * h + y + 1) * w * cin];
        let work = n * (h * w * cin * c + ho * wo * c * 9);
        // Output rows are independent; each chunk expands the rows it reads.
        let output = filled_output(&[n, ho, wo, c], wo * c, work, |first, rows| {
            let mut expanded = ExpandedRows::new(w * c);
            for (r, out) in rows.chunks_mut(wo * c).enumerate() {
                let (image, y) = ((first + r) / ho, (first + r) % ho);
                let needed = weights.input_rows(y, h).map(|iy| iy.map(|iy| (image, iy)));
                let keep: Vec<(usize, usize)> = needed.iter().flatten().copied().collect();
                for &tag in &keep {
                    expanded.ensure(tag, &keep, |dst| {
                        self.expand.compute(input_row(tag.0, tag.1), dst)
                    });
                }
                self.depthwise
                    .run_row(needed.map(|tag| tag.map(|t| expanded.row(t))), out);
            }
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for ExpandDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let expanded = self.expand.output_facts(inputs)?.remove(0);
        self.depthwise.output_facts(&[&expanded])
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let expanded = self.expand.output_facts(inputs)?.remove(0);
        let (_, a) = self.expand.cost(inputs)?.remove(0);
        let (_, b) = self.depthwise.cost(&[&expanded])?.remove(0);
        Ok(tvec!((Cost::FMA(f32::datum_type()), a + b)))
    }

    as_op!();
}

/// Fuses `node` (a [`DepthwiseConv`]) with the [`PointwiseConv`] before it
/// when that expansion's output goes only to it, through the axis moves
/// that `channel_last_patch` put between them, and is at least
/// [`MIN_EXPANDED_BYTES`].
pub(super) fn rule(
    model: &TypedModel,
    node: &TypedNode,
    dw: &DepthwiseConv,
) -> TractResult<Option<TypedModelPatch>> {
    let outputs = model.output_outlets()?;
    let only_feeds_next = |n: &TypedNode| {
        n.outputs.len() == 1 && n.outputs[0].successors.len() == 1 && !outputs.contains(&n.id.into())
    };
    let producer = |n: &TypedNode| (n.inputs.len() == 1).then(|| model.node(n.inputs[0].node));
    rule_if_some!(to_nhwc = producer(node));
    rule_if!(to_nhwc.op_as::<AxisOp>() == Some(&AxisOp::Move(1, 3)) && only_feeds_next(to_nhwc));
    rule_if_some!(to_nchw = producer(to_nhwc));
    rule_if!(to_nchw.op_as::<AxisOp>() == Some(&AxisOp::Move(3, 1)) && only_feeds_next(to_nchw));
    rule_if_some!(expansion = producer(to_nchw));
    rule_if_some!(expand = expansion.op_as::<PointwiseConv>());
    rule_if!(only_feeds_next(expansion));
    let bytes = expansion.outputs[0].fact.shape.volume().to_usize().ok();
    rule_if!(bytes.is_some_and(|b| b.saturating_mul(4) >= MIN_EXPANDED_BYTES));

    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, expansion.inputs[0])?;
    let fused = ExpandDepthwise {
        expand: expand.clone(),
        depthwise: dw.clone(),
    };
    let out = patch.wire_node(format!("{}.fused", node.name), fused, &[input])?;
    patch.shunt_outside(model, node.id.into(), out[0])?;
    Ok(Some(patch))
}
