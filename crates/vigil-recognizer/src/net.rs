//! The forward pass: dlib's ResNet as a fixed sequence of phases over
//! preallocated buffers.
//!
//! Activations are channel-last with a one-pixel zero border (so 3×3
//! convolutions need no edge cases). Every tensor of the network gets a
//! buffer in one arena, planned once at load: a buffer is reused only by a
//! later tensor of the same shape, so borders written as zeros at
//! allocation stay zero for good.
//!
//! One forward pass runs a group of chips (each with its own arena) and can
//! be split over threads: each phase's output tiles or rows are shared out
//! and the threads meet at a barrier between phases.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::conv::{self, ConvIo, Layout, PackedConv};
use crate::model::{DlibModel, DESCRIPTOR_LEN, INPUT_SIZE};
use crate::Isa;

/// A buffer of the arena: where it starts and the tensor shape it holds.
#[derive(Debug, Clone, Copy)]
struct Buf {
    offset: usize,
    layout: Layout,
}

struct Block {
    conv_a: PackedConv,
    conv_b: PackedConv,
    relu_a: bool,
    relu_out: bool,
    x: Buf,
    t: Buf,
    y: Buf,
    /// Down blocks: the 2×2 average pool of `x`, added to the convolutions'
    /// output where both exist (dlib's `add_prev` sums zero-extended tensors
    /// and its output takes the larger size in each dimension).
    pool: Option<Buf>,
}

/// A loaded network and the plan of its arena.
pub(crate) struct Network {
    input_mean: [f32; 3],
    input: Buf,
    stem: PackedConv,
    stem_relu: bool,
    stem_out: Buf,
    pooled: Buf,
    blocks: Vec<Block>,
    /// `[input][output]`
    fc: Vec<f32>,
    arena_len: usize,
}

/// Allocates buffers of the arena with liveness, so a freed buffer is taken
/// again by the next tensor of its exact shape.
#[derive(Default)]
struct Planner {
    bufs: Vec<(Buf, bool)>,
    len: usize,
}

impl Planner {
    fn alloc(&mut self, layout: Layout) -> Buf {
        if let Some((buf, live)) = self
            .bufs
            .iter_mut()
            .find(|(b, live)| !*live && b.layout == layout)
        {
            *live = true;
            return *buf;
        }
        // 16-float alignment keeps every buffer on its own cache lines.
        let offset = self.len.div_ceil(16) * 16;
        self.len = offset + layout.len();
        let buf = Buf { offset, layout };
        self.bufs.push((buf, true));
        buf
    }

    fn free(&mut self, buf: Buf) {
        if let Some((_, live)) = self.bufs.iter_mut().find(|(b, _)| b.offset == buf.offset) {
            *live = false;
        }
    }
}

impl Network {
    pub fn new(model: DlibModel) -> Self {
        let DlibModel {
            input_mean,
            stem,
            stem_relu,
            blocks,
            fc,
        } = model;
        let mut plan = Planner::default();
        let input = plan.alloc(Layout {
            h: INPUT_SIZE,
            w: INPUT_SIZE,
            c: 3,
        });
        let side = stem.output_size(INPUT_SIZE);
        let stem_out = plan.alloc(Layout {
            h: side,
            w: side,
            c: stem.cout,
        });
        // 3×3 max pool, stride 2, no padding.
        let side = (side - 3) / 2 + 1;
        let pooled = plan.alloc(Layout {
            h: side,
            w: side,
            c: stem.cout,
        });
        plan.free(input);
        plan.free(stem_out);

        let mut x = pooled;
        let mut packed_blocks = Vec::with_capacity(blocks.len());
        for b in blocks {
            let (conv_a, conv_b) = (b.conv_a, b.conv_b);
            let xl = x.layout;
            assert_eq!(xl.c, b.channels_in);
            let (ch, cw) = (conv_a.output_size(xl.h), conv_a.output_size(xl.w));
            let t = plan.alloc(Layout {
                h: ch,
                w: cw,
                c: conv_a.cout,
            });
            let (pool, y_layout) = if b.shape.down {
                // 2×2 average pool, stride 2, no padding: never smaller than
                // the strided 3×3 convolution's output.
                let (ph, pw) = ((xl.h - 2) / 2 + 1, (xl.w - 2) / 2 + 1);
                assert!(ph >= ch && pw >= cw && xl.c <= conv_b.cout);
                let pool = plan.alloc(Layout {
                    h: ph,
                    w: pw,
                    c: xl.c,
                });
                (
                    Some(pool),
                    Layout {
                        h: ph,
                        w: pw,
                        c: conv_b.cout,
                    },
                )
            } else {
                assert_eq!(
                    xl,
                    Layout {
                        h: ch,
                        w: cw,
                        c: conv_b.cout
                    }
                );
                (None, xl)
            };
            let y = plan.alloc(y_layout);
            plan.free(x);
            plan.free(t);
            if let Some(p) = pool {
                plan.free(p);
            }
            packed_blocks.push(Block {
                conv_a,
                conv_b,
                relu_a: b.relu_a,
                relu_out: b.relu_out,
                x,
                t,
                y,
                pool,
            });
            x = y;
        }
        assert!(x.layout.c <= MAX_FEATURES && x.layout.c * DESCRIPTOR_LEN == fc.len());
        Self {
            input_mean,
            input,
            stem,
            stem_relu,
            stem_out,
            pooled,
            blocks: packed_blocks,
            fc,
            arena_len: plan.len,
        }
    }

    /// A zeroed arena for this network (zero borders included).
    pub fn arena(&self) -> Vec<f32> {
        vec![0.0; self.arena_len]
    }

    /// Bytes of one arena (the working memory of one inference at a time).
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let conv = |c: &PackedConv| c.weight_count() * 4;
        conv(&self.stem)
            + self
                .blocks
                .iter()
                .map(|b| conv(&b.conv_a) + conv(&b.conv_b))
                .sum::<usize>()
            + self.fc.len() * 4
    }

    /// Multiply-accumulates of one inference (convolutions and fc).
    pub fn macs(&self) -> u64 {
        let conv = |c: &PackedConv, out: Layout| (out.h * out.w * c.cout * c.cin * c.size * c.size) as u64;
        let mut n = conv(&self.stem, self.stem_out.layout);
        for b in &self.blocks {
            n += conv(&b.conv_a, b.t.layout);
            n += conv(
                &b.conv_b,
                Layout {
                    c: b.conv_b.cout,
                    ..b.t.layout
                },
            );
        }
        n + self.fc.len() as u64
    }

    /// Runs a group of chips (`INPUT_SIZE²` RGB pixels each, one arena
    /// each) through the network together on `threads` threads (the caller
    /// included), writing one descriptor per chip into `outs`.
    pub fn forward(
        &self,
        isa: Isa,
        arenas: &mut [Vec<f32>],
        chips: &[&[u8]],
        threads: usize,
        outs: &mut [[f32; DESCRIPTOR_LEN]],
    ) {
        assert!(arenas.len() == chips.len() && outs.len() == chips.len());
        assert!(
            arenas.iter().all(|a| a.len() == self.arena_len),
            "arena of another network"
        );
        assert!(chips.iter().all(|c| c.len() == INPUT_SIZE * INPUT_SIZE * 3));
        if chips.is_empty() {
            return;
        }
        let threads = threads.max(1);
        let shared: Vec<Shared> = arenas
            .iter_mut()
            .map(|a| Shared {
                arena: a.as_mut_ptr(),
                len: a.len(),
            })
            .collect();
        let group = Group {
            arenas: &shared,
            chips,
        };
        if threads == 1 {
            self.run_phases(isa, &group, 0, 1, &NoBarrier);
        } else {
            let barrier = SpinBarrier::new(threads);
            std::thread::scope(|s| {
                for part in 1..threads {
                    let (group, barrier) = (&group, &barrier);
                    s.spawn(move || self.run_phases(isa, group, part, threads, barrier));
                }
                self.run_phases(isa, &group, 0, threads, &barrier);
            });
        }
        for (arena, out) in arenas.iter().zip(outs) {
            self.head(arena, out);
        }
    }

    /// Thread `part` of `parts`: its share of every phase, in order.
    fn run_phases(&self, isa: Isa, g: &Group, part: usize, parts: usize, barrier: &dyn Wait) {
        let share = |n: usize| n * part / parts..n * (part + 1) / parts;
        let images = g.arenas.len();

        // Input: (value − mean) / 256 per channel, as dlib's input layer.
        let il = self.input.layout;
        for row in share(images * il.h) {
            let (k, y) = (row / il.h, row % il.h);
            // SAFETY: rows of the input buffers are split between threads.
            let dst = unsafe { g.arenas[k].slice_mut(self.input.offset + il.at(y as isize, 0), il.w * 3) };
            let src = &g.chips[k][y * il.w * 3..(y + 1) * il.w * 3];
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                for c in 0..3 {
                    d[c] = (f32::from(s[c]) - self.input_mean[c]) / 256.0;
                }
            }
        }
        barrier.wait();

        let ol = self.stem_out.layout;
        // SAFETY: read-only after the barrier above.
        let inputs = unsafe { g.views(self.input) };
        let io = ConvIo {
            inputs: &inputs,
            in_layout: il,
            out_layout: ol,
            out_h: ol.h,
            out_w: ol.w,
            residuals: None,
            relu: self.stem_relu,
        };
        // SAFETY: the output tiles of `share` are this thread's alone.
        unsafe {
            let outs = g.ptrs(self.stem_out);
            conv::run(
                isa,
                &self.stem,
                &io,
                &outs,
                share(self.stem.blocks() * conv::tiles(&io)),
            );
        }
        barrier.wait();

        // 3×3 max pool, stride 2.
        let pl = self.pooled.layout;
        // SAFETY: written by the previous phase, read-only now.
        let stem_out = unsafe { g.views(self.stem_out) };
        for row in share(images * pl.h) {
            let (k, y) = (row / pl.h, row % pl.h);
            let src = stem_out[k];
            // SAFETY: rows of the pooled buffers are split between threads.
            let dst =
                unsafe { g.arenas[k].slice_mut(self.pooled.offset + pl.at(y as isize, 0), pl.w * pl.c) };
            for (x, d) in dst.chunks_exact_mut(pl.c).enumerate() {
                d.fill(f32::NEG_INFINITY);
                for dy in 0..3 {
                    for dx in 0..3 {
                        let at = ol.at((2 * y + dy) as isize, (2 * x + dx) as isize);
                        for (v, &s) in d.iter_mut().zip(&src[at..at + pl.c]) {
                            *v = v.max(s);
                        }
                    }
                }
            }
        }
        barrier.wait();

        for b in &self.blocks {
            self.block(isa, b, g, &share, barrier);
        }
    }

    fn block(
        &self,
        isa: Isa,
        b: &Block,
        g: &Group,
        share: &dyn Fn(usize) -> std::ops::Range<usize>,
        barrier: &dyn Wait,
    ) {
        let (xl, tl, yl) = (b.x.layout, b.t.layout, b.y.layout);
        let images = g.arenas.len();
        // SAFETY: `x` was completed before the last barrier; read-only here.
        let xs = unsafe { g.views(b.x) };
        let io = ConvIo {
            inputs: &xs,
            in_layout: xl,
            out_layout: tl,
            out_h: tl.h,
            out_w: tl.w,
            residuals: None,
            relu: b.relu_a,
        };
        // SAFETY: this thread's tiles of `t` only.
        unsafe {
            let outs = g.ptrs(b.t);
            conv::run(
                isa,
                &b.conv_a,
                &io,
                &outs,
                share(b.conv_a.blocks() * conv::tiles(&io)),
            );
        }
        if let Some(pool) = b.pool {
            let pl = pool.layout;
            for row in share(images * pl.h) {
                let (k, y) = (row / pl.h, row % pl.h);
                let x = xs[k];
                // SAFETY: this thread's rows of the pool buffers only.
                let dst = unsafe { g.arenas[k].slice_mut(pool.offset + pl.at(y as isize, 0), pl.w * pl.c) };
                for (px, d) in dst.chunks_exact_mut(pl.c).enumerate() {
                    let at = |dy: usize, dx: usize| xl.at((2 * y + dy) as isize, (2 * px + dx) as isize);
                    let (a, bb, c, e) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                    for (i, v) in d.iter_mut().enumerate() {
                        // dlib's mean: a row-major sum, then the division.
                        *v = (x[a + i] + x[bb + i] + x[c + i] + x[e + i]) / 4.0;
                    }
                }
            }
        }
        barrier.wait();

        // SAFETY: written before the barrier above; read-only now.
        let ts = unsafe { g.views(b.t) };
        let pooled = b.pool.map(|p| unsafe { g.views(p) });
        let residuals = match (&pooled, b.pool) {
            (Some(p), Some(pool)) => (&p[..], pool.layout),
            _ => (&xs[..], xl),
        };
        let io = ConvIo {
            inputs: &ts,
            in_layout: tl,
            out_layout: yl,
            out_h: tl.h,
            out_w: tl.w,
            residuals: Some(residuals),
            relu: b.relu_out,
        };
        // SAFETY: this thread's tiles of `y`'s top-left `tl.h × tl.w` region.
        unsafe {
            let outs = g.ptrs(b.y);
            conv::run(
                isa,
                &b.conv_b,
                &io,
                &outs,
                share(b.conv_b.blocks() * conv::tiles(&io)),
            );
        }
        if let (Some(p), Some(pool)) = (&pooled, b.pool) {
            // Where only the pooled input exists (the down block's output is
            // larger than its convolutions'): the pooled value, or zero in
            // channels the input does not have, through the ReLU.
            let pl = pool.layout;
            for row in share(images * yl.h) {
                let (k, y) = (row / yl.h, row % yl.h);
                // SAFETY: this thread's rows of `y`, outside the region the
                // convolution above writes.
                let dst = unsafe { g.arenas[k].slice_mut(b.y.offset + yl.at(y as isize, 0), yl.w * yl.c) };
                for (px, d) in dst.chunks_exact_mut(yl.c).enumerate() {
                    if y < tl.h && px < tl.w {
                        continue;
                    }
                    let src = &p[k][pl.at(y as isize, px as isize)..][..pl.c];
                    for (i, v) in d.iter_mut().enumerate() {
                        let s = if i < pl.c { src[i] } else { 0.0 };
                        *v = if b.relu_out { s.max(0.0) } else { s };
                    }
                }
            }
        }
        barrier.wait();
    }

    /// Global average pool and the fc layer (one thread: 33k MACs).
    fn head(&self, arena: &[f32], out: &mut [f32; DESCRIPTOR_LEN]) {
        let last = self.blocks.last().map_or(self.pooled, |b| b.y);
        let l = last.layout;
        let x = &arena[last.offset..last.offset + l.len()];
        let mut features = [0f32; MAX_FEATURES];
        let features = &mut features[..l.c];
        for y in 0..l.h {
            for px in 0..l.w {
                let at = l.at(y as isize, px as isize);
                for (f, &v) in features.iter_mut().zip(&x[at..at + l.c]) {
                    *f += v;
                }
            }
        }
        let n = (l.h * l.w) as f32;
        out.fill(0.0);
        for (i, f) in features.iter().enumerate() {
            let f = f / n;
            for (o, &w) in out
                .iter_mut()
                .zip(&self.fc[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN])
            {
                *o += f * w;
            }
        }
    }
}

/// Channels entering the fc layer (256 in dlib's network).
const MAX_FEATURES: usize = 256;

/// The chips of one forward pass and their arenas.
struct Group<'a> {
    arenas: &'a [Shared],
    chips: &'a [&'a [u8]],
}

impl Group<'_> {
    /// Buffer `buf` of every image, read-only.
    ///
    /// # Safety
    /// No thread may write those buffers while the views live.
    unsafe fn views(&self, buf: Buf) -> Vec<&[f32]> {
        self.arenas
            .iter()
            .map(|a| a.slice(buf.offset, buf.layout.len()))
            .collect()
    }

    /// Buffer `buf` of every image, for a kernel to write.
    ///
    /// # Safety
    /// As for `Shared::ptr`, for whatever is written through them.
    unsafe fn ptrs(&self, buf: Buf) -> Vec<*mut f32> {
        self.arenas.iter().map(|a| a.ptr(buf.offset)).collect()
    }
}

/// The arena shared by the threads of one inference. Phases write disjoint
/// ranges (each thread its rows) and read only what earlier phases wrote;
/// the barrier between phases orders the two.
struct Shared {
    arena: *mut f32,
    len: usize,
}

// SAFETY: access discipline as described above: within a phase no element
// is written by one thread and touched by another, and the barriers give
// the happens-before between a phase's writes and the next phase's reads.
unsafe impl Sync for Shared {}

impl Shared {
    /// # Safety
    /// No thread may write `offset..offset + len` while the slice lives.
    unsafe fn slice(&self, offset: usize, len: usize) -> &[f32] {
        assert!(offset + len <= self.len);
        std::slice::from_raw_parts(self.arena.add(offset), len)
    }

    /// # Safety
    /// No other thread may read or write `offset..offset + len` while the
    /// slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [f32] {
        assert!(offset + len <= self.len);
        std::slice::from_raw_parts_mut(self.arena.add(offset), len)
    }

    /// # Safety
    /// As for `slice_mut`, for whatever the pointer is used to write.
    unsafe fn ptr(&self, offset: usize) -> *mut f32 {
        assert!(offset <= self.len);
        self.arena.add(offset)
    }
}

trait Wait: Sync {
    fn wait(&self);
}

struct NoBarrier;

impl Wait for NoBarrier {
    fn wait(&self) {}
}

/// A barrier between phases (32 per inference, most a few hundred
/// microseconds long): a thread that arrives early spins for a short while,
/// since the other usually arrives within microseconds and a sleep and
/// wake-up would cost as much again, then sleeps, so that on a loaded
/// machine a descheduled partner does not cost a core of spinning.
struct SpinBarrier {
    threads: usize,
    /// Arrivals in the current generation.
    arrived: Mutex<usize>,
    generation: AtomicUsize,
    wake: Condvar,
}

/// How long an early thread spins before sleeping.
const SPIN: Duration = Duration::from_micros(30);

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: Mutex::new(0),
            generation: AtomicUsize::new(0),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.arrived.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wait for SpinBarrier {
    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        {
            let mut arrived = self.lock();
            *arrived += 1;
            if *arrived == self.threads {
                *arrived = 0;
                // Under the lock, so a thread about to sleep sees either the
                // old generation (and is then woken) or the new one.
                self.generation.store(generation + 1, Ordering::Release);
                drop(arrived);
                self.wake.notify_all();
                return;
            }
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                let mut arrived = self.lock();
                while self.generation.load(Ordering::Acquire) == generation {
                    arrived = self.wake.wait(arrived).unwrap_or_else(|p| p.into_inner());
                }
                return;
            }
        }
    }
}
