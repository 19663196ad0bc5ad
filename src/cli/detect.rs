//! `vigil detect`: find faces in image files from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::vision::{annotate_jpeg, decode_image, Detection, Detector, DetectorConfig, ImageLimits};

/// Most threads a command-line run may ask for (inference threads here,
/// detections at once in `vigil watch`): each is an OS thread, and far more
/// than the cores only costs memory.
pub(crate) const MAX_THREADS: u32 = 1024;

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Print one JSON object per image (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write a copy of each image with the faces marked into DIR (as
    /// `<name>.faces.jpg`).
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Minimum face score, 0–1.
    #[arg(long, value_name = "T", default_value_t = DetectorConfig::default().score_threshold)]
    pub threshold: f32,
    /// Longest side of the network input in pixels (rounded up to a
    /// multiple of 32); larger finds smaller faces, slower.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DetectorConfig::default().max_side,
        value_parser = crate::config::args::max_side()
    )]
    pub max_side: u32,
    /// Threads for one inference, 1-1024 (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_THREADS)))]
    pub threads: Option<u32>,
    /// Directory holding centerface.onnx (`make models` fills ./models).
    #[arg(long, value_name = "DIR", env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Images to search (JPEG, PNG, WebP, BMP, GIF).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold must be between 0 and 1, got {}",
        args.threshold
    );
    let defaults = DetectorConfig::default();
    let config = DetectorConfig {
        max_side: args.max_side,
        score_threshold: args.threshold,
        threads: args.threads.map_or(defaults.threads, |n| n as usize),
        ..defaults
    };
    let detector = Detector::load(&args.models_dir, config)?;
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --annotate directory {}", dir.display()))?;
    }
    // Local files chosen by the user: no byte limit, but keep the pixel
    // limits so a mistaken argument cannot exhaust memory.
    let limits = ImageLimits {
        max_bytes: usize::MAX,
        ..ImageLimits::default()
    };

    let mut failures = 0usize;
    for path in &args.images {
        match detect_one(&detector, path, &limits, args.annotate.as_deref()) {
            Ok(detection) => print_result(path, &detection, args.json)?,
            Err(e) => {
                failures += 1;
                eprintln!("vigil detect: {}: {e:#}", path.display());
            }
        }
    }
    if failures > 0 {
        eprintln!(
            "vigil detect: {failures} of {} image(s) could not be processed",
            args.images.len()
        );
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn detect_one(
    detector: &Detector,
    path: &Path,
    limits: &ImageLimits,
    annotate_dir: Option<&Path>,
) -> anyhow::Result<Detection> {
    let bytes = std::fs::read(path).context("cannot read the file")?;
    let image = decode_image(&bytes, limits)?;
    let detection = detector.detect(&image)?;
    if let Some(dir) = annotate_dir {
        let stem = path
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        let out = dir.join(format!("{stem}.faces.jpg"));
        let jpeg = annotate_jpeg(&image, &detection.faces)?;
        std::fs::write(&out, jpeg).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(detection)
}

fn print_result(path: &Path, detection: &Detection, json: bool) -> anyhow::Result<()> {
    if json {
        let line = serde_json::json!({
            "file": path.display().to_string(),
            "image_width": detection.image_width,
            "image_height": detection.image_height,
            "faces": detection.faces,
        });
        println!("{line}");
        return Ok(());
    }
    let n = detection.faces.len();
    println!(
        "{}: {n} face{} ({}×{})",
        path.display(),
        if n == 1 { "" } else { "s" },
        detection.image_width,
        detection.image_height
    );
    for face in &detection.faces {
        let b = face.bbox;
        println!(
            "  score={:.3} x={:.0} y={:.0} width={:.0} height={:.0}",
            face.score, b.x, b.y, b.width, b.height
        );
    }
    Ok(())
}
