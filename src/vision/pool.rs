//! Running the detector from async code without blocking the runtime.

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use super::slots::BlockingSlots;
use crate::observability::series;

use super::budget::DecodeBudget;
use super::detector::{Detection, Detector, DetectorConfig};
use super::image_input::ImageLimits;
use super::model::ModelError;
use super::VisionError;

/// The detector of `vigil serve`: the model's settings, and how many
/// detections may run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSettings {
    pub config: DetectorConfig,
    pub concurrency: usize,
    /// Pixels decoded and held at once by every request together (0: no limit).
    pub decode_budget_pixels: u64,
    /// How long a decode waits for room in that budget.
    pub decode_wait: std::time::Duration,
}

/// An image that was decoded and searched for faces.
#[derive(Debug, Clone)]
pub struct Detected {
    pub image: Arc<RgbImage>,
    pub detection: Detection,
}

/// Shares one [`Detector`] between async callers: each detection runs on
/// tokio's blocking pool and at most `max_concurrent` run at once, so a burst
/// of uploads queues (fairly, in arrival order) instead of starving the
/// runtime or oversubscribing the cores. Cloning is cheap and clones share
/// the limit.
#[derive(Debug, Clone)]
pub struct DetectorPool {
    detector: Arc<Detector>,
    slots: BlockingSlots,
    max_concurrent: usize,
    /// The pixels every decode of the process shares ([`super::decode_upload`]).
    decode_budget: DecodeBudget,
}

impl DetectorPool {
    /// `max_concurrent` of 0 is treated as 1.
    pub fn new(detector: Arc<Detector>, max_concurrent: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            detector,
            slots: BlockingSlots::new(max_concurrent, &super::slots::DETECTOR),
            max_concurrent,
            decode_budget: DecodeBudget::unlimited(),
        }
    }

    /// Shares `budget` between the decodes of everyone using this pool.
    pub fn with_decode_budget(mut self, budget: DecodeBudget) -> Self {
        self.decode_budget = budget;
        self
    }

    pub fn decode_budget(&self) -> &DecodeBudget {
        &self.decode_budget
    }

    /// Loads the model once for the process, off the async runtime. A
    /// missing or corrupt file is an error that says to run `make models`.
    pub async fn load(models_dir: &Path, settings: &DetectorSettings) -> Result<Self, ModelError> {
        let path = models_dir.join(super::model::CENTERFACE_FILE);
        let models_dir = models_dir.to_owned();
        let config = settings.config.clone();
        let detector = tokio::task::spawn_blocking(move || Detector::load(&models_dir, config))
            .await
            .map_err(|e| ModelError::Load {
                path,
                message: format!("the model loading task failed: {e}"),
            })??;
        Ok(
            Self::new(Arc::new(detector), settings.concurrency).with_decode_budget(DecodeBudget::new(
                settings.decode_budget_pixels,
                settings.decode_wait,
            )),
        )
    }

    /// A pool allowing one detection per available core.
    pub fn with_default_concurrency(detector: Arc<Detector>) -> Self {
        Self::new(detector, super::detector::default_threads())
    }

    pub fn detector(&self) -> &Arc<Detector> {
        &self.detector
    }

    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Slots free right now (for readiness checks and metrics).
    pub fn available_slots(&self) -> usize {
        self.slots.available()
    }

    /// Sets the slot gauges in the current recorder (at scrape time).
    pub fn record_slots(&self) {
        ::metrics::gauge!(series::DETECTOR_SLOTS).set(self.max_concurrent as f64);
        ::metrics::gauge!(series::DETECTOR_SLOTS_FREE).set(self.available_slots() as f64);
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Detector) -> Result<T, VisionError> + Send + 'static,
    ) -> Result<T, VisionError> {
        let detector = self.detector.clone();
        self.slots.run(move || job(&detector)).await?
    }

    /// Detects faces in an already decoded image.
    pub async fn detect(&self, image: Arc<RgbImage>) -> Result<Detection, VisionError> {
        self.run_blocking(move |d| d.detect(&image)).await
    }

    /// Decodes untrusted bytes (within `limits`) and detects faces, both off
    /// the async runtime. Returns the decoded image too, for drawing or
    /// storing.
    pub async fn detect_bytes(&self, bytes: Vec<u8>, limits: ImageLimits) -> Result<Detected, VisionError> {
        self.run_blocking(move |d| {
            let (image, detection) = d.detect_bytes(&bytes, &limits)?;
            Ok(Detected {
                image: Arc::new(image),
                detection,
            })
        })
        .await
    }
}
