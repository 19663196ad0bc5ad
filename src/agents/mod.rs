//! Alarms raised elsewhere: an edge agent (`vigil watch --forward` on a
//! box by the door, another site, another product's detector) sends the
//! frame, when it was taken, where, and optionally the faces it found; the
//! server stores the frame, a detection and the alarm, and fans the alarm
//! out exactly like its own.
//!
//! Everything is checked before anything is kept: the image (sniffed and
//! decoded within the upload limits), the date (not too far ahead of this
//! server's clock, nor older than [`MAX_AGE`]), the faces (inside the
//! image). The detection, the alarm, the idempotency key and the unit of
//! quota are one transaction, so an agent retrying after a lost answer gets
//! the first alarm back and raises nothing twice.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;

use crate::alarms::{Alarm, AlarmId, AlarmScope};
use crate::db::DbError;
use crate::detections::{AlarmTrigger, Frame, Original, RecordError, Recorder, Source};
use crate::error::{Coded, ErrorCode, FieldError};
use crate::idempotency::{Claim, IdempotencyKeys, Produced};
use crate::users::{UserError, UserId, Users};
use crate::vision::{decode_upload, DecodedUpload, Detection, DetectorPool, Face, ImageLimits, VisionError};

/// How old an alarm may be when it arrives: an agent cut off for a week
/// still delivers what it queued; older than that is refused.
pub const MAX_AGE: chrono::Duration = chrono::Duration::days(7);
/// Faces one alarm may carry.
pub const MAX_FACES: usize = 100;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 256;

/// How received alarms are checked.
#[derive(Debug, Clone, Copy)]
pub struct IngestSettings {
    /// How far ahead of this server's clock a `date` may be.
    pub max_skew: Duration,
    /// Detect faces here when the agent sent none.
    pub redetect: bool,
}

/// An alarm as an agent sent it, its fields parsed but not yet checked
/// against each other (faces against the image, the date against now).
pub struct IncomingAlarm {
    pub image: Vec<u8>,
    pub date: DateTime<Utc>,
    pub source: Source,
    pub message: Option<String>,
    pub faces: Option<Vec<Face>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}", .0.iter().map(|f| format!("`{}` {}", f.field, f.problem)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Quota(#[from] UserError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("this Idempotency-Key was used for a different request; use a new key")]
    KeyReused,
    #[error(transparent)]
    Storage(#[from] crate::disk::StoragePaused),
}

impl Coded for IngestError {
    fn code(&self) -> ErrorCode {
        match self {
            IngestError::Invalid(_) | IngestError::KeyReused => ErrorCode::ValidationFailed,
            IngestError::Vision(e) => e.code(),
            IngestError::Quota(e) => e.code(),
            IngestError::Record(e) => e.code(),
            IngestError::Db(e) => e.code(),
            IngestError::Storage(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            IngestError::Quota(e) => e.retry_after(),
            IngestError::Record(e) => e.retry_after(),
            IngestError::Db(e) => e.retry_after(),
            IngestError::Vision(e) => e.retry_after(),
            _ => None,
        }
    }

    fn fields(&self) -> Vec<FieldError> {
        match self {
            IngestError::Invalid(fields) => fields.clone(),
            _ => Vec::new(),
        }
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// A message: 1–[`MAX_MESSAGE_CHARS`] characters, no control characters.
pub fn check_message(raw: &str) -> Result<String, FieldError> {
    let message = raw.trim();
    if message.is_empty()
        || message.chars().count() > MAX_MESSAGE_CHARS
        || message.chars().any(char::is_control)
    {
        return Err(invalid(
            "message",
            format!("must be 1-{MAX_MESSAGE_CHARS} characters without control characters"),
        ));
    }
    Ok(message.to_owned())
}

/// The date against this server's clock.
fn check_date(date: DateTime<Utc>, now: DateTime<Utc>, max_skew: Duration) -> Result<(), FieldError> {
    let skew = chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::zero());
    if date > now + skew {
        return Err(invalid(
            "date",
            format!(
                "is {} s ahead of the server's clock; at most {} s is allowed (check the agent's clock)",
                (date - now).num_seconds(),
                max_skew.as_secs()
            ),
        ));
    }
    if date < now - MAX_AGE {
        return Err(invalid("date", "is more than 7 days old"));
    }
    Ok(())
}

/// Each face inside a `width`×`height` image: its box (not empty) and its
/// landmarks, with half a pixel of rounding allowed; a score from 0 to 1.
fn check_faces(faces: &[Face], width: u32, height: u32) -> Result<(), FieldError> {
    if faces.len() > MAX_FACES {
        return Err(invalid(
            "faces",
            format!("at most {MAX_FACES} faces, got {}", faces.len()),
        ));
    }
    let (w, h) = (width as f32 + 0.5, height as f32 + 0.5);
    let inside =
        |x: f32, y: f32| x.is_finite() && y.is_finite() && (-0.5..=w).contains(&x) && (-0.5..=h).contains(&y);
    for (i, face) in faces.iter().enumerate() {
        let b = face.bbox;
        if !(face.score.is_finite() && (0.0..=1.0).contains(&face.score)) {
            return Err(invalid(&format!("faces[{i}].score"), "must be from 0 to 1"));
        }
        let empty = !(b.width.is_finite() && b.height.is_finite() && b.width > 0.0 && b.height > 0.0);
        if empty || !inside(b.x, b.y) || !inside(b.right(), b.bottom()) {
            return Err(invalid(
                &format!("faces[{i}].box"),
                format!("must be a non-empty box inside the {width}x{height} image"),
            ));
        }
        if face.landmarks.to_array().iter().any(|p| !inside(p.x, p.y)) {
            return Err(invalid(
                &format!("faces[{i}].landmarks"),
                format!("must be inside the {width}x{height} image"),
            ));
        }
    }
    Ok(())
}

/// The received alarm and the detection it was stored with.
pub struct Received {
    pub alarm: Alarm,
}

#[derive(Clone)]
pub struct AlarmIngest {
    pub detector: DetectorPool,
    pub recorder: Recorder,
    pub users: Users,
    pub keys: IdempotencyKeys,
    pub limits: ImageLimits,
    pub settings: IngestSettings,
    /// Alarms with their images are refused while the disk guard has paused storing.
    pub storage: crate::disk::Storage,
}

impl AlarmIngest {
    /// Checks, stores and fans out an alarm sent by `user`'s agent.
    pub async fn receive(
        &self,
        user: UserId,
        incoming: IncomingAlarm,
        claim: Option<Claim>,
    ) -> Result<Received, IngestError> {
        if let Some(claim) = &claim {
            if let Some(alarm) = self.earlier(claim, user).await? {
                return Ok(Received { alarm });
            }
        }
        self.storage.ensure_room()?;
        check_date(incoming.date, Utc::now(), self.settings.max_skew)
            .map_err(|f| IngestError::Invalid(vec![f]))?;
        let DecodedUpload {
            bytes,
            kind,
            image,
            reserved: _reserved,
        } = decode_upload(incoming.image, self.limits, self.detector.decode_budget()).await?;
        if let Some(faces) = &incoming.faces {
            check_faces(faces, image.width(), image.height()).map_err(|f| IngestError::Invalid(vec![f]))?;
        }
        self.users.check_quota(user).await?;
        let started = Instant::now();
        let detection = match incoming.faces {
            Some(mut faces) => {
                faces.sort_by(|a, b| b.score.total_cmp(&a.score));
                Detection {
                    image_width: image.width(),
                    image_height: image.height(),
                    faces,
                }
            }
            None if self.settings.redetect => self.detector.detect(image.clone()).await?,
            None => Detection {
                image_width: image.width(),
                image_height: image.height(),
                faces: Vec::new(),
            },
        };
        let frame = Frame {
            owner: Some(user),
            source: incoming.source,
            camera_id: None,
            original: Original::Bytes { bytes, kind },
            image,
            detection,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            alarm: AlarmTrigger::Always,
            captured_at: Some(incoming.date),
            message: incoming.message,
            job: None,
        };
        match self.recorder.record_paid(frame, user, claim.as_ref()).await {
            Ok(recorded) => {
                let alarm = recorded.alarm.expect("an agent's frame always raises its alarm");
                tracing::info!(alarm = %alarm.id, source = %alarm.source, "alarm received from an agent");
                Ok(Received { alarm })
            }
            Err(RecordError::KeyTaken) => match &claim {
                Some(claim) => Ok(Received {
                    alarm: self.earlier(claim, user).await?.ok_or(IngestError::KeyReused)?,
                }),
                None => Err(RecordError::KeyTaken.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// The alarm an earlier request with the key raised.
    async fn earlier(&self, claim: &Claim, user: UserId) -> Result<Option<Alarm>, IngestError> {
        match self.keys.lookup(claim).await? {
            None => Ok(None),
            Some(Produced::Job(_)) => Err(IngestError::KeyReused),
            Some(Produced::Detection(detection)) => self.alarm_of(detection, user).await,
        }
    }

    async fn alarm_of(&self, detection: ObjectId, user: UserId) -> Result<Option<Alarm>, IngestError> {
        let record = self
            .recorder
            .detections
            .get(
                crate::detections::DetectionScope(user),
                crate::detections::DetectionId(detection),
            )
            .await?;
        let Some(alarm_id) = record.and_then(|r| r.alarm_id) else {
            // A key of a plain upload without an alarm: another request.
            return Err(IngestError::KeyReused);
        };
        Ok(self
            .recorder
            .alarms
            .get(AlarmScope::Owner(user), AlarmId(alarm_id))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{BoundingBox, Landmarks, Point};

    fn face(x: f32, y: f32, w: f32, h: f32) -> Face {
        let p = Point {
            x: x + w / 2.0,
            y: y + h / 2.0,
        };
        Face {
            score: 0.9,
            bbox: BoundingBox {
                x,
                y,
                width: w,
                height: h,
            },
            landmarks: Landmarks::from_array([p; 5]),
        }
    }

    #[test]
    fn faces_must_lie_inside_the_image() {
        assert!(check_faces(&[face(0.0, 0.0, 640.0, 480.0)], 640, 480).is_ok());
        assert!(check_faces(&[face(10.0, 10.0, 50.3, 60.0)], 640, 480).is_ok());
        for (bad, field) in [
            (face(600.0, 10.0, 100.0, 50.0), "faces[0].box"),
            (face(-5.0, 10.0, 20.0, 20.0), "faces[0].box"),
            (face(10.0, 10.0, 0.0, 20.0), "faces[0].box"),
            (face(f32::NAN, 10.0, 20.0, 20.0), "faces[0].box"),
        ] {
            assert_eq!(check_faces(&[bad], 640, 480).unwrap_err().field, field);
        }
        let mut wild = face(10.0, 10.0, 20.0, 20.0);
        wild.landmarks.nose = Point { x: 700.0, y: 5.0 };
        assert_eq!(
            check_faces(&[wild], 640, 480).unwrap_err().field,
            "faces[0].landmarks"
        );
        let mut scored = face(10.0, 10.0, 20.0, 20.0);
        scored.score = 1.5;
        assert_eq!(
            check_faces(&[scored], 640, 480).unwrap_err().field,
            "faces[0].score"
        );
        assert!(check_faces(&vec![face(1.0, 1.0, 2.0, 2.0); MAX_FACES + 1], 640, 480).is_err());
    }

    #[test]
    fn dates_may_be_a_week_old_and_a_little_ahead() {
        let now = Utc::now();
        let skew = Duration::from_secs(300);
        assert!(check_date(now - chrono::Duration::days(6), now, skew).is_ok());
        assert!(check_date(now + chrono::Duration::seconds(299), now, skew).is_ok());
        assert!(check_date(now + chrono::Duration::seconds(301), now, skew).is_err());
        assert!(check_date(now - chrono::Duration::days(8), now, skew).is_err());
    }

    #[test]
    fn messages_are_1_to_256_characters() {
        assert_eq!(check_message(" 1 face at door ").unwrap(), "1 face at door");
        assert!(check_message("").is_err());
        assert!(check_message("a\u{0}b").is_err());
        assert!(check_message(&"é".repeat(256)).is_ok());
        assert!(check_message(&"é".repeat(257)).is_err());
    }
}
