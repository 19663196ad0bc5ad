//! A `video` job: the video's frames sampled with ffmpeg as the client
//! samples them (the first frame of every 1/fps seconds, at most 1920
//! pixels wide), each detected and recorded as a detection whose source is
//! `name@m:ss.s`. Alarms follow a camera's policy over the video's own time
//! (faces appearing, more faces, still there after the cooldown), not one
//! per frame. One unit of quota per frame, checked before it and taken
//! with its detection.
//!
//! A job run again (its worker died) skips the frames already recorded and
//! replays their face counts into the alarm policy, so it ends with what a
//! single run would have stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::oid::ObjectId;
use vigil_ffmpeg::sampling::{probe, source_label, Frames, SamplingPlan, Tools};
use vigil_wire::ErrorCode;

use super::detect::{stop_for, tally};
use super::videos::VideoStore;
use super::worker::{Run, Stop};
use super::{JobProgress, JobResult};
use crate::capture::policy::AlarmPolicy;
use crate::detections::{AlarmTrigger, Frame, JobFrame, Original, RecordError, Recorder, Source};
use crate::error::Coded;
use crate::media::ImageKind;
use crate::users::{UserError, Users};
use crate::vision::{encode_jpeg, DetectorPool};

/// How long ffprobe may take, and ffmpeg between two frames.
pub const FFMPEG_SILENCE: Duration = Duration::from_secs(120);

pub struct VideoJobs {
    pub videos: Arc<VideoStore>,
    pub detector: DetectorPool,
    pub recorder: Recorder,
    pub users: Users,
    pub tools: Tools,
    /// The alarm policy's cooldown, in the video's time.
    pub cooldown: Duration,
}

fn quota_stop(done: u64) -> Stop {
    Stop::failed(
        ErrorCode::QuotaExhausted,
        format!("the quota ran out after {done} frames; the frames analysed so far are stored"),
    )
}

impl VideoJobs {
    pub async fn run(&self, run: &Run<'_>, video: ObjectId, fps: f64) -> Result<JobResult, Stop> {
        let job = run.job;
        let local = self
            .videos
            .local(video)
            .await
            .map_err(|e| Stop::retry(ErrorCode::Internal, e.to_string()))?
            .ok_or_else(|| Stop::failed(ErrorCode::Internal, "the video is gone from the store"))?;
        let info = tokio::time::timeout(FFMPEG_SILENCE, probe(&self.tools, local.path()))
            .await
            .map_err(|_| Stop::retry(ErrorCode::Internal, "ffprobe did not answer in time"))?
            .map_err(|e| Stop::failed(ErrorCode::InvalidVideo, e))?;
        let plan = SamplingPlan::new(fps);
        let total = plan.expected_frames(&info);

        // What an earlier attempt recorded: skipped, its faces replayed.
        let recorded = self.recorder.detections.job_frames(job.id.0).await?;
        let mut result = JobResult::default();
        for (_, faces, alarm) in &recorded {
            tally(&mut result, *faces, *alarm);
        }
        let mut policy = AlarmPolicy::new(self.cooldown);
        let origin = Instant::now();
        let started = Instant::now();
        let mut analysed_here = 0_u64;

        // Its own process group: a Ctrl-C meant for the server does not
        // kill it mid-video; the job gives the video back on shutdown.
        let mut frames = Frames::start_in_own_process_group(&self.tools, local.path(), &plan)
            .map_err(|e| Stop::retry(ErrorCode::Internal, e))?;
        let mut index = 0_u32;
        let outcome = loop {
            // A stalled ffmpeg must not hold the job (and its worker) forever.
            let image = match tokio::time::timeout(FFMPEG_SILENCE, frames.next()).await {
                Ok(Ok(Some(image))) => image,
                Ok(Ok(None)) => break Ok(()),
                Ok(Err(err)) => break Err(err),
                Err(_) => {
                    frames.stop().await;
                    return Err(Stop::retry(
                        ErrorCode::Internal,
                        format!("ffmpeg gave no frame for {} s", FFMPEG_SILENCE.as_secs()),
                    ));
                }
            };
            let time = plan.frame_time(u64::from(index), &info);
            let at = origin + Duration::from_secs_f64(time);
            if let Ok(at_index) = recorded.binary_search_by_key(&index, |(frame, _, _)| *frame) {
                policy.observe(at, recorded[at_index].1 as usize);
                index += 1;
                continue;
            }
            if let Err(err) = self.users.check_quota(job.user_id).await {
                frames.stop().await;
                return Err(match err {
                    UserError::QuotaExhausted { .. } => quota_stop(result.detections),
                    other => Stop::retry(other.code(), other.to_string()),
                });
            }
            let frame_started = Instant::now();
            let image = Arc::new(image);
            let detection = self
                .detector
                .detect(image.clone())
                .await
                .map_err(|e| Stop::retry(e.code(), e.to_string()))?;
            let duration_ms = frame_started.elapsed().as_secs_f64() * 1000.0;
            let raises_alarm = policy.observe(at, detection.faces.len()).is_some();
            let encoded = image.clone();
            let original = tokio::task::spawn_blocking(move || encode_jpeg(&encoded))
                .await
                .map_err(|e| Stop::retry(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| Stop::retry(ErrorCode::Internal, e.to_string()))?;
            let source = Source::parse(&source_label(job.source.as_str(), Some(time)))
                .unwrap_or_else(|_| job.source.clone());
            let frame = Frame {
                owner: Some(job.user_id),
                source,
                camera_id: None,
                original: Original::Bytes {
                    bytes: original,
                    kind: ImageKind::Jpeg,
                },
                image,
                detection,
                duration_ms,
                alarm: if raises_alarm {
                    AlarmTrigger::IfFaces
                } else {
                    AlarmTrigger::Never
                },
                captured_at: None,
                message: None,
                job: Some(JobFrame { job: job.id.0, index }),
            };
            match self.recorder.record_paid(frame, job.user_id, None).await {
                Ok(recorded) => tally(
                    &mut result,
                    recorded.detection.face_count,
                    recorded.alarm.is_some(),
                ),
                // A worker presumed dead recorded it meanwhile: count what it stored.
                Err(RecordError::AlreadyRecorded) => {
                    if let Some(stored) = self.recorder.detections.of_job_frame(job.id.0, index).await? {
                        tally(&mut result, stored.face_count, stored.alarm_id.is_some());
                    }
                }
                Err(RecordError::Quota(UserError::QuotaExhausted { .. })) => {
                    frames.stop().await;
                    return Err(quota_stop(result.detections));
                }
                Err(err) => {
                    frames.stop().await;
                    return Err(stop_for(err));
                }
            }
            index += 1;
            analysed_here += 1;
            let progress = progress(u64::from(index), total, analysed_here, started.elapsed());
            if let Err(stop) = run.report(&progress, &result).await {
                frames.stop().await;
                return Err(stop);
            }
        };
        let finished = match outcome {
            Ok(()) => frames.finish().await,
            Err(err) => {
                frames.stop().await;
                Err(err)
            }
        };
        if let Err(err) = finished {
            // A damaged video: what was read is stored, the rest cannot be.
            return Err(Stop::failed(
                ErrorCode::InvalidVideo,
                format!("ffmpeg stopped after {index} frames: {err}"),
            ));
        }
        let done = u64::from(index);
        run.report(
            &JobProgress {
                done,
                total: Some(done),
                eta_secs: Some(0.0),
            },
            &result,
        )
        .await?;
        Ok(result)
    }

    /// Removes a video whose job ended.
    pub async fn discard(&self, video: ObjectId) {
        if let Err(err) = self.videos.delete(video).await {
            tracing::warn!(video = %video.to_hex(), error = %err, "could not remove the job's video");
        }
    }
}

/// Frames done, the total when known, and the time left at this attempt's pace.
fn progress(done: u64, total: Option<u64>, analysed_here: u64, elapsed: Duration) -> JobProgress {
    // A video's real frame count may pass ffprobe's estimate.
    let total = total.map(|t| t.max(done));
    let eta_secs = total.filter(|_| analysed_here > 0).map(|total| {
        let per_frame = elapsed.as_secs_f64() / analysed_here as f64;
        ((total - done) as f64 * per_frame * 10.0).round() / 10.0
    });
    JobProgress {
        done,
        total,
        eta_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_follows_the_pace_and_the_total_never_falls_below_what_is_done() {
        let p = progress(4, Some(10), 4, Duration::from_secs(2));
        assert_eq!((p.done, p.total, p.eta_secs), (4, Some(10), Some(3.0)));
        let p = progress(12, Some(10), 12, Duration::from_secs(6));
        assert_eq!((p.total, p.eta_secs), (Some(12), Some(0.0)));
        assert_eq!(progress(3, None, 3, Duration::from_secs(1)).eta_secs, None);
    }
}
