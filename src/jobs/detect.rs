//! A `detect` job: the image an asynchronous upload stored when it was
//! accepted, detected and recorded exactly as a synchronous upload is. Its
//! unit of quota was taken when it was accepted.

use std::time::Instant;

use vigil_wire::ErrorCode;

use super::worker::{Run, Stop};
use super::{JobRecord, JobResult};
use crate::db::DbError;
use crate::db::Transient;
use crate::detections::{AlarmTrigger, DetectionRecord, Frame, JobFrame, Original, RecordError, Recorder};
use crate::error::Coded;
use crate::media::{MediaId, SharedMediaStore};
use crate::vision::{decode_upload, DecodedUpload, DetectorPool, ImageLimits};

pub struct DetectJobs {
    pub media: SharedMediaStore,
    pub detector: DetectorPool,
    pub recorder: Recorder,
    pub limits: ImageLimits,
}

/// What a recorded detection adds to a job's result.
pub(super) fn tally(result: &mut JobResult, faces: u32, alarm: bool) {
    result.detections += 1;
    result.faces += u64::from(faces);
    result.alarms += u64::from(alarm);
}

/// A detect job's result: its one detection.
pub(super) fn result_of(record: &DetectionRecord) -> JobResult {
    let mut result = JobResult {
        detection_id: Some(record.id.to_string()),
        ..JobResult::default()
    };
    tally(&mut result, record.face_count, record.alarm_id.is_some());
    result
}

/// A recorder error as the end of a job's attempt.
pub(super) fn stop_for(err: RecordError) -> Stop {
    let retry = err.is_transient() || err.code().is_server_side();
    let code = err.code();
    if retry {
        Stop::retry(code, err.to_string())
    } else {
        Stop::failed(code, err.to_string())
    }
}

impl DetectJobs {
    pub async fn run(&self, run: &Run<'_>, image: MediaId) -> Result<JobResult, Stop> {
        let job = run.job;
        // An earlier attempt stored it and died before saying so.
        if let Some(record) = self.recorder.detections.of_job_frame(job.id.0, 0).await? {
            return Ok(result_of(&record));
        }
        let bytes = self
            .media
            .get(image)
            .await
            .map_err(|e| {
                Stop::retry(
                    ErrorCode::Internal,
                    format!("cannot read the uploaded image: {e}"),
                )
            })?
            .ok_or_else(|| Stop::failed(ErrorCode::Internal, "the uploaded image is gone from the store"))?;
        let DecodedUpload {
            image: decoded,
            reserved: _reserved,
            ..
        } = decode_upload(bytes, self.limits, self.detector.decode_budget())
            .await
            .map_err(|e| Stop::failed(e.code(), e.to_string()))?;
        let started = Instant::now();
        let detection = self
            .detector
            .detect(decoded.clone())
            .await
            .map_err(|e| Stop::retry(e.code(), e.to_string()))?;
        let frame = Frame {
            owner: Some(job.user_id),
            source: job.source.clone(),
            camera_id: None,
            original: Original::Stored(image),
            image: decoded,
            detection,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            alarm: AlarmTrigger::IfFaces,
            captured_at: None,
            message: None,
            job: Some(JobFrame {
                job: job.id.0,
                index: 0,
            }),
        };
        let record = match self.recorder.record(frame).await {
            Ok(recorded) => recorded.detection,
            // An earlier attempt stored it and died before saying so.
            Err(RecordError::AlreadyRecorded) => self
                .recorder
                .detections
                .of_job_frame(job.id.0, 0)
                .await?
                .ok_or_else(|| Stop::retry(ErrorCode::Internal, "the job's detection vanished"))?,
            Err(err) => return Err(stop_for(err)),
        };
        Ok(result_of(&record))
    }

    /// The detection an attempt of the job stored, if one did: whatever
    /// becomes of the job, that detection keeps its image and its unit.
    pub async fn recorded(&self, job: &JobRecord) -> Result<Option<DetectionRecord>, DbError> {
        self.recorder.detections.of_job_frame(job.id.0, 0).await
    }

    /// Removes the image of a job that will not record it.
    pub async fn discard(&self, image: MediaId) {
        if let Err(err) = self.media.delete(image).await {
            tracing::warn!(media = %image, error = %err, "could not remove the job's image; the orphan sweep will");
        }
    }
}
