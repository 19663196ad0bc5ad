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
//! The first output row of each chunk of work recomputes up to two expanded
//! rows the chunk before it also computes, so chunks are whole groups of up
//! to [`ROWS_PER_UNIT`] rows (however many threads split the work), and only
//! large tensors are fused ([`MIN_EXPANDED_BYTES`]); smaller ones fit in
//! cache anyway.

use std::mem::MaybeUninit;

use tract_onnx::tract_core::internal::*;

use super::{as_output, filled_output, DepthwiseConv, PointwiseConv};

/// Expanded tensors smaller than this stay two operators.
const MIN_EXPANDED_BYTES: usize = 4 << 20;

/// Output rows a chunk of work covers at least, where the row count allows
/// (a stride-1 chunk of 8 rows expands 10).
const ROWS_PER_UNIT: usize = 8;

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
        keep: &[Option<(usize, usize)>; 3],
        expand: impl FnOnce(&mut [MaybeUninit<f32>]),
    ) {
        if self.slot(tag).is_some() {
            return;
        }
        let free = self
            .tags
            .iter()
            .position(|t| t.is_none() || !keep.contains(t))
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
        // The chunks are split in units of whole groups of rows.
        let unit = (1..=ROWS_PER_UNIT).rev().find(|d| (n * ho) % d == 0).unwrap_or(1);
        let output = filled_output(&[n, ho, wo, c], unit * wo * c, work, |first_unit, rows| {
            let first = first_unit * unit;
            let mut expanded = ExpandedRows::new(w * c);
            for (r, out) in rows.chunks_mut(wo * c).enumerate() {
                let (image, y) = ((first + r) / ho, (first + r) % ho);
                let needed = weights.input_rows(y, h).map(|iy| iy.map(|iy| (image, iy)));
                for &tag in needed.iter().flatten() {
                    expanded.ensure(tag, &needed, |dst| {
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

#[cfg(test)]
mod tests {
    use tract_onnx::prelude::*;
    use vigil_kernels::depthwise::DepthwiseWeights;

    use super::super::{Activation, DepthwiseConv, Isa, PointwiseConv, Precision};
    use super::ExpandDepthwise;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.377 + seed).sin()).collect()
    }

    /// Runs `source → ops…` on `x` as tract would, with `threads` threads.
    fn run(ops: Vec<Box<dyn TypedOp>>, x: &Tensor, threads: usize) -> Tensor {
        let mut model = TypedModel::default();
        let mut wire = model.add_source("x", f32::fact(x.shape())).unwrap();
        for (i, op) in ops.into_iter().enumerate() {
            wire = model.wire_node(format!("op{i}"), op, &[wire]).unwrap()[0];
        }
        model.select_output_outlets(&[wire]).unwrap();
        let options = RunOptions {
            executor: (threads > 1).then(|| multithread::Executor::multithread(threads)),
            ..RunOptions::default()
        };
        let plan = model.into_runnable_with_options(&options).unwrap();
        let out = plan.run(tvec!(x.clone().into())).unwrap();
        out[0].clone().into_tensor()
    }

    /// The fused operator computes what the two operators compute, on
    /// several images, odd and tiny sizes, both strides, with the rows
    /// split between threads at any row.
    #[test]
    fn fused_equals_expansion_then_depthwise() {
        let isa = Isa::detect();
        let precisions = [Precision::F32, Precision::Int8];
        for (n, h, w) in [(2, 7, 5), (1, 1, 1), (3, 2, 3), (2, 9, 1), (1, 24, 17)] {
            for stride in [1, 2] {
                for precision in precisions {
                    let (cin, c) = (8, 80);
                    let expand = PointwiseConv::new(
                        &values(c * cin, 0.1),
                        &values(c, 0.2),
                        c,
                        cin,
                        Activation::Relu,
                        isa,
                        precision,
                        h * w,
                    );
                    let depthwise = DepthwiseConv::new(
                        DepthwiseWeights::new(&values(c * 9, 0.3), &values(c, 0.4), c, stride),
                        Activation::Relu,
                        isa,
                    );
                    let x = Tensor::from_shape(&[n, h, w, cin], &values(n * h * w * cin, 0.5)).unwrap();
                    let want = run(vec![Box::new(expand.clone()), Box::new(depthwise.clone())], &x, 1);
                    for threads in [1, 2, 3] {
                        let fused = ExpandDepthwise {
                            expand: expand.clone(),
                            depthwise: depthwise.clone(),
                        };
                        let got = run(vec![Box::new(fused)], &x, threads);
                        assert_eq!(got.shape(), want.shape());
                        let (g, r) = (
                            got.to_plain_array_view::<f32>().unwrap(),
                            want.to_plain_array_view::<f32>().unwrap(),
                        );
                        for (ix, (a, b)) in g.iter().zip(r.iter()).enumerate() {
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "{n}×{h}×{w} stride {stride} {precision:?} {threads} threads: [{ix}] {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
