//! `vigil eval-recognizer`: how well faces are told apart.
//!
//! - `vigil eval-recognizer DIR` (one sub-folder of photos per person):
//!   every pair of photos compared, the model's separation in figures.
//! - `vigil eval-recognizer --gallery G --probes P --strangers S`: the
//!   server's own decision on the user's photos; G's people enrolled, P's
//!   photos of them must get their names, S's strangers must stay unknown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::people::open_set::{Labelled, OpenSet};
use crate::people::MatchRule;
use crate::vision::recognizer::{DlibEmbedder, RecognizerSettings, SAME_PERSON_DISTANCE};
use crate::vision::recognizer_eval::{
    embed_photos, pair_distances, pair_report, photos_anywhere, photos_by_person, Photo,
};
use crate::vision::{Detector, DetectorConfig};

#[derive(Debug, clap::Args)]
pub struct EvalRecognizerArgs {
    /// One folder per person, each with that person's photos (e.g. ../shared/data/identities): every pair compared.
    #[arg(
        value_name = "DIR",
        required_unless_present = "gallery",
        conflicts_with = "gallery"
    )]
    pub dir: Option<PathBuf>,
    /// One folder per person to enrol, as the server would (open-set mode, with --probes and --strangers).
    #[arg(long, value_name = "DIR", requires_all = ["probes", "strangers"])]
    pub gallery: Option<PathBuf>,
    /// Other photos of the gallery's people, in folders named as in the gallery: each should get its own name.
    #[arg(long, value_name = "DIR", requires = "gallery")]
    pub probes: Option<PathBuf>,
    /// Photos of people who are not in the gallery (loose or in folders): each should stay unknown.
    #[arg(long, value_name = "DIR", requires = "gallery")]
    pub strangers: Option<PathBuf>,
    /// Pairs: the distance below which two faces count as the same person (default 0.6).
    /// Open set: the server's --recognition-threshold (default 0.55).
    #[arg(long, value_name = "D", env = "VIGIL_RECOGNITION_THRESHOLD")]
    pub threshold: Option<f32>,
    /// Open set: the server's --recognition-margin.
    #[arg(long, value_name = "D", env = "VIGIL_RECOGNITION_MARGIN", default_value_t = MatchRule::DEFAULT_MARGIN)]
    pub margin: f32,
    /// Smallest face side, in pixels, that is embedded.
    #[arg(long, value_name = "PX", default_value_t = RecognizerSettings::default().min_face_px)]
    pub min_face: f32,
    /// Directory holding the model files.
    #[arg(long, value_name = "DIR", env = "VIGIL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

/// The detector and the embedder, loaded once.
struct Models {
    detector: Detector,
    embedder: DlibEmbedder,
}

impl Models {
    fn load(args: &EvalRecognizerArgs) -> anyhow::Result<Self> {
        let settings = RecognizerSettings {
            min_face_px: args.min_face,
            ..RecognizerSettings::default()
        };
        Ok(Self {
            detector: Detector::load(&args.models_dir, DetectorConfig::default())?,
            embedder: DlibEmbedder::load(&args.models_dir, &settings)?,
        })
    }

    /// Every photo embedded, each line printed relative to `root`; the
    /// embedded ones and how many were missed.
    fn embed(&self, root: &Path, photos: &[(String, PathBuf)]) -> anyhow::Result<(Vec<Photo>, usize)> {
        let embedded = embed_photos(&self.detector, &self.embedder, photos)?;
        let mut missed = 0;
        for photo in &embedded {
            let file = photo.file.strip_prefix(root).unwrap_or(&photo.file);
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
        Ok((embedded, missed))
    }
}

fn labelled(photos: Vec<Photo>) -> Vec<Labelled> {
    photos
        .into_iter()
        .filter_map(|p| p.embedding.map(|e| (p.person, e)))
        .collect()
}

pub fn run(args: EvalRecognizerArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = args.threshold {
        anyhow::ensure!(t.is_finite() && t > 0.0, "--threshold must be a distance above 0");
    }
    anyhow::ensure!(
        args.margin.is_finite() && args.margin >= 0.0,
        "--margin must be a distance of 0 or more"
    );
    anyhow::ensure!(
        args.min_face.is_finite() && args.min_face >= 1.0,
        "--min-face must be at least 1 pixel"
    );
    match (&args.dir, &args.gallery, &args.probes, &args.strangers) {
        (Some(dir), None, _, _) => pairs(&args, dir),
        (None, Some(gallery), Some(probes), Some(strangers)) => open_set(&args, gallery, probes, strangers),
        // clap's requirements on the arguments leave no other case.
        _ => anyhow::bail!("give a DIR, or --gallery with --probes and --strangers"),
    }
}

fn pairs(args: &EvalRecognizerArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let photos = photos_by_person(dir, 2)?;
    let models = Models::load(args)?;
    let (embedded, missed) = models.embed(dir, &photos)?;
    let pairs = pair_distances(&embedded);
    let max_same = pairs.same.iter().copied().fold(f32::NAN, f32::max);
    let min_different = pairs.different.iter().copied().fold(f32::NAN, f32::min);
    println!(
        "largest same-person distance {max_same:.3}, smallest different-person distance {min_different:.3}"
    );
    let threshold = args.threshold.unwrap_or(SAME_PERSON_DISTANCE);
    println!("{}", pair_report(&pairs, threshold, missed).summary_line());
    Ok(ExitCode::SUCCESS)
}

/// The thresholds shown around the chosen one, to tune it by.
const SWEEP: [f32; 8] = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75];

fn open_set(
    args: &EvalRecognizerArgs,
    gallery: &Path,
    probes: &Path,
    strangers: &Path,
) -> anyhow::Result<ExitCode> {
    let gallery_photos = photos_by_person(gallery, 1)?;
    let probe_photos = photos_by_person(probes, 1)?;
    let stranger_photos = photos_anywhere(strangers)?;
    let enrolled: std::collections::HashSet<&str> = gallery_photos.iter().map(|(p, _)| p.as_str()).collect();
    if let Some((person, _)) = probe_photos.iter().find(|(p, _)| !enrolled.contains(p.as_str())) {
        anyhow::bail!(
            "{} has a folder {person:?} that {} has not: probes must be of enrolled people (put other people in --strangers)",
            probes.display(),
            gallery.display()
        );
    }
    // The same file in two roles would make a probe its own enrolment photo.
    let canonical = |photos: &[(String, PathBuf)]| -> anyhow::Result<std::collections::HashSet<PathBuf>> {
        photos
            .iter()
            .map(|(_, f)| f.canonicalize().with_context(|| f.display().to_string()))
            .collect()
    };
    let in_gallery = canonical(&gallery_photos)?;
    for (role, photos) in [("--probes", &probe_photos), ("--strangers", &stranger_photos)] {
        if let Some(shared) = canonical(photos)?.intersection(&in_gallery).next() {
            anyhow::bail!("{} is both in --gallery and in {role}", shared.display());
        }
    }

    let models = Models::load(args)?;
    let (gallery_embedded, gallery_missed) = models.embed(gallery, &gallery_photos)?;
    let (probes_embedded, probes_missed) = models.embed(probes, &probe_photos)?;
    let (strangers_embedded, strangers_missed) = models.embed(strangers, &stranger_photos)?;
    let set = OpenSet::new(
        &labelled(gallery_embedded),
        &labelled(probes_embedded),
        &labelled(strangers_embedded),
    );
    anyhow::ensure!(
        set.people() > 0,
        "no face of {} could be enrolled",
        gallery.display()
    );
    let rule = MatchRule {
        threshold: args.threshold.unwrap_or(MatchRule::DEFAULT_THRESHOLD),
        margin: args.margin,
    };
    println!(
        "enrolled {} people; tar: probes given their own name, far: strangers given someone's (margin {:.3})",
        set.people(),
        rule.margin
    );
    for threshold in SWEEP {
        let r = set.report(MatchRule { threshold, ..rule });
        println!(
            "  threshold {threshold:.2}: tar {:.4} far {:.4} misnamed {}",
            r.tar(),
            r.far(),
            r.misnamed
        );
    }
    // Before the last line, which scripts read.
    println!("{}", set.feedback(rule).summary_line());
    let missed = gallery_missed + probes_missed + strangers_missed;
    println!("{}", set.report(rule).summary_line(missed));
    Ok(ExitCode::SUCCESS)
}
