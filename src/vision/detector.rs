//! The synchronous face detector: image in, faces in original pixels out.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::centerface::{self, CenterFaceNet, Kernels, INPUT_MULTIPLE};
use super::geometry::{Face, Letterbox};
use super::image_input::{decode_image, ImageLimits};
use super::kernels::Precision;
use super::model::{self, ModelError};
use super::nms::nms;
use super::VisionError;

/// Detector settings. The defaults come from `vigil eval-detector` and
/// `make bench-detector` on ../shared/data/faces (see the README's
/// performance section).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Longest side of the network input; larger images are scaled down
    /// (keeping the aspect ratio) so their longer side has this length,
    /// smaller ones only up to their longer side rounded up to 128
    /// ([`input_side`]).
    /// Larger finds smaller faces and costs quadratically more time.
    pub max_side: u32,
    /// Minimum heatmap score of a face. The reference code uses 0.5; on
    /// ../shared/data/faces 0.6 keeps recall at 43/43 for max sides 320–800
    /// and removes the one false positive 0.5 gives at 480–800.
    pub score_threshold: f32,
    /// Faces overlapping a better one by at least this IoU are dropped.
    pub nms_threshold: f32,
    /// Threads one inference may use (tract's matmul executor).
    pub threads: usize,
    /// How many shape-specific optimised plans to keep.
    pub plan_cache_size: usize,
    /// The arithmetic of the 1×1 convolutions (8-bit only where the CPU
    /// has AVX-512 VNNI).
    pub precision: Precision,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            max_side: 640,
            score_threshold: 0.6,
            nms_threshold: 0.3,
            threads: default_threads(),
            plan_cache_size: 48,
            precision: Precision::default(),
        }
    }
}

/// Number of cores available to this process (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Steps of the network input's longer side for images smaller than the
/// max side.
const SMALL_SIDE_STEP: u32 = 128;

/// The longer side of the network input for a `width`×`height` image: the
/// max side for images at least that large, otherwise the image's own side
/// rounded up to a step. Scaling a small image up to the max side costs
/// work in proportion to the added pixels: a 500×375 photo at 640 is 64 %
/// more. The price is the smallest faces: a face of a few pixels that the
/// network finds only when magnified is missed (on the annotated set recall
/// is unchanged at 640; at a max side of 1280, where photos were magnified
/// four-fold, 69 faces are found instead of 73). The steps keep the number
/// of input shapes (one optimised plan each) small.
pub fn input_side(width: u32, height: u32, max_side: u32) -> u32 {
    width
        .max(height)
        .max(1)
        .div_ceil(SMALL_SIDE_STEP)
        .saturating_mul(SMALL_SIDE_STEP)
        .min(max_side)
}

/// The faces found in one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Detection {
    /// Size of the (orientation-corrected) image the coordinates refer to.
    pub image_width: u32,
    pub image_height: u32,
    /// Best score first.
    pub faces: Vec<Face>,
}

/// Per-call overrides of the configured thresholds and input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    pub max_side: u32,
    pub score_threshold: f32,
    pub nms_threshold: f32,
}

/// CenterFace with its pre- and post-processing. Cheap to share behind an
/// `Arc`: `detect` takes `&self` and may be called from many threads.
#[derive(Debug)]
pub struct Detector {
    net: CenterFaceNet,
    config: DetectorConfig,
}

impl Detector {
    /// Loads `centerface.onnx` from `models_dir`, refusing a missing or
    /// altered file with an error that says to run `make models`.
    pub fn load(models_dir: &Path, config: DetectorConfig) -> Result<Self, ModelError> {
        let kernels = Kernels::Vigil(config.precision);
        Self::load_with_kernels(models_dir, config, kernels)
    }

    /// [`Detector::load`] choosing whose convolution kernels run (for the
    /// benchmark's baseline and the tests); `config.precision` is not used.
    pub fn load_with_kernels(
        models_dir: &Path,
        config: DetectorConfig,
        kernels: Kernels,
    ) -> Result<Self, ModelError> {
        let path = models_dir.join(model::CENTERFACE_FILE);
        let bytes = model::read_verified(&path, model::CENTERFACE_SHA256)?;
        let started = Instant::now();
        let net =
            CenterFaceNet::from_onnx_bytes(&bytes, config.threads.max(1), config.plan_cache_size, kernels)
                .map_err(|e| ModelError::Load {
                    path: path.clone(),
                    message: format!("{e:?}"),
                })?;
        tracing::info!(
            path = %path.display(),
            ms = started.elapsed().as_millis() as u64,
            threads = config.threads,
            max_side = config.max_side,
            ?kernels,
            "loaded CenterFace"
        );
        Ok(Self { net, config })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    pub fn params(&self) -> DetectParams {
        DetectParams {
            max_side: self.config.max_side,
            score_threshold: self.config.score_threshold,
            nms_threshold: self.config.nms_threshold,
        }
    }

    /// Optimises the plans for the most common frame shapes (4:3 and 16:9,
    /// both orientations) so the first requests do not pay for it.
    pub fn warm_up(&self) -> Result<(), VisionError> {
        for (w, h) in [(4, 3), (3, 4), (16, 9), (9, 16)] {
            let lb = Letterbox::fit(w * 100, h * 100, self.config.max_side, INPUT_MULTIPLE);
            self.net
                .warm_up(lb.input_height as usize, lb.input_width as usize)
                .map_err(|e| VisionError::Inference(format!("{e:?}")))?;
        }
        Ok(())
    }

    /// Detects faces with the configured parameters.
    pub fn detect(&self, image: &RgbImage) -> Result<Detection, VisionError> {
        self.detect_with(image, &self.params())
    }

    /// Decodes untrusted bytes within `limits`, then detects.
    pub fn detect_bytes(
        &self,
        bytes: &[u8],
        limits: &ImageLimits,
    ) -> Result<(RgbImage, Detection), VisionError> {
        let image = decode_image(bytes, limits)?;
        let detection = self.detect(&image)?;
        Ok((image, detection))
    }

    pub fn detect_with(&self, image: &RgbImage, params: &DetectParams) -> Result<Detection, VisionError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Ok(Detection {
                image_width: width,
                image_height: height,
                faces: Vec::new(),
            });
        }
        let side = input_side(width, height, params.max_side);
        let lb = Letterbox::fit(width, height, side, INPUT_MULTIPLE);
        let inference = |e: tract_onnx::prelude::TractError| VisionError::Inference(format!("{e:?}"));
        let input = super::preprocess::to_input_tensor(image, &lb).map_err(inference)?;
        let raw = self.net.run(input).map_err(inference)?;
        let candidates = centerface::decode(
            &raw,
            lb.input_height as usize,
            lb.input_width as usize,
            params.score_threshold,
        )
        .map_err(inference)?;
        let faces = nms(candidates, params.nms_threshold)
            .into_iter()
            .map(|f| lb.face_to_original(f.score, f.bbox, f.landmarks))
            .collect();
        Ok(Detection {
            image_width: width,
            image_height: height,
            faces,
        })
    }

    /// Per-node times of one inference on `image` (pre-processing excluded).
    pub fn profile(&self, image: &RgbImage, max_side: u32) -> Result<Vec<centerface::NodeTime>, VisionError> {
        let (width, height) = image.dimensions();
        let side = input_side(width, height, max_side);
        let lb = Letterbox::fit(width.max(1), height.max(1), side, INPUT_MULTIPLE);
        let inference = |e: tract_onnx::prelude::TractError| VisionError::Inference(format!("{e:?}"));
        let input = super::preprocess::to_input_tensor(image, &lb).map_err(inference)?;
        self.net.profile(input).map_err(inference)
    }

    /// Number of shape-specific plans built so far (for metrics and tests).
    pub fn cached_plans(&self) -> usize {
        self.net.cached_plans()
    }
}

#[cfg(test)]
mod tests {
    use super::input_side;

    #[test]
    fn small_images_keep_their_size_rounded_up_to_a_step() {
        // At least the max side: the max side.
        assert_eq!(input_side(640, 480, 640), 640);
        assert_eq!(input_side(4000, 3000, 640), 640);
        assert_eq!(input_side(3000, 4000, 640), 640);
        // Smaller: the longer side rounded up to 128, never past the max.
        assert_eq!(input_side(500, 375, 640), 512);
        assert_eq!(input_side(360, 480, 640), 512);
        assert_eq!(input_side(512, 512, 640), 512);
        assert_eq!(input_side(513, 100, 640), 640);
        assert_eq!(input_side(100, 80, 640), 128);
        assert_eq!(input_side(500, 375, 320), 320);
        // Degenerate sizes still get a network input.
        assert_eq!(input_side(0, 0, 640), 128);
        assert_eq!(input_side(1, 1, 32), 32);
    }
}
