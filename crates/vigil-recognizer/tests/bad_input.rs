//! What must not give a descriptor: damaged model files, the network's or
//! the shape predictor's (a clear error at load, never a panic), and
//! detections that do not describe a usable face (no embedding, never a
//! garbage vector).

mod common;

use std::sync::OnceLock;

use common::{faces, model_path, predictor_path, read_ppm, Face};
use vigil_recognizer::{
    align, face_rect, verify_sha256, AlignConfig, Chip, DetectedFace, Embedding, FaceBox, Landmarks,
    LoadError, Point, PredictorError, Recognizer, RecognizerConfig, RgbImage, ShapePredictor, Unalignable,
};

fn model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(model_path()).unwrap())
}

fn predictor_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(predictor_path()).unwrap())
}

fn predictor() -> ShapePredictor {
    static P: OnceLock<ShapePredictor> = OnceLock::new();
    P.get_or_init(|| ShapePredictor::from_bytes(predictor_bytes()).expect("predictor loads"))
        .clone()
}

fn load(bytes: &[u8]) -> Result<Recognizer, LoadError> {
    Recognizer::from_bytes(bytes, predictor(), RecognizerConfig::default())
}

fn load_predictor(bytes: &[u8]) -> Result<ShapePredictor, PredictorError> {
    ShapePredictor::from_bytes(bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("marker in the model file")
}

#[test]
fn the_real_model_loads_and_matches_its_hash() {
    let bytes = model_bytes();
    verify_sha256(bytes).unwrap();
    let r = load(bytes).unwrap();
    // dlib's network: ~0.27 G multiply-accumulates, 22.4 MB of weights;
    // the predictor: 15 cascades of 500 trees, 6.1 MB.
    assert_eq!(r.macs_per_chip(), 270_854_144);
    assert!(r.memory_bytes().weights < 23_000_000);
    assert_eq!(r.predictor().trees(), 7500);
    assert!(r.memory_bytes().predictor < 7_000_000);
}

#[test]
fn a_changed_byte_fails_the_hash() {
    let mut bytes = model_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    assert!(matches!(verify_sha256(&bytes), Err(LoadError::Checksum { .. })));
}

#[test]
fn load_verified_checks_the_hash_while_reading() {
    let r = Recognizer::load_verified(model_path(), predictor_path(), RecognizerConfig::default()).unwrap();
    assert_eq!(r.macs_per_chip(), 270_854_144);
    // A copy with one weight changed still parses, but is not the file.
    let mut bytes = model_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let path = std::env::temp_dir().join(format!("vigil-recognizer-test-{}.dat", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    assert!(Recognizer::load(&path, predictor_path(), RecognizerConfig::default()).is_ok());
    let e = Recognizer::load_verified(&path, predictor_path(), RecognizerConfig::default()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(e, LoadError::Checksum { .. }), "{e}");
}

#[test]
fn a_failing_stream_is_an_error() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0);
            if n == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            buf[..n].copy_from_slice(&model_bytes()[model_bytes().len() - self.0..][..n]);
            self.0 -= n;
            Ok(n)
        }
    }
    let e = Recognizer::from_reader(
        Failing(model_bytes().len()),
        predictor(),
        RecognizerConfig::default(),
    );
    // The stream ends in an error where the file would end: reported as such.
    assert!(matches!(e, Err(LoadError::Read(_))), "{e:?}");
}

#[test]
fn missing_and_empty_files_are_errors() {
    let e = Recognizer::load(
        "/nonexistent/model.dat",
        predictor_path(),
        RecognizerConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/model.dat"));
    assert!(matches!(load(&[]), Err(LoadError::Truncated { .. })));
    let e = Recognizer::load(model_path(), "/nonexistent/sp.dat", RecognizerConfig::default()).unwrap_err();
    assert!(
        matches!(e, LoadError::Predictor(PredictorError::Io { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("/nonexistent/sp.dat"));
    assert!(matches!(
        load_predictor(&[]),
        Err(PredictorError::Truncated { .. })
    ));
}

#[test]
fn truncated_files_are_errors() {
    let bytes = model_bytes();
    let mut cuts = vec![1, 2, 10, 100, 300, 1000, bytes.len() - 1];
    cuts.extend((1..16).map(|i| bytes.len() * i / 16));
    for cut in cuts {
        match load(&bytes[..cut]) {
            Err(LoadError::Truncated { .. } | LoadError::Malformed { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_or_extra_layer_is_an_error() {
    let bytes = model_bytes();
    // The layer versions end where the input layer's name starts.
    let input = find(bytes, b"\x01\x15input_rgb_image_sized");
    let mut fewer = bytes.to_vec();
    fewer.drain(input - 2..input);
    let e = load(&fewer).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::WrongLayerCount {
                expected: 130,
                found: 129
            }
        ),
        "{e}"
    );
    let mut more = bytes.to_vec();
    more.splice(input..input, [1, 2]);
    assert!(matches!(
        load(&more),
        Err(LoadError::WrongLayerCount {
            expected: 130,
            found: 131
        })
    ));
}

#[test]
fn a_wrong_shape_or_layer_kind_is_an_error() {
    let bytes = model_bytes();
    // The first convolution: "con_4", its parameter tensor (version, four
    // dimensions, 4736 floats), then num_filters = 32.
    let con = find(bytes, b"\x05con_4") + 6;
    let header = [1, 2, 2, 0x80, 0x12, 1, 1, 1, 1, 1, 1];
    assert_eq!(bytes[con..con + header.len()], header);
    let filters = con + header.len() + 4736 * 4;
    assert_eq!(bytes[filters..filters + 2], [1, 32]);
    let mut narrower = bytes.to_vec();
    narrower[filters + 1] = 16;
    let e = load(&narrower).unwrap_err();
    assert!(matches!(e, LoadError::WrongShape { layer: 0, .. }), "{e}");
    eprintln!("{e}");

    let mut other_kind = bytes.to_vec();
    let affine = find(bytes, b"affine_");
    other_kind[affine + 6] = b'X';
    let e = load(&other_kind).unwrap_err();
    assert!(matches!(e, LoadError::UnexpectedLayer { layer: 1, .. }), "{e}");

    let mut nan = bytes.to_vec();
    nan[con + header.len()..con + header.len() + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(matches!(load(&nan), Err(LoadError::BadValue { layer: 0, .. })));

    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        load(&longer),
        Err(LoadError::TrailingData { bytes: 1, .. })
    ));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    // xorshift: deterministic bytes, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let noise: Vec<u8> = (0..1 << 20).map(|_| next() as u8).collect();
    assert!(load(&noise).is_err());
    // Damage in the structure (the first few kilobytes hold the header and
    // the first layers' geometry; every layer's header sits between its
    // weights): any outcome but a panic, and the hash check catches it.
    let bytes = model_bytes();
    for round in 0..60 {
        let mut damaged = bytes.to_vec();
        let at = if round % 2 == 0 {
            (next() % 4096) as usize
        } else {
            (next() as usize) % bytes.len()
        };
        damaged[at] = next() as u8;
        let _ = load(&damaged);
        if damaged[at] != bytes[at] {
            assert!(verify_sha256(&damaged).is_err());
        }
    }
}

/// A photo of the identities set with CenterFace's detection, for the
/// landmark tests.
fn photo() -> (Face, Vec<u8>, usize, usize, DetectedFace) {
    let face = faces().into_iter().find(|f| f.person.is_some()).unwrap();
    let img = read_ppm(&face.image);
    let lm = face.centerface.unwrap();
    let b = face.centerface_box.unwrap();
    let p = |i: usize| Point {
        x: lm[2 * i],
        y: lm[2 * i + 1],
    };
    let detected = DetectedFace {
        bbox: FaceBox {
            x: b[0],
            y: b[1],
            width: b[2] - b[0],
            height: b[3] - b[1],
        },
        landmarks: Landmarks::from_array([p(0), p(1), p(2), p(3), p(4)]),
    };
    (face, img.data, img.width, img.height, detected)
}

#[test]
fn nonsense_detections_give_no_embedding() {
    let (_, data, w, h, good_face) = photo();
    let good = good_face.landmarks;
    let image = RgbImage::new(&data, w, h).unwrap();
    let config = AlignConfig::default();
    assert!(face_rect(&image, &good_face, &config).is_ok());

    let centre = {
        let p = good.to_array();
        Point {
            x: p.iter().map(|q| q.x).sum::<f32>() / 5.0,
            y: p.iter().map(|q| q.y).sum::<f32>() / 5.0,
        }
    };
    let with = |f: &dyn Fn(&mut Landmarks)| {
        let mut l = good;
        f(&mut l);
        DetectedFace {
            landmarks: l,
            ..good_face
        }
    };
    let with_box = |f: &dyn Fn(&mut FaceBox)| {
        let mut b = good_face.bbox;
        f(&mut b);
        DetectedFace { bbox: b, ..good_face }
    };
    // Landmarks and box shrunk together about the landmarks' centre.
    let scaled = |k: f32| {
        let s = |v: f32, c: f32| c + (v - c) * k;
        let b = good_face.bbox;
        DetectedFace {
            bbox: FaceBox {
                x: s(b.x, centre.x),
                y: s(b.y, centre.y),
                width: b.width * k,
                height: b.height * k,
            },
            landmarks: Landmarks::from_array(good.to_array().map(|p| Point {
                x: s(p.x, centre.x),
                y: s(p.y, centre.y),
            })),
        }
    };
    let eyes_mid = Point {
        x: (good.left_eye.x + good.right_eye.x) / 2.0,
        y: (good.left_eye.y + good.right_eye.y) / 2.0,
    };
    // A profile: the far side's points fold onto the near side, the nose
    // sticks out past them.
    let profile = with(&|l| {
        let half = (good.right_eye.x - good.left_eye.x) / 2.0;
        l.left_eye.x = eyes_mid.x + 0.6 * half;
        l.right_eye.x = eyes_mid.x + 0.9 * half;
        l.mouth_left.x = eyes_mid.x + 0.6 * half;
        l.mouth_right.x = eyes_mid.x + 0.9 * half;
        l.nose.x = eyes_mid.x + 1.6 * half;
    });
    type Expect = fn(&Unalignable) -> bool;
    let cases: Vec<(&str, DetectedFace, Expect)> = vec![
        ("NaN", with(&|l| l.nose.x = f32::NAN), |e| {
            matches!(e, Unalignable::NotFinite)
        }),
        ("infinite", with(&|l| l.mouth_left.y = f32::INFINITY), |e| {
            matches!(e, Unalignable::NotFinite)
        }),
        ("NaN box", with_box(&|b| b.width = f32::NAN), |e| {
            matches!(e, Unalignable::NotFinite)
        }),
        (
            "all points equal",
            with(&|l| *l = Landmarks::from_array([centre; 5])),
            |e| matches!(e, Unalignable::TooSmall { .. }),
        ),
        (
            "coincident eyes",
            with(&|l| {
                l.left_eye = eyes_mid;
                l.right_eye = eyes_mid;
            }),
            |e| matches!(e, Unalignable::NotAFace { .. }),
        ),
        (
            "left and right swapped",
            with(&|l| {
                std::mem::swap(&mut l.left_eye, &mut l.right_eye);
                std::mem::swap(&mut l.mouth_left, &mut l.mouth_right);
            }),
            |e| matches!(e, Unalignable::Mirrored),
        ),
        (
            "eyes and mouth swapped",
            with(&|l| {
                std::mem::swap(&mut l.left_eye, &mut l.mouth_left);
                std::mem::swap(&mut l.right_eye, &mut l.mouth_right);
            }),
            |e| matches!(e, Unalignable::Mirrored | Unalignable::NotAFace { .. }),
        ),
        ("profile", profile, |e| matches!(e, Unalignable::NotAFace { .. })),
        ("tiny", scaled(0.25), |e| {
            matches!(e, Unalignable::TooSmall { .. })
        }),
        (
            "outside the image",
            with(&|l| l.right_eye.x = w as f32 + 5.0),
            |e| matches!(e, Unalignable::OutsideImage { .. }),
        ),
        ("another face's box", with_box(&|b| b.width *= 2.0), |e| {
            matches!(e, Unalignable::BoxMismatch { .. })
        }),
        ("empty box", with_box(&|b| b.width = 0.0), |e| {
            matches!(e, Unalignable::BoxMismatch { .. })
        }),
    ];
    let r = Recognizer::load(model_path(), predictor_path(), RecognizerConfig::default()).unwrap();
    let mut all = vec![good_face];
    for (name, face, expected) in &cases {
        let e = align(&image, face, r.predictor(), &config).expect_err(name);
        assert!(expected(&e), "{name}: {e:?}");
        assert!(r.embed(&image, face).is_none(), "{name}");
        all.push(*face);
    }
    // One image's faces: the good one embedded, the others not.
    let embedded = r.embed_faces(&image, &all);
    assert!(embedded[0].is_some() && embedded[1..].iter().all(Option::is_none));
    assert_eq!(embedded[0], r.embed(&image, &good_face));
}

/// Where the predictor file's first tree starts: 15 cascades, 500 trees in
/// the first, 15 splits in its first tree, whose first split reads pixel
/// 346 (dlib's integer encoding: a byte count, then little-endian bytes).
fn first_tree() -> usize {
    let marker = [0x01, 0x0f, 0x02, 0xf4, 0x01, 0x01, 0x0f, 0x02, 0x5a, 0x01];
    predictor_bytes()
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the first tree of the 5-point model")
}

#[test]
fn damaged_predictor_files_are_errors() {
    let bytes = predictor_bytes();
    let p = load_predictor(bytes).unwrap();
    assert_eq!(p.trees(), 7500);

    let mut cuts = vec![1, 2, 5, 30, 100, bytes.len() - 1];
    cuts.extend((1..16).map(|i| bytes.len() * i / 16));
    for cut in cuts {
        match load_predictor(&bytes[..cut]) {
            Err(PredictorError::Truncated { .. } | PredictorError::Malformed { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }

    let mut version = bytes.to_vec();
    version[1] = 2;
    let e = load_predictor(&version).unwrap_err();
    assert!(matches!(e, PredictorError::Malformed { offset: 0, .. }), "{e}");

    // The initial shape's row count (stored negated): 12 rows is a 6-point
    // model (dlib's 68-point one would be 136).
    assert_eq!(bytes[2..4], [0x81, 0x0a]);
    let mut six = bytes.to_vec();
    six[3] = 12;
    let e = load_predictor(&six).unwrap_err();
    assert!(matches!(e, PredictorError::WrongPointCount { found: 6 }), "{e}");

    let tree = first_tree();
    // 14 splits: not a complete tree.
    let mut incomplete = bytes.to_vec();
    incomplete[tree + 6] = 14;
    let e = load_predictor(&incomplete).unwrap_err();
    assert!(matches!(e, PredictorError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("complete tree"), "{e}");

    // A split reading pixel 65535 of the cascade's 500.
    let mut out_of_range = bytes.to_vec();
    out_of_range[tree + 8..tree + 10].copy_from_slice(&[0xff, 0xff]);
    let e = load_predictor(&out_of_range).unwrap_err();
    assert!(e.to_string().contains("reads pixels 65535"), "{e}");

    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        load_predictor(&longer),
        Err(PredictorError::TrailingData { bytes: 1, .. })
    ));

    // Through the recognizer's loaders: the predictor's error, with the
    // file's hash checked by load_verified.
    let path = std::env::temp_dir().join(format!("vigil-predictor-test-{}.dat", std::process::id()));
    std::fs::write(&path, &out_of_range).unwrap();
    let e = Recognizer::load(model_path(), &path, RecognizerConfig::default()).unwrap_err();
    assert!(
        matches!(e, LoadError::Predictor(PredictorError::Malformed { .. })),
        "{e}"
    );
    let e = Recognizer::load_verified(model_path(), &path, RecognizerConfig::default()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(e, LoadError::Predictor(PredictorError::Checksum { .. })),
        "{e}"
    );
    eprintln!("{e}");
}

#[test]
fn predictor_garbage_is_an_error_not_a_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let noise: Vec<u8> = (0..1 << 20).map(|_| next() as u8).collect();
    assert!(load_predictor(&noise).is_err());
    let bytes = predictor_bytes();
    for round in 0..40 {
        let mut damaged = bytes.to_vec();
        let at = if round % 2 == 0 {
            (next() % 2048) as usize
        } else {
            (next() as usize) % bytes.len()
        };
        damaged[at] = next() as u8;
        // Any outcome but a panic: a changed threshold or leaf value is
        // still a well-formed model (the hash check is what catches it).
        let _ = load_predictor(&damaged);
    }
}

#[test]
fn one_recognizer_serves_every_thread() {
    // The server shares one instance across its blocking pool.
    fn shared<T: Send + Sync>() {}
    shared::<Recognizer>();
    shared::<Embedding>();
    shared::<Chip>();
}

#[test]
fn wrongly_sized_inputs_are_refused() {
    assert!(Chip::from_rgb(vec![0; 150 * 150 * 3 - 1]).is_none());
    assert!(RgbImage::new(&[0; 12], 2, 3).is_none());
    assert!(RgbImage::new(&[0; 18], 2, 3).is_some());
    assert!(Embedding::from_slice(&[0.0; 127]).is_none());
    assert!(Embedding::from_slice(&[0.0; 128]).is_some());
}
