//! Face recognition: who a detected face is, as a 128-d embedding.
//!
//! [`FaceEmbedder`] is what the rest of vigil sees, so a second model can be
//! plugged in later; [`DlibEmbedder`] is dlib's face ResNet with dlib's own
//! 5-point alignment (`crates/vigil-recognizer`). [`RecognizerPool`] runs it
//! on tokio's blocking pool with bounded concurrency, like the detector.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use vigil_recognizer::{AlignConfig, DetectedFace, FaceBox, Recognizer, RecognizerConfig};
pub use vigil_recognizer::{Embedding, EMBEDDING_LEN, SAME_PERSON_DISTANCE};

use super::geometry::Face;
use super::slots::BlockingSlots;
use super::VisionError;

/// Turns detected faces into embeddings. `None` for a face that cannot be
/// embedded trustworthily (too small, not frontal, landmarks that make no
/// sense): no identity rather than a wrong one.
pub trait FaceEmbedder: Send + Sync {
    /// Stored with every embedding: embeddings of different models (or
    /// alignments) are never compared.
    fn model_id(&self) -> &'static str;

    /// One entry per face, in order.
    fn embed_faces(&self, image: &RgbImage, faces: &[Face]) -> Vec<Option<Embedding>>;

    /// One face's embedding with the aligned chip it was computed from (for
    /// enrolment, which keeps the chip), or why there is none.
    fn embed_face(&self, image: &RgbImage, face: &Face) -> Result<EmbeddedFace, NotEmbedded>;
}

/// An embedding and the aligned face it describes.
#[derive(Debug, Clone)]
pub struct EmbeddedFace {
    pub embedding: Embedding,
    /// The aligned chip the network saw, e.g. 150×150 for dlib's.
    pub chip: RgbImage,
}

/// Why a face got no embedding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotEmbedded {
    #[error("the face is {size:.0} px, below the {min:.0} px a trustworthy embedding needs")]
    TooSmall { size: f32, min: f32 },
    #[error("the face cannot be aligned for recognition: {0}")]
    Unusable(String),
}

/// The recognizer of `vigil serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognizerSettings {
    /// Threads one call may use.
    pub threads: usize,
    /// Calls running at once.
    pub concurrency: usize,
    /// Smallest face side, in pixels, that is embedded.
    pub min_face_px: f32,
}

impl Default for RecognizerSettings {
    fn default() -> Self {
        Self {
            threads: 1,
            concurrency: super::default_threads(),
            min_face_px: AlignConfig::default().min_face_size,
        }
    }
}

/// Why the recognizer could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RecognizerLoadError {
    #[error("face recognition model {}: {source}; run `make models` to fetch it (or set VIGIL_MODELS_DIR)", path.display())]
    Model {
        path: PathBuf,
        #[source]
        source: vigil_recognizer::LoadError,
    },
    #[error("the model loading task failed: {0}")]
    Task(String),
}

/// dlib's face recognition ResNet (v1), aligned by dlib's 5-point shape predictor.
pub struct DlibEmbedder {
    recognizer: Recognizer,
}

impl DlibEmbedder {
    pub const MODEL_ID: &'static str = "dlib_resnet_v1+sp5";

    /// Loads both model files from `models_dir`, checking their sha256.
    pub fn load(models_dir: &Path, settings: &RecognizerSettings) -> Result<Self, RecognizerLoadError> {
        let network = models_dir.join(vigil_recognizer::MODEL_FILE);
        let predictor = models_dir.join(vigil_recognizer::PREDICTOR_FILE);
        let config = RecognizerConfig {
            threads: settings.threads.max(1),
            align: AlignConfig {
                min_face_size: settings.min_face_px,
                ..AlignConfig::default()
            },
            ..RecognizerConfig::default()
        };
        let started = std::time::Instant::now();
        let recognizer = Recognizer::load_verified(&network, &predictor, config).map_err(|source| {
            RecognizerLoadError::Model {
                path: network.clone(),
                source,
            }
        })?;
        tracing::info!(
            path = %network.display(),
            ms = started.elapsed().as_millis() as u64,
            threads = settings.threads,
            "loaded the face recognition model"
        );
        Ok(Self { recognizer })
    }
}

fn detected(face: &Face) -> DetectedFace {
    let point = |p: super::Point| vigil_recognizer::Point { x: p.x, y: p.y };
    let l = face.landmarks;
    DetectedFace {
        bbox: FaceBox {
            x: face.bbox.x,
            y: face.bbox.y,
            width: face.bbox.width,
            height: face.bbox.height,
        },
        landmarks: vigil_recognizer::Landmarks {
            left_eye: point(l.left_eye),
            right_eye: point(l.right_eye),
            nose: point(l.nose),
            mouth_left: point(l.mouth_left),
            mouth_right: point(l.mouth_right),
        },
    }
}

impl FaceEmbedder for DlibEmbedder {
    fn model_id(&self) -> &'static str {
        Self::MODEL_ID
    }

    fn embed_faces(&self, image: &RgbImage, faces: &[Face]) -> Vec<Option<Embedding>> {
        let (width, height) = image.dimensions();
        let Some(view) = vigil_recognizer::RgbImage::new(image.as_raw(), width as usize, height as usize)
        else {
            return vec![None; faces.len()];
        };
        let faces: Vec<DetectedFace> = faces.iter().map(detected).collect();
        self.recognizer.embed_faces(&view, &faces)
    }

    fn embed_face(&self, image: &RgbImage, face: &Face) -> Result<EmbeddedFace, NotEmbedded> {
        let (width, height) = image.dimensions();
        let view = vigil_recognizer::RgbImage::new(image.as_raw(), width as usize, height as usize)
            .ok_or_else(|| NotEmbedded::Unusable("the image has no pixels".into()))?;
        let chip = self
            .recognizer
            .align(&view, &detected(face))
            .map_err(|e| match e {
                vigil_recognizer::Unalignable::TooSmall { size, min } => NotEmbedded::TooSmall { size, min },
                other => NotEmbedded::Unusable(other.to_string()),
            })?;
        let embedding = self.recognizer.embed_chip(&chip);
        let side = vigil_recognizer::CHIP_SIZE as u32;
        let chip = RgbImage::from_raw(side, side, chip.as_rgb().to_vec())
            .ok_or_else(|| NotEmbedded::Unusable("the aligned chip has the wrong size".into()))?;
        Ok(EmbeddedFace { embedding, chip })
    }
}

/// Shares one embedder between async callers, at most `concurrency` calls
/// at once on the blocking pool. Cheap to clone.
#[derive(Clone)]
pub struct RecognizerPool {
    embedder: Arc<dyn FaceEmbedder>,
    slots: BlockingSlots,
}

impl RecognizerPool {
    pub fn new(embedder: Arc<dyn FaceEmbedder>, concurrency: usize) -> Self {
        Self {
            embedder,
            slots: BlockingSlots::new(concurrency, &super::slots::RECOGNIZER),
        }
    }

    /// Loads dlib's models off the async runtime.
    pub async fn load(models_dir: &Path, settings: &RecognizerSettings) -> Result<Self, RecognizerLoadError> {
        let dir = models_dir.to_owned();
        let load_settings = settings.clone();
        let embedder = tokio::task::spawn_blocking(move || DlibEmbedder::load(&dir, &load_settings))
            .await
            .map_err(|e| RecognizerLoadError::Task(e.to_string()))??;
        Ok(Self::new(Arc::new(embedder), settings.concurrency))
    }

    pub fn model_id(&self) -> &'static str {
        self.embedder.model_id()
    }

    pub fn embedder(&self) -> &Arc<dyn FaceEmbedder> {
        &self.embedder
    }

    /// One face with its chip, or why it cannot be embedded.
    pub async fn embed_one(
        &self,
        image: Arc<RgbImage>,
        face: Face,
    ) -> Result<Result<EmbeddedFace, NotEmbedded>, VisionError> {
        self.run(move |embedder| embedder.embed_face(&image, &face)).await
    }

    /// Embeddings of `faces` found in `image`, one per face.
    pub async fn embed(
        &self,
        image: Arc<RgbImage>,
        faces: Vec<Face>,
    ) -> Result<Vec<Option<Embedding>>, VisionError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |embedder| embedder.embed_faces(&image, &faces))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn FaceEmbedder) -> T + Send + 'static,
    ) -> Result<T, VisionError> {
        let embedder = self.embedder.clone();
        self.slots.run(move || work(embedder.as_ref())).await
    }
}
