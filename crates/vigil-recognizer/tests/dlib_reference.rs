//! vigil's network and alignment against dlib itself (dlib-bin), on dlib's
//! chips of the shared photos and on the photos themselves.

mod common;

use std::sync::OnceLock;

use common::{faces, l2, max_abs_diff, model_path, read_ppm, summary};
use vigil_recognizer::{Chip, Recognizer, RecognizerConfig};

fn recognizer() -> &'static Recognizer {
    static R: OnceLock<Recognizer> = OnceLock::new();
    R.get_or_init(|| Recognizer::load(model_path(), RecognizerConfig::default()).expect("model loads"))
}

fn chip(path: &std::path::Path) -> Chip {
    let ppm = read_ppm(path);
    assert_eq!((ppm.width, ppm.height), (150, 150));
    Chip::from_rgb(ppm.data).unwrap()
}

#[test]
fn descriptors_equal_dlibs_on_its_chips() {
    let faces = faces();
    let chips: Vec<Chip> = faces.iter().map(|f| chip(&f.chip)).collect();
    let r = recognizer();
    let got = r.embed_chips(&chips);
    let diffs: Vec<f64> = faces
        .iter()
        .zip(&got)
        .map(|(f, e)| max_abs_diff(e.as_array(), &f.from_chip))
        .collect();
    let dists: Vec<f64> = faces
        .iter()
        .zip(&got)
        .map(|(f, e)| l2(e.as_array(), &f.from_chip))
        .collect();
    eprintln!(
        "isa {:?}: max |vigil − dlib| per chip: {}",
        r.config().isa,
        summary(&diffs)
    );
    eprintln!("L2 distance to dlib: {}", summary(&dists));
    assert!(diffs.iter().all(|&d| d < 1e-3), "{}", summary(&diffs));
}
