//! vigil's side of `make bench-detector`: ms/image of the full detector
//! (resize, inference, decode, NMS) from decoded pixels, one JSON line per
//! (max side, threads). scripts/bench_detector.py runs it and compares with
//! onnxruntime.
//!
//! `cargo bench --bench detector -- --images DIR [--models-dir DIR]
//!  [--max-sides 320,640,1280] [--threads 1,2] [--reps N] [--tract-kernels]
//!  [--f32] [--profile]`
//!
//! `--tract-kernels` runs tract's operators only (vigil's own kernels off);
//! `--profile` prints where the time goes, per operator kind and for the
//! slowest nodes, instead of the per-image figures.

use std::path::PathBuf;
use std::time::Instant;

use vigil::vision::{decode_image, Detector, DetectorConfig, ImageLimits};

fn list(value: &str) -> Vec<usize> {
    value
        .split(',')
        .map(|s| s.trim().parse().expect("comma-separated numbers"))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut images_dir = None;
    let mut models_dir = PathBuf::from(std::env::var("VIGIL_MODELS_DIR").unwrap_or("models".into()));
    let mut sizes = vec![320, 640, 1280];
    let mut threads = vec![1, vigil::vision::default_threads()];
    let mut reps = 2usize;
    let mut profile = false;
    let mut kernels = vigil::vision::centerface::Kernels::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--images" => images_dir = args.next().map(PathBuf::from),
            "--models-dir" => models_dir = PathBuf::from(args.next().expect("--models-dir DIR")),
            "--max-sides" => sizes = list(&args.next().expect("--max-sides LIST")),
            "--threads" => threads = list(&args.next().expect("--threads LIST")),
            "--reps" => reps = args.next().expect("--reps N").parse()?,
            // Time per operator kind instead of per image.
            "--profile" => profile = true,
            // tract's own 1×1 convolutions instead of vigil's (the baseline).
            "--tract-kernels" => kernels = vigil::vision::centerface::Kernels::Tract,
            // vigil's 1×1 convolutions in f32 rather than 8-bit integers.
            "--f32" => {
                kernels = vigil::vision::centerface::Kernels::Vigil(vigil::vision::kernels::Precision::F32)
            }
            // tract's gates for splitting one operation across threads, to
            // find values that suit this model (see vision::centerface).
            "--panel-threshold" => tract_linalg::multithread::set_threading_panel_threshold(
                args.next().expect("--panel-threshold N").parse()?,
            ),
            "--element-threshold" => tract_linalg::multithread::set_threading_element_threshold(
                args.next().expect("--element-threshold N").parse()?,
            ),
            // cargo passes --bench to every bench target.
            _ => {}
        }
    }
    let images_dir = images_dir
        .or_else(|| std::env::var_os("VIGIL_TEST_FACES_DIR").map(PathBuf::from))
        .ok_or_else(|| anyhow::anyhow!("pass --images DIR or set VIGIL_TEST_FACES_DIR"))?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&images_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "no images in {}", images_dir.display());
    let limits = ImageLimits {
        max_bytes: usize::MAX,
        ..ImageLimits::default()
    };
    let images = paths
        .iter()
        .map(|p| Ok(decode_image(&std::fs::read(p)?, &limits)?))
        .collect::<anyhow::Result<Vec<_>>>()?;

    for &t in &threads {
        let config = DetectorConfig {
            threads: t,
            ..DetectorConfig::default()
        };
        let detector = Detector::load_with_kernels(&models_dir, config, kernels)?;
        for &size in &sizes {
            if profile {
                print_profile(&detector, &images, size as u32, t, reps)?;
                continue;
            }
            let params = vigil::vision::DetectParams {
                max_side: size as u32,
                ..detector.params()
            };
            // The first pass builds the per-shape plans; not timed.
            let started = Instant::now();
            let mut faces = 0;
            for img in &images {
                faces += detector.detect_with(img, &params)?.faces.len();
            }
            let warm_ms = started.elapsed().as_secs_f64() * 1000.0;
            let started = Instant::now();
            for _ in 0..reps {
                for img in &images {
                    detector.detect_with(img, &params)?;
                }
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / (reps * images.len()) as f64;
            println!(
                "{}",
                serde_json::json!({
                    "max_side": size,
                    "threads": t,
                    "ms_per_image": ms,
                    "faces": faces,
                    "images": images.len(),
                    "first_pass_ms": warm_ms,
                })
            );
        }
    }
    Ok(())
}

/// Sums each operator kind's time over `reps` passes of every image and
/// prints them as JSON lines, largest first, as ms per image.
fn print_profile(
    detector: &Detector,
    images: &[image::RgbImage],
    max_side: u32,
    threads: usize,
    reps: usize,
) -> anyhow::Result<()> {
    use std::collections::HashMap;
    for img in images {
        detector.profile(img, max_side)?;
    }
    let mut by_op: HashMap<String, (f64, usize)> = HashMap::new();
    let mut by_node: HashMap<String, (String, f64)> = HashMap::new();
    for _ in 0..reps {
        for img in images {
            for node in detector.profile(img, max_side)? {
                let ms = node.elapsed.as_secs_f64() * 1000.0;
                let entry = by_op.entry(node.op.clone()).or_default();
                entry.0 += ms;
                entry.1 += 1;
                by_node
                    .entry(node.name)
                    .or_insert((format!("{} {}", node.op, node.detail), 0.0))
                    .1 += ms;
            }
        }
    }
    let runs = (reps * images.len()) as f64;
    let total: f64 = by_op.values().map(|(ms, _)| ms).sum::<f64>() / runs;
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    for (op, (ms, count)) in ops {
        println!(
            "{}",
            serde_json::json!({
                "max_side": max_side, "threads": threads, "op": op,
                "ms_per_image": ms / runs, "nodes": (count as f64 / runs),
                "share": ms / runs / total,
            })
        );
    }
    let mut nodes: Vec<_> = by_node.into_iter().collect();
    nodes.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    for (name, (op, ms)) in nodes.into_iter() {
        println!(
            "{}",
            serde_json::json!({"max_side": max_side, "threads": threads, "node": name, "op": op, "ms_per_image": ms / runs})
        );
    }
    println!(
        "{}",
        serde_json::json!({"max_side": max_side, "threads": threads, "total_ms_per_image": total})
    );
    Ok(())
}
