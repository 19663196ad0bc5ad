//! Times vigil's recognizer on dlib's chips of the shared photos (the
//! reference of `make recognizer-reference`) and prints one JSON line per
//! measurement, for `scripts/bench_recognizer.py` (`make bench-recognizer`).
//!
//! ```text
//! cargo run --release -p vigil-recognizer --example bench -- [--reps N] [--threads 1,2] [--portable]
//! ```
//!
//! Each repetition times, back to back, every configuration on the whole
//! set of chips; the figures are medians over repetitions. Modes:
//! - `network`: one `embed_chip` call per chip (the network only), the
//!   threads splitting each chip's rows;
//! - `batch`: one `embed_chips` call for all chips, whole chips per thread;
//! - `predictor`: from the decoded photo and CenterFace's detection, the
//!   checks, the rectangle and dlib's shape predictor (`face_rect` and
//!   `ShapePredictor::predict`), one face at a time, one thread;
//! - `chip`: the chip from the predictor's points (`chip_from_shape`);
//! - `align`: both (`Recognizer::align`);
//! - `align+embed`: the whole path (`Recognizer::embed`).
//!
//! `--memory` instead measures only what loading the models and one
//! inference add to a fresh process (resident and peak), and exits.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use vigil_recognizer::{
    chip_from_shape, face_rect, Chip, DetectedFace, FaceBox, Isa, Landmarks, Point, Recognizer,
    RecognizerConfig, RgbImage, Shape, ShapePredictor,
};

/// Process CPU time (all threads) and peak resident set, from getrusage.
fn rusage() -> (Duration, u64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as u64 * 1024)
}

/// Current resident set size in bytes (VmRSS).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Photo {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    face: DetectedFace,
}

/// Peak resident set size in bytes (VmHWM).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The models' memory, in a process that has done nothing else: one chip
/// read, then the predictor loaded, the network loaded, one inference.
fn memory() {
    let face = common::faces().into_iter().next().expect("a reference face");
    let chip = Chip::from_rgb(common::read_ppm(&face.chip).data).unwrap();
    let (rss0, peak0) = (rss(), peak_rss());
    let predictor = ShapePredictor::load(common::predictor_path()).expect("predictor loads");
    let rss_predictor = rss();
    let r = Recognizer::from_reader(
        std::io::BufReader::new(std::fs::File::open(common::model_path()).expect("model file")),
        predictor,
        RecognizerConfig::default(),
    )
    .expect("model loads");
    let (rss_loaded, peak_loaded) = (rss(), peak_rss());
    r.embed_chip(&chip);
    let (rss1, peak1) = (rss(), peak_rss());
    println!(
        "{{\"kind\":\"memory\",\"rss_before_load\":{rss0},\"rss_after_predictor\":{rss_predictor},\"rss_after_load\":{rss_loaded},\"rss_after_first_inference\":{rss1},\"peak_rss_before_load\":{peak0},\"peak_rss_after_load\":{peak_loaded},\"peak_rss_after_first_inference\":{peak1}}}"
    );
}

fn main() {
    let mut reps = 5usize;
    let mut threads = vec![1usize, 2];
    let mut isa = Isa::detect();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--memory" => return memory(),
            // The reference kernels, for comparison (slow: use --reps 1).
            "--portable" => isa = Isa::Portable,
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--threads" => {
                threads = args
                    .next()
                    .expect("--threads 1,2")
                    .split(',')
                    .map(|t| t.parse().expect("thread count"))
                    .collect()
            }
            other => panic!("unknown argument {other}; see the doc comment of examples/bench.rs"),
        }
    }

    let faces = common::faces();
    let chips: Vec<Chip> = faces
        .iter()
        .map(|f| Chip::from_rgb(common::read_ppm(&f.chip).data).unwrap())
        .collect();
    let photos: Vec<Photo> = faces
        .iter()
        .filter_map(|f| {
            let (lm, b) = (f.centerface?, f.centerface_box?);
            let img = common::read_ppm(&f.image);
            let p = |i: usize| Point {
                x: lm[2 * i],
                y: lm[2 * i + 1],
            };
            let face = DetectedFace {
                bbox: FaceBox {
                    x: b[0],
                    y: b[1],
                    width: b[2] - b[0],
                    height: b[3] - b[1],
                },
                landmarks: Landmarks::from_array([p(0), p(1), p(2), p(3), p(4)]),
            };
            let image = RgbImage::new(&img.data, img.width, img.height).unwrap();
            // Only faces that align: the per-face figures are of real work.
            face_rect(&image, &face, &Default::default()).ok()?;
            Some(Photo {
                width: img.width,
                height: img.height,
                pixels: img.data,
                face,
            })
        })
        .collect();

    let load = |t: usize| {
        let config = RecognizerConfig {
            threads: t,
            isa,
            ..RecognizerConfig::default()
        };
        let start = Instant::now();
        let r =
            Recognizer::load(common::model_path(), common::predictor_path(), config).expect("models load");
        (r, start.elapsed().as_secs_f64() * 1e3)
    };
    let (first, load_ms) = load(threads[0]);
    let memory = first.memory_bytes();
    println!(
        "{{\"kind\":\"model\",\"isa\":\"{:?}\",\"macs_per_chip\":{},\"weight_bytes\":{},\"arena_bytes\":{},\"predictor_bytes\":{},\"load_ms\":{:.1}}}",
        first.config().isa,
        first.macs_per_chip(),
        memory.weights,
        memory.arena,
        memory.predictor,
        load_ms,
    );
    let mut recognizers = vec![(threads[0], first)];
    for &t in &threads[1..] {
        recognizers.push((t, load(t).0));
    }

    // mode, threads → per-repetition (wall ms/face, cpu ms/face)
    let mut results: Vec<(&str, usize, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut record = |mode: &'static str, t: usize, wall: f64, cpu: f64| match results
        .iter_mut()
        .find(|r| r.0 == mode && r.1 == t)
    {
        Some(r) => {
            r.2.push(wall);
            r.3.push(cpu);
        }
        None => results.push((mode, t, vec![wall], vec![cpu])),
    };
    let mut sink = 0f32;
    for rep in 0..=reps {
        for (t, r) in &recognizers {
            let timed = |f: &mut dyn FnMut() -> usize| {
                let (c0, _) = rusage();
                let w0 = Instant::now();
                let n = f();
                let wall = w0.elapsed().as_secs_f64() * 1e3 / n as f64;
                let (c1, _) = rusage();
                (wall, (c1 - c0).as_secs_f64() * 1e3 / n as f64)
            };
            let (w, c) = timed(&mut || {
                for chip in &chips {
                    sink += r.embed_chip(chip).as_array()[0];
                }
                chips.len()
            });
            // Repetition 0 warms caches and the arena pool.
            if rep > 0 {
                record("network", *t, w, c);
            }
            let (w, c) = timed(&mut || {
                sink += r.embed_chips(&chips).iter().map(|e| e.as_array()[0]).sum::<f32>();
                chips.len()
            });
            if rep > 0 {
                record("batch", *t, w, c);
            }
            // Alignment runs on the caller's thread whatever the thread
            // count: timed once, with the one-thread recognizer.
            if *t == 1 {
                let mut shapes: Vec<Shape> = Vec::with_capacity(photos.len());
                let (w, c) = timed(&mut || {
                    shapes.clear();
                    for p in &photos {
                        let image = RgbImage::new(&p.pixels, p.width, p.height).unwrap();
                        let config = &r.config().align;
                        let rect = face_rect(&image, &p.face, config).expect("checked when read");
                        shapes.push(r.predictor().predict(&image, &rect));
                    }
                    photos.len()
                });
                if rep > 0 {
                    record("predictor", 1, w, c);
                }
                let (w, c) = timed(&mut || {
                    for (p, shape) in photos.iter().zip(&shapes) {
                        let image = RgbImage::new(&p.pixels, p.width, p.height).unwrap();
                        sink += f32::from(chip_from_shape(&image, shape).as_rgb()[0]);
                    }
                    photos.len()
                });
                if rep > 0 {
                    record("chip", 1, w, c);
                }
                let (w, c) = timed(&mut || {
                    for p in &photos {
                        let image = RgbImage::new(&p.pixels, p.width, p.height).unwrap();
                        let chip = r.align(&image, &p.face).expect("checked when read");
                        sink += f32::from(chip.as_rgb()[0]);
                    }
                    photos.len()
                });
                if rep > 0 {
                    record("align", 1, w, c);
                }
            }
            let (w, c) = timed(&mut || {
                for p in &photos {
                    let image = RgbImage::new(&p.pixels, p.width, p.height).unwrap();
                    if let Some(e) = r.embed(&image, &p.face) {
                        sink += e.as_array()[0];
                    }
                }
                photos.len()
            });
            if rep > 0 {
                record("align+embed", *t, w, c);
            }
        }
    }
    for (mode, t, mut wall, mut cpu) in results {
        let runs: Vec<String> = wall.iter().map(|w| format!("{w:.3}")).collect();
        println!(
            "{{\"kind\":\"time\",\"impl\":\"vigil\",\"mode\":\"{mode}\",\"threads\":{t},\"faces\":{},\"ms_per_face\":{:.3},\"cpu_ms_per_face\":{:.3},\"runs\":[{}]}}",
            if matches!(mode, "network" | "batch") { chips.len() } else { photos.len() },
            median(&mut wall),
            median(&mut cpu),
            runs.join(",")
        );
    }
    // Printed so the work cannot be optimised away.
    println!("{{\"kind\":\"checksum\",\"value\":{sink}}}");
}
