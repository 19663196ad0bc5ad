//! An uploaded image, from bytes to a stored detection.
//!
//! Quota: the image is sniffed and decoded (within the limits) and the
//! quota checked before any detection work, so a rejected image or a used
//! up quota costs nothing; the unit itself is taken in the transaction
//! that stores the detection, so only a stored detection is ever paid for
//! (no refund to lose in a crash or an outage).

use std::time::Instant;

use super::{Frame, RecordError, Recorded, Recorder, Source};
use crate::error::{Coded, ErrorCode};
use crate::users::{UserError, UserId, Users};
use crate::vision::{decode_upload, DecodedUpload, DetectorPool, ImageLimits, VisionError};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Quota(#[from] UserError),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl Coded for UploadError {
    fn code(&self) -> ErrorCode {
        match self {
            UploadError::Quota(e) => e.code(),
            UploadError::Vision(e) => e.code(),
            UploadError::Record(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            UploadError::Quota(e) => e.retry_after(),
            UploadError::Record(e) => e.retry_after(),
            UploadError::Vision(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct UploadService {
    pub detector: DetectorPool,
    pub recorder: Recorder,
    pub users: Users,
    pub limits: ImageLimits,
}

impl UploadService {
    pub async fn detect(
        &self,
        user: UserId,
        bytes: Vec<u8>,
        source: Source,
    ) -> Result<Recorded, UploadError> {
        let DecodedUpload { bytes, kind, image } = decode_upload(bytes, self.limits).await?;

        self.users.check_quota(user).await?;
        let started = Instant::now();
        let detection = self.detector.detect(image.clone()).await?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let frame = Frame {
            owner: Some(user),
            source,
            camera_id: None,
            original: bytes,
            original_kind: kind,
            image,
            detection,
            duration_ms,
        };
        Ok(self.recorder.record_paid(frame, user).await?)
    }
}
