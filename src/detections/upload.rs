//! An uploaded image, from bytes to a stored detection.
//!
//! Order matters for the quota: the image is sniffed and decoded (within the
//! limits) before a unit of quota is taken, so a rejected image costs
//! nothing; a failure on the server's side after that gives the unit back.

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

        self.users.consume_quota(user).await?;
        let result = async {
            let started = Instant::now();
            let detection = self.detector.detect(image.clone()).await?;
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            Ok::<_, UploadError>(
                self.recorder
                    .record(Frame {
                        owner: Some(user),
                        source,
                        camera_id: None,
                        original: bytes,
                        original_kind: kind,
                        image,
                        detection,
                        duration_ms,
                    })
                    .await?,
            )
        }
        .await;
        if result.is_err() {
            if let Err(err) = self.users.refund_quota(user).await {
                tracing::warn!(error = %err, "could not refund quota after a failed detection");
            }
        }
        result
    }
}
