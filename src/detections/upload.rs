//! An uploaded image, from bytes to a stored detection.
//!
//! Order matters for the quota: the image is sniffed and decoded (within the
//! limits) before a unit of quota is taken, so a rejected image costs
//! nothing; a failure on the server's side after that gives the unit back.

use std::sync::Arc;
use std::time::Instant;

use super::{Frame, RecordError, Recorded, Recorder};
use crate::error::{ApiError, ErrorCode};
use crate::media::MediaKind;
use crate::users::{UserError, UserId, Users};
use crate::vision::image_input::sniff_format;
use crate::vision::{decode_image, DetectorPool, ImageError, ImageLimits, VisionError};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Quota(#[from] UserError),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl From<UploadError> for ApiError {
    fn from(err: UploadError) -> Self {
        match err {
            UploadError::Image(e @ ImageError::TooLarge { .. }) => {
                ApiError::new(ErrorCode::PayloadTooLarge, e.to_string())
            }
            UploadError::Image(
                e @ (ImageError::DimensionsTooLarge { .. } | ImageError::TooManyPixels { .. }),
            ) => ApiError::new(ErrorCode::ImageTooLarge, e.to_string()),
            UploadError::Image(e) => ApiError::new(ErrorCode::InvalidImage, e.to_string()),
            UploadError::Quota(e) => e.into(),
            UploadError::Vision(VisionError::Image(e)) => UploadError::Image(e).into(),
            UploadError::Vision(e) => ApiError::internal(e),
            UploadError::Record(RecordError::Db(e)) => e.into(),
            UploadError::Record(e) => ApiError::internal(e),
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
        source: String,
    ) -> Result<Recorded, UploadError> {
        let format = sniff_format(&bytes)?;
        let kind = MediaKind::from_image_format(format)
            .ok_or_else(|| ImageError::UnsupportedFormat(format!("{format:?}")))?;
        let limits = self.limits;
        let (image, bytes) =
            tokio::task::spawn_blocking(move || decode_image(&bytes, &limits).map(|i| (i, bytes)))
                .await
                .map_err(|e| VisionError::Inference(format!("decoder task failed: {e}")))??;
        let image = Arc::new(image);

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
