//! `vigil eval-detector`: recall and false positives on an annotated set.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::vision::eval::evaluate_dir;
use crate::vision::kernels::Precision;
use crate::vision::{Detector, DetectorConfig};

#[derive(Debug, clap::Args)]
pub struct EvalDetectorArgs {
    /// Directory with dlib-style `training.xml` and `testing.xml`, their
    /// images, and `dogs.jpg` (no faces), e.g. ../shared/data/faces.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Longest side of the network input in pixels.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DetectorConfig::default().max_side,
        value_parser = clap::value_parser!(u32).range(32..=4096)
    )]
    pub max_side: u32,
    /// Minimum face score, 0–1.
    #[arg(long, value_name = "T", default_value_t = DetectorConfig::default().score_threshold)]
    pub threshold: f32,
    /// Arithmetic of the 1×1 convolutions, as `vigil serve --detector-precision`.
    #[arg(long, value_enum, default_value = "int8")]
    pub precision: Precision,
    /// Directory holding centerface.onnx.
    #[arg(long, value_name = "DIR", env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

pub fn run(args: EvalDetectorArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold must be between 0 and 1, got {}",
        args.threshold
    );
    let config = DetectorConfig {
        max_side: args.max_side,
        score_threshold: args.threshold,
        precision: args.precision,
        ..DetectorConfig::default()
    };
    let detector = Detector::load(&args.models_dir, config)?;
    let report = evaluate_dir(&detector, &args.dir, &detector.params())?;
    for image in &report.images {
        let name = image.file.file_name().map_or_else(
            || image.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let c = image.counts;
        if image.negative {
            println!("{name}: detected={} (no faces expected)", image.detected);
        } else {
            println!(
                "{name}: detected={} expected={} true_positives={} false_positives={} ignored={}",
                image.detected, c.expected, c.true_positives, c.false_positives, c.ignored
            );
        }
    }
    println!("{}", report.summary_line());
    Ok(ExitCode::SUCCESS)
}
