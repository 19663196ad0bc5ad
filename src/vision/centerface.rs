//! The CenterFace network on tract: one optimised plan per input shape, and
//! the decoding of its four output maps into faces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use tract_onnx::prelude::*;

use super::geometry::{BoundingBox, Face, Landmarks, Point};
use super::kernels::{self, Isa, Precision};

/// CenterFace's output maps are 1/4 of the input; padding the input to a
/// multiple of 32 keeps every stride-2 stage exact.
pub const INPUT_MULTIPLE: u32 = 32;
const STRIDE: f32 = 4.0;

type Plan = Arc<TypedRunnableModel>;

/// Whose operators run the network's convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// vigil's channel-last kernels where the CPU has them (AVX-512),
    /// tract's elsewhere (see [`super::kernels`]), the 1×1 convolutions in
    /// this precision.
    Vigil(Precision),
    /// tract's everywhere: the baseline for the detector bench and the
    /// reference the tests compare vigil's kernels with.
    Tract,
    /// vigil's operators with their portable arithmetic, on any CPU: slower
    /// than tract's, for the tests (so the operators are checked on CPUs
    /// without AVX-512 too).
    Portable,
}

impl Default for Kernels {
    fn default() -> Self {
        Kernels::Vigil(Precision::default())
    }
}

/// The parsed network plus a bounded cache of plans optimised for concrete
/// input shapes.
///
/// tract optimises far better with concrete shapes (it picks matmul kernels
/// and packs weights per shape), and optimising takes a few hundred
/// milliseconds, so plans are built on first use of a shape and kept. The
/// detector fits large images to `max_side` and small ones to their side
/// rounded up to 128 (`detector::input_side`), so the shapes in use are a
/// few per aspect ratio; the cache's capacity bounds memory if clients send
/// many odd sizes and aspect ratios.
pub struct CenterFaceNet {
    /// Typed once with symbolic height and width; the shape-specific
    /// rewriting and optimisation is repeated per shape.
    generic: TypedModel,
    height: Symbol,
    width: Symbol,
    options: RunOptions,
    kernels: Kernels,
    plans: PlanCache,
}

impl std::fmt::Debug for CenterFaceNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CenterFaceNet")
            .field("cached_plans", &self.plans.len())
            .finish_non_exhaustive()
    }
}

/// The four maps CenterFace returns, each `[1, C, H/4, W/4]`.
pub struct RawOutputs {
    pub heatmap: TValue,
    pub scale: TValue,
    pub offset: TValue,
    pub landmarks: TValue,
}

impl CenterFaceNet {
    /// Parses the ONNX bytes. `threads` > 1 runs matrix products on a private
    /// rayon pool of that size, shared by all concurrent inferences.
    pub fn from_onnx_bytes(
        bytes: &[u8],
        threads: usize,
        cache_capacity: usize,
        kernels: Kernels,
    ) -> TractResult<Self> {
        let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(bytes))?;
        // The file declares fixed output sizes for one input size; the real
        // ones follow from the input, as in the reference implementation
        // which re-declares them dynamic.
        for ix in 0..model.output_outlets()?.len() {
            model.set_output_fact(ix, InferenceFact::default())?;
        }
        let height = model.symbols.sym("H");
        let width = model.symbols.sym("W");
        let model = model.with_input_fact(
            0,
            f32::fact([
                TDim::Val(1),
                TDim::Val(3),
                height.clone().into(),
                width.clone().into(),
            ])
            .into(),
        )?;
        // Not decluttered yet: decluttering lowers the convolutions that
        // `build_plan` replaces with vigil's own operators.
        let generic = model.into_typed()?;
        ensure!(
            generic.outputs.len() == 4,
            "CenterFace has 4 outputs, this model has {}",
            generic.outputs.len()
        );
        let executor = (threads > 1).then(|| multithread::Executor::multithread(threads));
        Ok(Self {
            generic,
            height,
            width,
            options: RunOptions {
                executor,
                ..RunOptions::default()
            },
            kernels,
            plans: PlanCache::new(cache_capacity.max(1)),
        })
    }

    fn build_plan(&self, height: usize, width: usize) -> TractResult<Plan> {
        let started = Instant::now();
        let subs = HashMap::from([
            (self.height.clone(), TDim::Val(height as i64)),
            (self.width.clone(), TDim::Val(width as i64)),
        ]);
        let mut model = self.generic.set_symbols(&subs)?;
        // vigil's operators first: they replace the convolutions they
        // handle (all of CenterFace's on an AVX-512 CPU) before tract's own
        // rewriting sees them.
        let vigil_ops = match (self.kernels, Isa::detect()) {
            (Kernels::Vigil(_), Isa::Portable) | (Kernels::Tract, _) => 0,
            (Kernels::Vigil(precision), isa) => kernels::swap_in(&mut model, isa, precision)?,
            (Kernels::Portable, _) => kernels::swap_in(&mut model, Isa::Portable, Precision::F32)?,
        };
        // Channel-last for the convolutions left to tract: its depthwise
        // kernel vectorises over channels only in NHWC. Measured at 640×480,
        // one thread, before vigil had its own: 332 → 260 ms (depthwise
        // 108 → 43 ms). Needs concrete shapes, hence done here.
        let nhwc = tract_onnx::tract_core::transform::get_transform("conv_nhwc")?
            .context("tract has no conv_nhwc transform")?;
        model.transform(&*nhwc)?;
        let plan = model
            .into_decluttered()?
            .into_optimized()?
            .into_runnable_with_options(&self.options)?;
        tracing::debug!(
            height,
            width,
            vigil_ops,
            ms = started.elapsed().as_millis() as u64,
            "optimised CenterFace plan"
        );
        Ok(plan)
    }

    /// Builds (or finds) the plan for a `height`×`width` input ahead of the
    /// first request of that shape.
    pub fn warm_up(&self, height: usize, width: usize) -> TractResult<()> {
        self.plan(height, width).map(drop)
    }

    fn plan(&self, height: usize, width: usize) -> TractResult<Plan> {
        self.plans
            .get_or_build((height, width), || self.build_plan(height, width))
    }

    /// Runs the network on a `[1, 3, H, W]` tensor.
    pub fn run(&self, input: Tensor) -> TractResult<RawOutputs> {
        let shape = input.shape();
        ensure!(
            shape.len() == 4 && shape[0] == 1 && shape[1] == 3,
            "CenterFace input must be [1, 3, H, W], got {shape:?}"
        );
        let plan = self.plan(shape[2], shape[3])?;
        let mut outputs = plan.run(tvec![input.into_tvalue()])?;
        ensure!(outputs.len() == 4, "expected 4 outputs, got {}", outputs.len());
        let landmarks = outputs.pop().unwrap();
        let offset = outputs.pop().unwrap();
        let scale = outputs.pop().unwrap();
        let heatmap = outputs.pop().unwrap();
        Ok(RawOutputs {
            heatmap,
            scale,
            offset,
            landmarks,
        })
    }

    pub fn cached_plans(&self) -> usize {
        self.plans.len()
    }

    /// Runs the network once and times every node of the optimised plan,
    /// for the detector bench's `--profile`: where the time goes is what
    /// decided which convolutions vigil runs itself.
    pub fn profile(&self, input: Tensor) -> TractResult<Vec<NodeTime>> {
        let shape = input.shape();
        ensure!(
            shape.len() == 4 && shape[0] == 1 && shape[1] == 3,
            "CenterFace input must be [1, 3, H, W], got {shape:?}"
        );
        let plan = self.plan(shape[2], shape[3])?;
        let mut state = TypedSimpleState::new(&plan)?;
        let mut times = Vec::with_capacity(plan.model().nodes.len());
        state.run_plan_with_eval(tvec![input.into_tvalue()], |ctx, op_state, node, inputs| {
            let started = Instant::now();
            let outputs = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            times.push(NodeTime {
                name: node.name.clone(),
                op: node.op().name().to_string(),
                detail: format!(
                    "{} -> {:?}",
                    node.op().info().unwrap_or_default().join("; "),
                    outputs
                        .as_ref()
                        .ok()
                        .map(|o| o.iter().map(|v| v.shape().to_vec()).collect::<Vec<_>>())
                ),
                elapsed: started.elapsed(),
            });
            outputs
        })?;
        Ok(times)
    }
}

/// One node's share of an inference (see [`CenterFaceNet::profile`]).
#[derive(Debug, Clone)]
pub struct NodeTime {
    pub name: String,
    pub op: String,
    /// tract's description of the node (kernel, geometry) and output shapes.
    pub detail: String,
    pub elapsed: std::time::Duration,
}

/// Turns the output maps into faces in network-input pixels, exactly as the
/// reference `CenterFace.decode` does (before its NMS): every heatmap cell
/// above `threshold` is a face centred at the cell plus its offset, sized
/// `exp(scale) * 4`, with landmarks relative to the box's top-left corner in
/// units of the box size. `input_height`/`input_width` bound the boxes.
pub fn decode(
    out: &RawOutputs,
    input_height: usize,
    input_width: usize,
    threshold: f32,
) -> TractResult<Vec<Face>> {
    let heat = out.heatmap.to_plain_array_view::<f32>()?;
    let scale = out.scale.to_plain_array_view::<f32>()?;
    let offset = out.offset.to_plain_array_view::<f32>()?;
    let lms = out.landmarks.to_plain_array_view::<f32>()?;
    let hs = heat.shape();
    ensure!(
        hs.len() == 4 && hs[0] == 1 && hs[1] == 1,
        "heatmap must be [1, 1, h, w], got {hs:?}"
    );
    let (h, w) = (hs[2], hs[3]);
    ensure!(
        scale.shape() == [1, 2, h, w] && offset.shape() == [1, 2, h, w] && lms.shape() == [1, 10, h, w],
        "output maps disagree: scale {:?} offset {:?} landmarks {:?} for heatmap {hs:?}",
        scale.shape(),
        offset.shape(),
        lms.shape()
    );
    let (max_x, max_y) = (input_width as f32, input_height as f32);
    let mut faces = Vec::new();
    for (r, c) in (0..h).flat_map(|r| (0..w).map(move |c| (r, c))) {
        let score = heat[[0, 0, r, c]];
        // Written as "keep if greater" (not "skip if <=") so a NaN score
        // is skipped, as numpy's `heatmap > threshold` does.
        if score.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let s0 = scale[[0, 0, r, c]].exp() * STRIDE;
        let s1 = scale[[0, 1, r, c]].exp() * STRIDE;
        let o0 = offset[[0, 0, r, c]];
        let o1 = offset[[0, 1, r, c]];
        let x1 = (((c as f32 + o1 + 0.5) * STRIDE) - s1 / 2.0).max(0.0).min(max_x);
        let y1 = (((r as f32 + o0 + 0.5) * STRIDE) - s0 / 2.0).max(0.0).min(max_y);
        let x2 = (x1 + s1).min(max_x);
        let y2 = (y1 + s0).min(max_y);
        let points: [Point; 5] = std::array::from_fn(|j| Point {
            x: lms[[0, 2 * j + 1, r, c]] * s1 + x1,
            y: lms[[0, 2 * j, r, c]] * s0 + y1,
        });
        faces.push(Face {
            score,
            bbox: BoundingBox::from_corners(x1, y1, x2, y2),
            landmarks: Landmarks::from_array(points),
        });
    }
    Ok(faces)
}

/// Least-recently-used map of shape → plan. Each entry is a `OnceLock` so
/// concurrent first requests for one shape build it once while requests for
/// other shapes proceed.
struct PlanCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

type PlanCell = Arc<OnceLock<Result<Plan, String>>>;

struct CacheInner {
    tick: u64,
    entries: HashMap<(usize, usize), (u64, PlanCell)>,
}

impl PlanCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(CacheInner {
                tick: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every mutation is a single insert/remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or_build(
        &self,
        key: (usize, usize),
        build: impl FnOnce() -> TractResult<Plan>,
    ) -> TractResult<Plan> {
        let cell = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some((used, cell)) = inner.entries.get_mut(&key) {
                *used = tick;
                cell.clone()
            } else {
                if inner.entries.len() >= self.capacity {
                    if let Some(oldest) = inner
                        .entries
                        .iter()
                        .min_by_key(|(_, (used, _))| *used)
                        .map(|(k, _)| *k)
                    {
                        inner.entries.remove(&oldest);
                    }
                }
                let cell = PlanCell::default();
                inner.entries.insert(key, (tick, cell.clone()));
                cell
            }
        };
        match cell.get_or_init(|| build().map_err(|e| format!("{e:?}"))) {
            Ok(plan) => Ok(plan.clone()),
            Err(e) => bail!("building the plan for {}×{} failed: {e}", key.1, key.0),
        }
    }
}
