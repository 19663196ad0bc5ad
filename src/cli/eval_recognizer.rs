//! `vigil eval-recognizer`: how well faces are told apart on a folder of
//! one sub-folder of photos per person.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::vision::recognizer::{DlibEmbedder, RecognizerSettings, SAME_PERSON_DISTANCE};
use crate::vision::recognizer_eval::{embed_photos, pair_distances, pair_report, photos_by_person};
use crate::vision::{Detector, DetectorConfig};

#[derive(Debug, clap::Args)]
pub struct EvalRecognizerArgs {
    /// One folder per person, each with that person's photos (e.g. ../shared/data/identities).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Distance below which two faces count as the same person.
    #[arg(long, value_name = "D", default_value_t = SAME_PERSON_DISTANCE)]
    pub threshold: f32,
    /// Smallest face side, in pixels, that is embedded.
    #[arg(long, value_name = "PX", default_value_t = RecognizerSettings::default().min_face_px)]
    pub min_face: f32,
    /// Directory holding the model files.
    #[arg(long, value_name = "DIR", env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

pub fn run(args: EvalRecognizerArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.threshold.is_finite() && args.threshold > 0.0,
        "--threshold must be a distance above 0"
    );
    anyhow::ensure!(
        args.min_face.is_finite() && args.min_face >= 1.0,
        "--min-face must be at least 1 pixel"
    );
    let photos = photos_by_person(&args.dir)?;
    let detector = Detector::load(&args.models_dir, DetectorConfig::default())?;
    let settings = RecognizerSettings {
        min_face_px: args.min_face,
        ..RecognizerSettings::default()
    };
    let embedder = DlibEmbedder::load(&args.models_dir, &settings)?;
    let embedded = embed_photos(&detector, &embedder, &photos)?;
    let mut missed = 0;
    for photo in &embedded {
        let file = photo.file.strip_prefix(&args.dir).unwrap_or(&photo.file);
        match (&photo.embedding, photo.faces) {
            (Some(_), faces) => println!("{}: faces={faces} embedded", file.display()),
            (None, 0) => {
                missed += 1;
                println!("{}: faces=0 missed (no face)", file.display());
            }
            (None, faces) => {
                missed += 1;
                println!("{}: faces={faces} missed (no embedding)", file.display());
            }
        }
    }
    let pairs = pair_distances(&embedded);
    let max_same = pairs.same.iter().copied().fold(f32::NAN, f32::max);
    let min_different = pairs.different.iter().copied().fold(f32::NAN, f32::min);
    println!(
        "largest same-person distance {max_same:.3}, smallest different-person distance {min_different:.3}"
    );
    println!("{}", pair_report(&pairs, args.threshold, missed).summary_line());
    Ok(ExitCode::SUCCESS)
}
