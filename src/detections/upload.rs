//! An uploaded image, from bytes to a stored detection.
//!
//! Quota: the image is sniffed and decoded (within the limits) and the
//! quota checked before any detection work, so a rejected image or a used
//! up quota costs nothing; the unit itself is taken in the transaction
//! that stores the detection, so only a stored detection is ever paid for
//! (no refund to lose in a crash or an outage).

use std::time::Instant;

use super::{
    AlarmTrigger, DetectionId, DetectionRecord, DetectionScope, Frame, Original, RecordError, Recorder,
    Source,
};
use crate::db::DbError;
use crate::disk::{Storage, StoragePaused};
use crate::error::{Coded, ErrorCode};
use crate::idempotency::{Claim, IdempotencyKeys, Produced};
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
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StoragePaused),
    /// The key named an asynchronous upload: a different request.
    #[error("this Idempotency-Key was used for an asynchronous upload (mode=async); use a new key")]
    KeyReused,
}

impl Coded for UploadError {
    fn code(&self) -> ErrorCode {
        match self {
            UploadError::Quota(e) => e.code(),
            UploadError::Vision(e) => e.code(),
            UploadError::Record(e) => e.code(),
            UploadError::Db(e) => e.code(),
            UploadError::Storage(e) => e.code(),
            UploadError::KeyReused => ErrorCode::ValidationFailed,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            UploadError::Quota(e) => e.retry_after(),
            UploadError::Record(e) => e.retry_after(),
            UploadError::Db(e) => e.retry_after(),
            UploadError::Vision(e) => e.retry_after(),
            UploadError::Storage(_) | UploadError::KeyReused => None,
        }
    }
}

#[derive(Clone)]
pub struct UploadService {
    pub detector: DetectorPool,
    pub recorder: Recorder,
    pub users: Users,
    pub limits: ImageLimits,
    pub keys: IdempotencyKeys,
    /// Uploads are refused while the disk guard has paused storing.
    pub storage: Storage,
}

impl UploadService {
    /// Detects and stores. With an idempotency `claim`, a request that
    /// repeats an earlier one (same account, same key, within a day) gets
    /// the earlier detection back, at no cost, even when the quota has run
    /// out since.
    pub async fn detect(
        &self,
        user: UserId,
        bytes: Vec<u8>,
        source: Source,
        claim: Option<Claim>,
    ) -> Result<DetectionRecord, UploadError> {
        if let Some(claim) = &claim {
            if let Some(earlier) = self.earlier(claim).await? {
                return Ok(earlier);
            }
        }
        // After the retry's answer, which stores nothing.
        self.storage.ensure_room()?;
        let DecodedUpload {
            bytes,
            kind,
            image,
            reserved: _reserved,
        } = decode_upload(bytes, self.limits, self.detector.decode_budget()).await?;

        self.users.check_quota(user).await?;
        let started = Instant::now();
        let detection = self.detector.detect(image.clone()).await?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let frame = Frame {
            owner: Some(user),
            source,
            camera_id: None,
            original: Original::Bytes { bytes, kind },
            image,
            detection,
            duration_ms,
            alarm: AlarmTrigger::IfFaces,
            captured_at: None,
            message: None,
            job: None,
        };
        match self.recorder.record_paid(frame, user, claim.as_ref()).await {
            Ok(recorded) => Ok(recorded.detection),
            // A concurrent request with the key won: its detection is the answer.
            Err(RecordError::KeyTaken) => match &claim {
                Some(claim) => self.earlier(claim).await?.ok_or(UploadError::KeyReused),
                None => Err(RecordError::KeyTaken.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// The detection an earlier request with the key stored.
    async fn earlier(&self, claim: &Claim) -> Result<Option<DetectionRecord>, UploadError> {
        match self.keys.lookup(claim).await? {
            None => Ok(None),
            Some(Produced::Job(_)) => Err(UploadError::KeyReused),
            Some(Produced::Detection(id)) => Ok(self
                .recorder
                .detections
                .get(DetectionScope(claim.user), DetectionId(id))
                .await?),
        }
    }
}
