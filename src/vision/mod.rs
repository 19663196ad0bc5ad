//! Faces in images: detection (model loading, pre-processing, CenterFace
//! decoding, NMS, drawing, accuracy evaluation) and recognition (an
//! embedding per face, [`recognizer`]).
//!
//! Entry points: [`Detector`] (synchronous, `Arc`-shareable), [`DetectorPool`]
//! (async, bounded concurrency on tokio's blocking pool), [`decode_image`]
//! (untrusted bytes → RGB with limits) and [`annotate_jpeg`].

pub mod budget;
pub mod centerface;
pub mod detector;
pub mod draw;
pub mod eval;
pub mod geometry;
pub mod image_input;
pub mod kernels;
pub mod model;
pub mod nms;
pub mod pool;
pub mod preprocess;
pub mod recognizer;
pub mod recognizer_eval;
pub mod slots;

pub use budget::{Busy, DecodeBudget};
pub use detector::{default_threads, DetectParams, Detection, Detector, DetectorConfig};
pub use draw::{annotate, annotate_jpeg, encode_jpeg};
pub use geometry::{BoundingBox, Face, Landmarks, Point};
pub use image_input::{decode_image, ImageError, ImageLimits};
pub use model::ModelError;
pub use pool::{Detected, DetectorPool, DetectorSettings};
pub use recognizer::{
    EmbeddedFace, Embedding, FaceEmbedder, NotEmbedded, RecognizerPool, RecognizerSettings, EMBEDDING_LEN,
};

use std::sync::Arc;

use image::RgbImage;
use vigil_wire::media::ImageKind;

use crate::error::{Coded, ErrorCode};

/// An image received from outside, checked and decoded.
pub struct DecodedUpload {
    /// The bytes as received, to be stored as they came.
    pub bytes: Vec<u8>,
    pub kind: ImageKind,
    pub image: Arc<RgbImage>,
    /// The image's pixels in the decode budget: keep this as long as the
    /// image (or a copy of its size) is in use.
    pub reserved: budget::Reserved,
}

/// Sniffs and decodes untrusted bytes within `limits` and `budget`, off the
/// async runtime. Nothing is spent on an image this refuses; an image the
/// budget has no room for within its wait is refused as `busy`.
pub async fn decode_upload(
    bytes: Vec<u8>,
    limits: ImageLimits,
    budget: &DecodeBudget,
) -> Result<DecodedUpload, VisionError> {
    let format = image_input::sniff_format(&bytes)?;
    let kind = ImageKind::from_image_format(format)
        .ok_or_else(|| ImageError::UnsupportedFormat(format!("{format:?}")))?;
    let (width, height) = image_input::header_dimensions(&bytes, &limits)?;
    let reserved = budget.reserve(u64::from(width) * u64::from(height)).await?;
    let (image, bytes) =
        tokio::task::spawn_blocking(move || decode_image(&bytes, &limits).map(|i| (i, bytes)))
            .await
            .map_err(|e| VisionError::Inference(format!("decoder task failed: {e}")))??;
    Ok(DecodedUpload {
        bytes,
        kind,
        image: Arc::new(image),
        reserved,
    })
}

/// Everything that can go wrong between bytes and faces.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The input is not an acceptable image (client error).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The model could not be loaded (operator error: run `make models`).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The network failed to run (server error).
    #[error("face detection failed: {0}")]
    Inference(String),
    #[error("cannot encode the image as JPEG: {0}")]
    Encode(String),
    #[error(transparent)]
    Busy(#[from] Busy),
}

impl Coded for VisionError {
    fn code(&self) -> ErrorCode {
        match self {
            VisionError::Image(e) => e.code(),
            VisionError::Model(_) | VisionError::Inference(_) | VisionError::Encode(_) => ErrorCode::Internal,
            VisionError::Busy(_) => ErrorCode::Busy,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        matches!(self, VisionError::Busy(_)).then_some(budget::RETRY_AFTER_SECS)
    }
}

impl Coded for ImageError {
    fn code(&self) -> ErrorCode {
        match self {
            ImageError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            ImageError::DimensionsTooLarge { .. } | ImageError::TooManyPixels { .. } => {
                ErrorCode::ImageTooLarge
            }
            ImageError::Empty
            | ImageError::UnsupportedFormat(_)
            | ImageError::Corrupt(_)
            | ImageError::Truncated(_) => ErrorCode::InvalidImage,
        }
    }
}
