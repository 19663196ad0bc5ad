//! vigil's face recognition engine: dlib's face recognition ResNet
//! (`dlib_face_recognition_resnet_model_v1.dat`, CC0, Davis King), read
//! from dlib's own file format and run on vigil's kernels, with faces
//! aligned as dlib aligns them: dlib's 5-point shape predictor
//! (`shape_predictor_5_face_landmarks.dat`, CC0, Davis King), also read
//! from its own file, run in a rectangle placed from CenterFace's box and
//! landmarks.
//!
//! A face CenterFace found ([`DetectedFace`]) becomes a 150×150 RGB
//! [`Chip`] ([`align`]), the chip a 128-d [`Embedding`]
//! ([`Recognizer::embed_chip`]); two embeddings closer than
//! [`SAME_PERSON_DISTANCE`] are the same person by dlib's rule. The
//! descriptors equal dlib's own (`compute_face_descriptor`) to within float
//! rounding, and the predictor's points dlib's, on the same chips and
//! rectangles: the tests compare against dlib-bin on real photos.
//!
//! The whole path lands a median 0.04 from dlib's whole pipeline (its HOG
//! detector's rectangle, its predictor, its chip, its network), as close as
//! dlib's pipeline comes to itself when its detector's rectangle moves by a
//! tenth; verification on the identities set is unchanged (pair accuracy
//! 1.000 at 0.6, as dlib).
//!
//! ```no_run
//! use vigil_recognizer::{DetectedFace, Recognizer, RecognizerConfig, RgbImage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (pixels, width, height) = (vec![0u8; 640 * 480 * 3], 640, 480);
//! # let (a, b) = (DetectedFace::default(), DetectedFace::default());
//! let network = "models/dlib_face_recognition_resnet_model_v1.dat";
//! let predictor = "models/shape_predictor_5_face_landmarks.dat";
//! let recognizer = Recognizer::load_verified(network, predictor, RecognizerConfig::default())?;
//! let image = RgbImage::new(&pixels, width, height).expect("width × height × 3 bytes");
//! // None for a face too small or a detection that is not a frontal face.
//! if let (Some(x), Some(y)) = (recognizer.embed(&image, &a), recognizer.embed(&image, &b)) {
//!     println!("same person: {}", x.distance(&y) < vigil_recognizer::SAME_PERSON_DISTANCE);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here reads configuration or logs: the server wraps it.
//!
//! A crate of its own so that debug builds (the test suite) can compile it
//! optimised without optimising all of vigil.

mod align;
mod conv;
mod model;
mod net;
mod serial;
mod shape;

/// The integration tests' reference data, for the unit tests too.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_data;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use align::{
    align, chip_from_shape, face_rect, AlignConfig, DetectedFace, FaceBox, Landmarks, Point, Unalignable,
    BOX_TO_FACE, CENTERFACE_TEMPLATE, DLIB_TEMPLATE, PADDING, RECT_FROM_BOX,
};
pub use shape::{
    FaceRect, PredictorError, Shape, ShapePredictor, PREDICTOR_FILE, PREDICTOR_SHA256, SHAPE_POINTS,
};

/// Side of the aligned face chip the network reads.
pub const CHIP_SIZE: usize = model::INPUT_SIZE;
/// Length of an [`Embedding`].
pub const EMBEDDING_LEN: usize = model::DESCRIPTOR_LEN;
/// dlib's threshold: faces at a smaller [`Embedding::distance`] are the same
/// person (99.38 % on LFW as published by dlib).
pub const SAME_PERSON_DISTANCE: f32 = 0.6;
/// The model's file name in the models directory (`models/manifest.toml`).
pub const MODEL_FILE: &str = "dlib_face_recognition_resnet_model_v1.dat";
/// SHA-256 of the one model file this crate is tested with.
pub const MODEL_SHA256: &str = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30";

/// Why a model could not be loaded. Every malformed file ends here, with
/// the place it went wrong; none panics.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A read error from a stream given to [`Recognizer::from_reader`].
    #[error("cannot read the model: {0}")]
    Read(std::io::Error),
    #[error("model file has sha256 {found}, expected {expected}")]
    Checksum { expected: String, found: String },
    #[error("model file is truncated: {what} at byte {offset} runs past the end")]
    Truncated { offset: usize, what: String },
    #[error("model file is malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("model file has {found} layers, dlib's face ResNet has {expected}")]
    WrongLayerCount { expected: usize, found: usize },
    #[error("model layer {layer}: expected {expected}, found {found}")]
    UnexpectedLayer {
        layer: usize,
        expected: String,
        found: String,
    },
    #[error("model layer {layer} ({kind}): {what} is {found}, expected {expected}")]
    WrongShape {
        layer: usize,
        kind: &'static str,
        what: String,
        expected: String,
        found: String,
    },
    #[error("model layer {layer} ({kind}): {what}")]
    BadValue {
        layer: usize,
        kind: &'static str,
        what: String,
    },
    #[error("model file has {bytes} bytes after the network, from byte {offset}")]
    TrailingData { offset: usize, bytes: usize },
    #[error("this CPU cannot run the {0:?} kernels")]
    UnsupportedIsa(Isa),
    #[error(transparent)]
    Predictor(#[from] PredictorError),
}

/// Which kernels run the convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, for any CPU (and the reference in tests).
    Portable,
    /// AVX2 with FMA (x86-64 since Haswell / Zen).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Isa {
    /// The fastest kernels this CPU runs.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if Isa::Avx2Fma.is_supported() {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }

    pub fn is_supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            }
        }
    }
}

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `bytes` are the model file this crate was tested with
/// ([`MODEL_SHA256`]); about 60 ms for the 22 MB file. To check a file while
/// loading it, see [`Recognizer::load_verified`].
pub fn verify_sha256(bytes: &[u8]) -> Result<(), LoadError> {
    let found = sha256_hex(bytes);
    if found == MODEL_SHA256 {
        Ok(())
    } else {
        Err(LoadError::Checksum {
            expected: MODEL_SHA256.into(),
            found,
        })
    }
}

/// A borrowed RGB image: `width × height` pixels of 3 bytes, row by row,
/// no row padding.
#[derive(Debug, Clone, Copy)]
pub struct RgbImage<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
}

impl<'a> RgbImage<'a> {
    /// None unless `data` holds exactly `width × height × 3` bytes.
    pub fn new(data: &'a [u8], width: usize, height: usize) -> Option<Self> {
        (width.checked_mul(height)?.checked_mul(3)? == data.len()).then_some(Self { data, width, height })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// An aligned face: [`CHIP_SIZE`]² RGB pixels, framed as dlib's
/// `get_face_chip(image, shape, 150, 0.25)` frames it.
#[derive(Clone, PartialEq, Eq)]
pub struct Chip(Box<[u8]>);

impl Chip {
    /// None unless `pixels` holds exactly `CHIP_SIZE² × 3` bytes.
    pub fn from_rgb(pixels: Vec<u8>) -> Option<Self> {
        (pixels.len() == CHIP_SIZE * CHIP_SIZE * 3).then(|| Self(pixels.into_boxed_slice()))
    }

    pub fn as_rgb(&self) -> &[u8] {
        &self.0
    }

    pub fn as_image(&self) -> RgbImage<'_> {
        RgbImage {
            data: &self.0,
            width: CHIP_SIZE,
            height: CHIP_SIZE,
        }
    }
}

impl std::fmt::Debug for Chip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chip({CHIP_SIZE}×{CHIP_SIZE})")
    }
}

/// A face descriptor: dlib's 128 values, not normalised (dlib's metric is
/// the plain Euclidean distance between them).
#[derive(Clone, Copy, PartialEq)]
pub struct Embedding([f32; EMBEDDING_LEN]);

impl Embedding {
    pub fn from_array(values: [f32; EMBEDDING_LEN]) -> Self {
        Self(values)
    }

    /// None unless `values` has [`EMBEDDING_LEN`] elements (e.g. a stored
    /// vector read back).
    pub fn from_slice(values: &[f32]) -> Option<Self> {
        Some(Self(values.try_into().ok()?))
    }

    pub fn as_array(&self) -> &[f32; EMBEDDING_LEN] {
        &self.0
    }

    /// Euclidean distance: the quantity [`SAME_PERSON_DISTANCE`] is about.
    pub fn distance(&self, other: &Embedding) -> f32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
    }

    /// Cosine similarity in [−1, 1], for indexes that rank by inner product.
    /// dlib's descriptors have norms near 1 but not equal to it, so this
    /// orders pairs almost, not exactly, like [`distance`](Self::distance).
    pub fn similarity(&self, other: &Embedding) -> f32 {
        let dot: f32 = self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum();
        let norms = self.norm() * other.norm();
        if norms > 0.0 {
            dot / norms
        } else {
            0.0
        }
    }

    pub fn norm(&self) -> f32 {
        self.0.iter().map(|v| v * v).sum::<f32>().sqrt()
    }
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Embedding([{:.4}, {:.4}, {:.4}, …])",
            self.0[0], self.0[1], self.0[2]
        )
    }
}

/// What [`Recognizer::memory_bytes`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBytes {
    /// The network's packed weights.
    pub weights: usize,
    /// One inference's working memory.
    pub arena: usize,
    /// The shape predictor's trees and feature pixels.
    pub predictor: usize,
}

/// How a [`Recognizer`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecognizerConfig {
    /// Threads one call may use (the caller's included): one chip is split
    /// by rows, a batch by chips. 0: one per available core.
    pub threads: usize,
    pub isa: Isa,
    pub align: AlignConfig,
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            isa: Isa::detect(),
            align: AlignConfig::default(),
        }
    }
}

/// Chips run through the network together in one forward pass, at most:
/// enough to fill the register tiles of the 1×1 and 4×4 layers and to read
/// their weights (most of the model's 22 MB) once for several chips, at
/// 2.1 MB of working memory per chip.
const GROUP: usize = 4;

/// The loaded models: dlib's shape predictor (alignment) and its face
/// ResNet. `Send + Sync`: one instance serves concurrent calls, each with
/// its own working memory taken from a pool (so steady-state inference
/// allocates nothing large).
pub struct Recognizer {
    net: net::Network,
    predictor: ShapePredictor,
    config: RecognizerConfig,
    threads: usize,
    arenas: Mutex<Vec<Vec<f32>>>,
}

impl Recognizer {
    /// Reads and parses the network's and the shape predictor's files,
    /// checking their structure (not their hashes: see
    /// [`Recognizer::load_verified`]). The network's file is streamed, so
    /// loading never holds it whole next to the packed weights.
    pub fn load(
        network: impl AsRef<Path>,
        predictor: impl AsRef<Path>,
        config: RecognizerConfig,
    ) -> Result<Self, LoadError> {
        let predictor = ShapePredictor::load(predictor)?;
        let path = network.as_ref();
        let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(
            std::io::BufReader::with_capacity(1 << 16, file),
            predictor,
            config,
        )
        .map_err(|e| with_path(e, path))
    }

    /// Like [`Recognizer::load`], and also checks that the files are the
    /// ones this crate was tested with ([`MODEL_SHA256`],
    /// [`PREDICTOR_SHA256`]), hashing the network's as it is read. A file
    /// that is not fails with [`LoadError::Checksum`] (or
    /// [`PredictorError::Checksum`]), even if it also fails to parse.
    pub fn load_verified(
        network: impl AsRef<Path>,
        predictor: impl AsRef<Path>,
        config: RecognizerConfig,
    ) -> Result<Self, LoadError> {
        use sha2::Digest;

        struct Hashing<R> {
            inner: R,
            hasher: sha2::Sha256,
        }
        impl<R: Read> Read for Hashing<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.inner.read(buf)?;
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
        }

        let predictor = ShapePredictor::load_verified(predictor)?;
        let path = network.as_ref();
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut src = Hashing {
            inner: std::io::BufReader::with_capacity(1 << 16, file),
            hasher: sha2::Sha256::new(),
        };
        let parsed = Self::from_reader(&mut src, predictor, config);
        // Whatever the parser left unread still counts for the hash.
        std::io::copy(&mut src, &mut std::io::sink()).map_err(io)?;
        let found: String = src.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if found != MODEL_SHA256 {
            return Err(LoadError::Checksum {
                expected: MODEL_SHA256.into(),
                found,
            });
        }
        parsed.map_err(|e| with_path(e, path))
    }

    /// Parses a network held in memory.
    pub fn from_bytes(
        network: &[u8],
        predictor: ShapePredictor,
        config: RecognizerConfig,
    ) -> Result<Self, LoadError> {
        Self::from_reader(network, predictor, config)
    }

    /// Parses a network from any stream, read once to its end.
    pub fn from_reader(
        network: impl Read,
        predictor: ShapePredictor,
        config: RecognizerConfig,
    ) -> Result<Self, LoadError> {
        if !config.isa.is_supported() {
            return Err(LoadError::UnsupportedIsa(config.isa));
        }
        let net = net::Network::new(model::parse(network)?);
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(Self {
            net,
            predictor,
            config,
            threads,
            arenas: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &RecognizerConfig {
        &self.config
    }

    /// Multiply-accumulates per chip (convolutions and the fc layer).
    pub fn macs_per_chip(&self) -> u64 {
        self.net.macs()
    }

    /// Bytes held by the network's packed weights, by one inference's
    /// working memory (one per concurrent call or batch thread, kept for
    /// reuse), and by the shape predictor.
    pub fn memory_bytes(&self) -> MemoryBytes {
        MemoryBytes {
            weights: self.net.weight_bytes(),
            arena: self.net.arena_bytes(),
            predictor: self.predictor.memory_bytes(),
        }
    }

    pub fn predictor(&self) -> &ShapePredictor {
        &self.predictor
    }

    /// Aligns a face with this recognizer's predictor and [`AlignConfig`].
    pub fn align(&self, image: &RgbImage, face: &DetectedFace) -> Result<Chip, Unalignable> {
        align(image, face, &self.predictor, &self.config.align)
    }

    /// The descriptor of one face, or None when CenterFace's detection
    /// gives no usable chip ([`Recognizer::align`] says why).
    pub fn embed(&self, image: &RgbImage, face: &DetectedFace) -> Option<Embedding> {
        let chip = self.align(image, face).ok()?;
        Some(self.embed_chip(&chip))
    }

    /// Every face of one image, in order; None where [`Recognizer::embed`]
    /// would give None.
    pub fn embed_faces(&self, image: &RgbImage, faces: &[DetectedFace]) -> Vec<Option<Embedding>> {
        let chips: Vec<Option<Chip>> = faces.iter().map(|f| self.align(image, f).ok()).collect();
        let valid: Vec<Chip> = chips.iter().flatten().cloned().collect();
        let mut embedded = self.embed_chips(&valid).into_iter();
        chips
            .iter()
            .map(|c| c.as_ref().and_then(|_| embedded.next()))
            .collect()
    }

    pub fn embed_chip(&self, chip: &Chip) -> Embedding {
        self.run_group(&[chip], self.threads)[0]
    }

    /// Several chips, faster per chip than one at a time: chips go through
    /// the network in groups (each weight panel is read once per group),
    /// and with several threads whole groups go to each thread, or, when
    /// there are fewer groups than threads, each group is split by pixels.
    pub fn embed_chips(&self, chips: &[Chip]) -> Vec<Embedding> {
        let t = self.threads;
        let size = chips.len().div_ceil(t).clamp(1, GROUP);
        let groups: Vec<Vec<&Chip>> = chips.chunks(size).map(|g| g.iter().collect()).collect();
        if t == 1 || groups.len() < t {
            return groups.iter().flat_map(|g| self.run_group(g, t)).collect();
        }
        let next = AtomicUsize::new(0);
        let results = Mutex::new(vec![Vec::new(); groups.len()]);
        std::thread::scope(|s| {
            let work = || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= groups.len() {
                    break;
                }
                let e = self.run_group(&groups[i], 1);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = e;
            };
            for _ in 1..t {
                s.spawn(work);
            }
            work();
        });
        results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
            .collect()
    }

    fn run_group(&self, chips: &[&Chip], threads: usize) -> Vec<Embedding> {
        let mut arenas = self.take_arenas(chips.len());
        let mut outs = vec![[0f32; EMBEDDING_LEN]; chips.len()];
        let pixels: Vec<&[u8]> = chips.iter().map(|c| c.as_rgb()).collect();
        self.net
            .forward(self.config.isa, &mut arenas, &pixels, threads, &mut outs);
        self.put_arenas(arenas);
        outs.into_iter().map(Embedding).collect()
    }

    fn take_arenas(&self, n: usize) -> Vec<Vec<f32>> {
        let mut pool = self.arenas.lock().unwrap_or_else(|p| p.into_inner());
        let keep = pool.len().saturating_sub(n);
        let mut arenas = pool.split_off(keep);
        drop(pool);
        arenas.resize_with(n, || self.net.arena());
        arenas
    }

    fn put_arenas(&self, arenas: Vec<Vec<f32>>) {
        self.arenas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(arenas);
    }
}

/// Read errors of a file are reported with its path.
fn with_path(e: LoadError, path: &Path) -> LoadError {
    match e {
        LoadError::Read(source) => LoadError::Io {
            path: path.to_path_buf(),
            source,
        },
        e => e,
    }
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
