//! The face detector end to end: the real CenterFace model on real images.
//!
//! Needs `make models` (model + scikit-image sample images in ./models or
//! VIGIL_MODELS_DIR). The accuracy test also needs the annotated faces set
//! in VIGIL_TEST_FACES_DIR (.ci/run and the Makefile set it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use vigil::vision::eval::evaluate_dir;
use vigil::vision::{
    decode_image, Detection, Detector, DetectorConfig, DetectorPool, ImageLimits, VisionError,
};

fn models_dir() -> PathBuf {
    std::env::var_os("VIGIL_MODELS_DIR")
        .map(PathBuf::from)
        // The tests are vigil-bin's; the models are the repository's.
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

fn asset(name: &str) -> Vec<u8> {
    let path = models_dir().join("test-assets").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test image {} is missing ({e}); run `make models` to fetch it",
            path.display()
        )
    })
}

/// One detector for the whole test binary: loading and optimising the model
/// is the slow part, and sharing it also exercises concurrent use.
fn detector() -> Arc<Detector> {
    static DETECTOR: OnceLock<Arc<Detector>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            let d = Detector::load(&models_dir(), DetectorConfig::default())
                .unwrap_or_else(|e| panic!("cannot load the detector: {e} (run `make models`)"));
            Arc::new(d)
        })
        .clone()
}

fn detect_asset(name: &str) -> Detection {
    let image = decode_image(&asset(name), &ImageLimits::default()).unwrap();
    detector().detect(&image).unwrap()
}

#[test]
fn astronaut_has_exactly_one_plausible_face() {
    let d = detect_asset("astronaut.png");
    assert_eq!((d.image_width, d.image_height), (512, 512));
    assert_eq!(d.faces.len(), 1, "{:#?}", d.faces);
    let f = &d.faces[0];
    assert!(f.score > 0.8, "score {}", f.score);
    // Eileen Collins' face is left of centre in the upper half of the image.
    let b = f.bbox;
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    assert!((170.0..260.0).contains(&cx), "centre x {cx}: {b:?}");
    assert!((80.0..170.0).contains(&cy), "centre y {cy}: {b:?}");
    assert!((50.0..160.0).contains(&b.width), "{b:?}");
    assert!((60.0..200.0).contains(&b.height), "{b:?}");
    // Landmarks inside the box, in anatomical order.
    let l = f.landmarks;
    for p in l.to_array() {
        assert!(
            p.x >= b.x && p.x <= b.right() && p.y >= b.y && p.y <= b.bottom(),
            "{p:?} outside {b:?}"
        );
    }
    assert!(l.left_eye.x < l.right_eye.x, "{l:?}");
    assert!(l.mouth_left.x < l.mouth_right.x, "{l:?}");
    assert!(l.left_eye.y < l.nose.y && l.nose.y < l.mouth_left.y, "{l:?}");
}

#[test]
fn coffee_and_cat_have_no_faces() {
    for name in ["coffee.png", "chelsea.png"] {
        let d = detect_asset(name);
        assert!(d.faces.is_empty(), "{name}: {:#?}", d.faces);
    }
}

#[test]
fn faces_map_back_to_original_pixels_at_any_input_size() {
    // The same photo at half size, and rotated via EXIF-free transpose,
    // must give the same face scaled accordingly: checks the letterbox
    // inverse mapping against the real model.
    let image = decode_image(&asset("astronaut.png"), &ImageLimits::default()).unwrap();
    let full = detector().detect(&image).unwrap().faces[0];
    let half_img = image::imageops::resize(&image, 256, 256, image::imageops::FilterType::Triangle);
    let half = detector().detect(&half_img).unwrap();
    assert_eq!(half.faces.len(), 1);
    let h = half.faces[0].bbox;
    assert!((h.x * 2.0 - full.bbox.x).abs() < 12.0, "{h:?} vs {:?}", full.bbox);
    assert!(
        (h.width * 2.0 - full.bbox.width).abs() < 16.0,
        "{h:?} vs {:?}",
        full.bbox
    );
    // A wide canvas with the photo on the right: a non-square input shape.
    let mut wide = image::RgbImage::new(1024, 512);
    image::imageops::replace(&mut wide, &image, 512, 0);
    let w = detector().detect(&wide).unwrap();
    assert_eq!(w.faces.len(), 1, "{:#?}", w.faces);
    let wb = w.faces[0].bbox;
    assert!(
        (wb.x - 512.0 - full.bbox.x).abs() < 12.0,
        "{wb:?} vs {:?}",
        full.bbox
    );
    assert!((wb.y - full.bbox.y).abs() < 12.0, "{wb:?} vs {:?}", full.bbox);
}

#[test]
fn accuracy_on_the_annotated_faces_set() {
    let Some(dir) = std::env::var_os("VIGIL_TEST_FACES_DIR").map(PathBuf::from) else {
        eprintln!(
            "SKIPPED accuracy_on_the_annotated_faces_set: VIGIL_TEST_FACES_DIR is not set \
             (`make test` sets it to ../shared/data/faces)"
        );
        return;
    };
    assert!(
        dir.join("training.xml").is_file(),
        "VIGIL_TEST_FACES_DIR={} has no training.xml",
        dir.display()
    );
    let detector = detector();
    let report = evaluate_dir(&detector, &dir, &detector.params()).unwrap();
    eprintln!("{}", report.summary_line());
    assert_eq!(report.expected, 43, "the set has 43 annotated faces");
    assert!(report.recall() >= 0.95, "{}", report.summary_line());
    assert!(report.false_positives <= 2, "{}", report.summary_line());
    assert_eq!(report.negatives_with_faces, 0, "{}", report.summary_line());
}

/// The 1×1 convolutions in 8 bits (the default where the CPU has AVX-512
/// VNNI) find what f32 finds on the annotated set: the same true and false
/// positives overall, the same faces in every image at the default
/// threshold, and every face f32 scores above 0.3 found again in the same
/// place with a score within `MAX_SCORE_DEVIATION`.
#[test]
fn int8_detector_finds_what_f32_finds() {
    use vigil::vision::centerface::Kernels;
    use vigil::vision::kernels::{int8_supported, Precision};
    use vigil::vision::DetectParams;

    /// Measured on the set: 0.0045 at most, over 73 faces.
    const MAX_SCORE_DEVIATION: f32 = 0.03;
    /// Measured: 0.86 at least (a 26×34-pixel face, its box 2 pixels lower).
    const MIN_IOU: f32 = 0.8;

    let Some(dir) = std::env::var_os("VIGIL_TEST_FACES_DIR").map(PathBuf::from) else {
        eprintln!("SKIPPED int8_detector_finds_what_f32_finds: VIGIL_TEST_FACES_DIR is not set");
        return;
    };
    if !int8_supported() {
        eprintln!("SKIPPED int8_detector_finds_what_f32_finds: no AVX-512 VNNI, the detector runs f32 here");
        return;
    }
    let load = |precision| {
        Detector::load_with_kernels(
            &models_dir(),
            DetectorConfig::default(),
            Kernels::Vigil(precision),
        )
        .unwrap()
    };
    let (full, int8) = (load(Precision::F32), load(Precision::Int8));
    let params = full.params();
    let a = evaluate_dir(&full, &dir, &params).unwrap();
    let b = evaluate_dir(&int8, &dir, &params).unwrap();
    eprintln!("f32:  {}\nint8: {}", a.summary_line(), b.summary_line());
    assert_eq!(
        (a.true_positives, a.false_positives, a.negatives_with_faces),
        (b.true_positives, b.false_positives, b.negatives_with_faces),
        "f32: {}\nint8: {}",
        a.summary_line(),
        b.summary_line()
    );

    let low = DetectParams {
        score_threshold: 0.3,
        ..params
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "the faces set has its images");
    let (mut compared, mut worst, mut least_iou) = (0, 0.0f32, 1.0f32);
    for path in &paths {
        let limits = ImageLimits {
            max_bytes: usize::MAX,
            ..ImageLimits::default()
        };
        let image = decode_image(&std::fs::read(path).unwrap(), &limits).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let count = |d: &Detector| d.detect_with(&image, &params).unwrap().faces.len();
        assert_eq!(
            count(&full),
            count(&int8),
            "{name}: faces at the default threshold"
        );
        let theirs = int8.detect_with(&image, &low).unwrap().faces;
        for face in full.detect_with(&image, &low).unwrap().faces {
            let twin = theirs
                .iter()
                .max_by(|x, y| x.bbox.iou(&face.bbox).total_cmp(&y.bbox.iou(&face.bbox)))
                .unwrap_or_else(|| panic!("{name}: int8 lost {face:?}"));
            let (iou, deviation) = (twin.bbox.iou(&face.bbox), (twin.score - face.score).abs());
            assert!(iou >= MIN_IOU, "{name}: {face:?} is {twin:?} in int8 (IoU {iou})");
            assert!(
                deviation <= MAX_SCORE_DEVIATION,
                "{name}: score {} in f32, {} in int8",
                face.score,
                twin.score
            );
            compared += 1;
            worst = worst.max(deviation);
            least_iou = least_iou.min(iou);
        }
    }
    eprintln!("{compared} faces compared, largest score deviation {worst}, least IoU {least_iou}");
    assert!(compared >= 40, "only {compared} faces compared");
}

#[test]
fn concurrent_async_detections_agree_with_sync() {
    let names = ["astronaut.png", "coffee.png", "chelsea.png"];
    let images: Vec<_> = names
        .iter()
        .map(|n| Arc::new(decode_image(&asset(n), &ImageLimits::default()).unwrap()))
        .collect();
    let expected: Vec<Detection> = images.iter().map(|img| detector().detect(img).unwrap()).collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = DetectorPool::new(detector(), 2);
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for round in 0..4 {
            for (i, img) in images.iter().enumerate() {
                let pool = pool.clone();
                let img = img.clone();
                tasks.push(tokio::spawn(async move { (i, round, pool.detect(img).await) }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(results.len(), 12);
    for (i, round, result) in results {
        assert_eq!(result.unwrap(), expected[i], "image {} round {round}", names[i]);
    }
    assert_eq!(pool.available_slots(), 2, "every slot is released");

    // Bytes in: decoding happens on the pool too, errors are typed.
    let detected = runtime
        .block_on(pool.detect_bytes(asset("astronaut.png"), ImageLimits::default()))
        .unwrap();
    assert_eq!(detected.detection, expected[0]);
    let err = runtime
        .block_on(pool.detect_bytes(b"garbage".to_vec(), ImageLimits::default()))
        .unwrap_err();
    assert!(matches!(err, VisionError::Image(_)), "{err:?}");
}

#[test]
fn missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Detector::load(dir.path(), DetectorConfig::default()).unwrap_err();
    assert!(err.to_string().contains("make models"), "{err}");
}

#[test]
fn cli_reports_good_images_and_fails_on_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = models_dir().join("test-assets").join("astronaut.png");
    assert!(good.is_file(), "run `make models` to fetch {}", good.display());
    let missing = dir.path().join("no-such-image.jpg");
    let not_image = dir.path().join("notes.jpg");
    std::fs::write(&not_image, b"these are not pixels").unwrap();
    let annotated = dir.path().join("out");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("detect")
        .arg("--json")
        .arg("--annotate")
        .arg(&annotated)
        .arg(&missing)
        .arg(&good)
        .arg(&not_image)
        .env("VIGIL_MODELS_DIR", models_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("no-such-image.jpg"), "{stderr}");
    assert!(stderr.contains("notes.jpg"), "{stderr}");

    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0]["file"].as_str().unwrap().ends_with("astronaut.png"));
    let faces = lines[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{stdout}");
    assert!(faces[0]["score"].as_f64().unwrap() > 0.8);
    assert!(faces[0]["box"]["width"].as_f64().unwrap() > 10.0);
    assert!(faces[0]["landmarks"]["nose"]["x"].is_number());

    let jpeg = std::fs::read(annotated.join("astronaut.faces.jpg")).unwrap();
    let img = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (512, 512));
}

/// vigil's own convolution operators (vision::kernels) must compute what
/// tract computes: every value of the four output maps, on real photos, at
/// several input shapes, one and two threads. The portable arithmetic is
/// checked on every CPU, the AVX-512 one where the CPU has it.
#[test]
fn vigil_kernels_agree_with_tracts() {
    use vigil::vision::centerface::{CenterFaceNet, Kernels, INPUT_MULTIPLE};
    use vigil::vision::geometry::Letterbox;
    use vigil::vision::kernels::Isa;
    use vigil::vision::preprocess::to_input_tensor;

    let bytes = std::fs::read(models_dir().join("centerface.onnx")).expect("run `make models`");
    let mut variants = vec![Kernels::Portable];
    if Isa::detect() == Isa::Portable {
        eprintln!("no AVX-512 on this CPU: only the portable arithmetic is compared");
    } else {
        variants.push(Kernels::Vigil(vigil::vision::kernels::Precision::F32));
    }
    for threads in [1, 2] {
        let tracts = CenterFaceNet::from_onnx_bytes(&bytes, threads, 4, Kernels::Tract).unwrap();
        for &kernels in &variants {
            let ours = CenterFaceNet::from_onnx_bytes(&bytes, threads, 4, kernels).unwrap();
            for (name, max_side) in [("astronaut.png", 640), ("chelsea.png", 320), ("coffee.png", 416)] {
                let image = decode_image(&asset(name), &ImageLimits::default()).unwrap();
                let (w, h) = image.dimensions();
                let lb = Letterbox::fit(w, h, max_side, INPUT_MULTIPLE);
                let input = to_input_tensor(&image, &lb).unwrap();
                let case = format!("{kernels:?}, {name} at {max_side}, {threads} thread(s)");

                let nodes = ours.profile(input.clone()).unwrap();
                let count = |op: &str| nodes.iter().filter(|n| n.op == op).count();
                // All of CenterFace's convolutions but the transposed ones,
                // the large expansions fused with the depthwise after them.
                let fused = count("VigilExpandDepthwise");
                assert!(fused >= 1, "{case}: the first expansion is large enough to fuse");
                for (op, want) in [
                    ("VigilPointwiseConv", 41 - fused),
                    ("VigilDepthwiseConv", 17 - fused),
                    ("VigilDenseConv3x3", 2),
                ] {
                    assert_eq!(count(op), want, "{case}: {op} nodes");
                }

                let a = ours.run(input.clone()).unwrap();
                let b = tracts.run(input).unwrap();
                for (map, x, y) in [
                    ("heatmap", &a.heatmap, &b.heatmap),
                    ("scale", &a.scale, &b.scale),
                    ("offset", &a.offset, &b.offset),
                    ("landmarks", &a.landmarks, &b.landmarks),
                ] {
                    let x = x.to_plain_array_view::<f32>().unwrap();
                    let y = y.to_plain_array_view::<f32>().unwrap();
                    assert_eq!(x.shape(), y.shape(), "{case}: {map}");
                    for (ix, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                        // Written so that a NaN on either side fails.
                        assert!((p - q).abs() < 1e-3, "{case}: {map}[{ix}] is {p}, tract says {q}");
                    }
                }
            }
        }
    }
}
