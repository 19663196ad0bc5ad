//! `vigil embed`: the faces of image files and their descriptors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::vision::recognizer::{DlibEmbedder, FaceEmbedder, RecognizerSettings};
use crate::vision::{decode_image, Detector, DetectorConfig, ImageLimits};

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Print one JSON object per image (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Smallest face side, in pixels, that is embedded; smaller faces get no descriptor.
    #[arg(long, value_name = "PX", default_value_t = RecognizerSettings::default().min_face_px)]
    pub min_face: f32,
    /// Directory holding the model files (`make models` fills ./models).
    #[arg(long, value_name = "DIR", env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Images to search (JPEG, PNG, WebP, BMP, GIF).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.min_face.is_finite() && args.min_face >= 1.0,
        "--min-face must be at least 1 pixel"
    );
    let detector = Detector::load(&args.models_dir, DetectorConfig::default())?;
    let settings = RecognizerSettings {
        min_face_px: args.min_face,
        ..RecognizerSettings::default()
    };
    let embedder = DlibEmbedder::load(&args.models_dir, &settings)?;
    let limits = ImageLimits {
        max_bytes: usize::MAX,
        ..ImageLimits::default()
    };
    let mut failures = 0usize;
    for path in &args.images {
        let result = std::fs::read(path)
            .context("cannot read the file")
            .and_then(|bytes| Ok(decode_image(&bytes, &limits)?))
            .and_then(|image| {
                let detection = detector.detect(&image)?;
                let embeddings = embedder.embed_faces(&image, &detection.faces);
                Ok((detection, embeddings))
            });
        match result {
            Ok((detection, embeddings)) => {
                let faces: Vec<_> = detection.faces.iter().zip(&embeddings).collect();
                if args.json {
                    let faces: Vec<_> = faces
                        .iter()
                        .map(|(face, embedding)| {
                            serde_json::json!({
                                "score": face.score,
                                "box": face.bbox,
                                "landmarks": face.landmarks,
                                "embedding": embedding.as_ref().map(|e| e.as_array().to_vec()),
                            })
                        })
                        .collect();
                    let line = serde_json::json!({
                        "file": path.display().to_string(),
                        "model": embedder.model_id(),
                        "faces": faces,
                    });
                    println!("{line}");
                } else {
                    println!("{}: {} face(s)", path.display(), faces.len());
                    for (face, embedding) in faces {
                        let b = face.bbox;
                        let descriptor = match embedding {
                            Some(e) => e.as_array().map(|v| format!("{v:.4}")).join(" "),
                            None => "none (too small or not a frontal face)".to_owned(),
                        };
                        println!(
                            "  score={:.3} x={:.0} y={:.0} width={:.0} height={:.0} descriptor={descriptor}",
                            face.score, b.x, b.y, b.width, b.height
                        );
                    }
                }
            }
            Err(e) => {
                failures += 1;
                eprintln!("vigil embed: {}: {e:#}", path.display());
            }
        }
    }
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
