//! Faces in images: detection (model loading, pre-processing, CenterFace
//! decoding, NMS, drawing, accuracy evaluation) and recognition (an
//! embedding per face, [`recognizer`]).
//!
//! Entry points: [`Detector`] (synchronous, `Arc`-shareable), [`DetectorPool`]
//! (async, bounded concurrency on tokio's blocking pool), [`decode_image`]
//! (untrusted bytes → RGB with limits) and [`annotate_jpeg`].

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

pub use detector::{default_threads, DetectParams, Detection, Detector, DetectorConfig};
pub use draw::{annotate, annotate_jpeg, encode_jpeg};
pub use geometry::{BoundingBox, Face, Landmarks, Point};
pub use image_input::{decode_image, ImageError, ImageLimits};
pub use model::ModelError;
pub use pool::{Detected, DetectorPool, DetectorSettings};
pub use recognizer::{Embedding, FaceEmbedder, RecognizerPool, RecognizerSettings};

use crate::error::{Coded, ErrorCode};

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
}

impl Coded for VisionError {
    fn code(&self) -> ErrorCode {
        match self {
            VisionError::Image(e) => e.code(),
            VisionError::Model(_) | VisionError::Inference(_) | VisionError::Encode(_) => ErrorCode::Internal,
        }
    }
}

impl Coded for ImageError {
    fn code(&self) -> ErrorCode {
        match self {
            ImageError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            ImageError::DimensionsTooLarge { .. } | ImageError::TooManyPixels { .. } => {
                ErrorCode::ImageTooLarge
            }
            ImageError::Empty | ImageError::UnsupportedFormat(_) | ImageError::Corrupt(_) => {
                ErrorCode::InvalidImage
            }
        }
    }
}
