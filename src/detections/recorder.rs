//! Turning a searched image into durable records: images first, documents
//! second, alarm broadcast last. Shared by uploads and cameras.
//!
//! The documents (detection, alarm, and the unit of quota an upload pays)
//! are one transaction: after a crash or an outage at any point either all
//! of them are stored or none is, so a user is charged exactly for the
//! detections kept. An image whose documents were never committed is the
//! orphan sweep's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use image::RgbImage;
use mongodb::bson::oid::ObjectId;

use vigil_wire::people::{Identity, SeenFace, UnknownFace};

use super::{
    AlarmGate, DetectionId, DetectionRecord, DetectionScope, Detections, FaceIdentifier, FacePrints, Grouped,
    Identified, MediaRefs, SeenFaceRecord, Source, StrangerFace, Strangers, Viewer, MODEL_NAME,
};
use crate::alarms::{Alarm, AlarmBus, AlarmId, Alarms};
use crate::db::{Database, DbError, Transient};
use crate::disk::Storage;
use crate::error::{Coded, ErrorCode};
use crate::idempotency::{Claim, IdempotencyKeys, Produced};
use crate::media::{ImageKind, MediaError, MediaId, SharedMediaStore};
use crate::users::{UserError, UserId, Users};
use crate::vision::{annotate_jpeg, Detection, VisionError};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Quota(#[from] UserError),
    /// The job's frame has its detection already (a job run again after
    /// its worker died): nothing was stored this time.
    #[error("this frame of the job is recorded already")]
    AlreadyRecorded,
    /// Another request holds the `Idempotency-Key`: nothing was stored;
    /// that request's result is the answer.
    #[error("the idempotency key is taken")]
    KeyTaken,
}

impl Coded for RecordError {
    fn code(&self) -> ErrorCode {
        match self {
            RecordError::Media(e) => e.code(),
            RecordError::Db(e) => e.code(),
            RecordError::Vision(e) => e.code(),
            RecordError::Quota(e) => e.code(),
            RecordError::AlreadyRecorded | RecordError::KeyTaken => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            RecordError::Db(e) => e.retry_after(),
            RecordError::Quota(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl Transient for RecordError {
    fn is_transient(&self) -> bool {
        match self {
            RecordError::Db(e) => e.is_transient(),
            RecordError::Quota(e) => e.is_transient(),
            RecordError::Media(_)
            | RecordError::Vision(_)
            | RecordError::AlreadyRecorded
            | RecordError::KeyTaken => false,
        }
    }
}

/// One image and what the detector found in it.
pub struct Frame {
    pub owner: Option<UserId>,
    pub source: Source,
    pub camera_id: Option<String>,
    pub original: Original,
    pub image: Arc<RgbImage>,
    pub detection: Detection,
    pub duration_ms: f64,
    /// When it raises an alarm.
    pub alarm: AlarmTrigger,
    /// When the frame was taken, if not now (an edge agent's alarm, sent
    /// late): the detection's and the alarm's time.
    pub captured_at: Option<DateTime<Utc>>,
    /// The alarm's message as its sender wrote it, instead of vigil's own.
    pub message: Option<String>,
    /// The job and frame it is, for a job's: one detection each, however
    /// often the job is run.
    pub job: Option<JobFrame>,
}

/// When a frame raises an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmTrigger {
    /// When it has faces and its owner's alarm rule agrees: uploads, and
    /// camera frames (their policy chose them).
    IfFaces,
    /// Never: a video frame the alarm policy passed over.
    Never,
    /// Always: an alarm another detector (an edge agent) raised.
    Always,
}

/// The image as received (uploads), as captured (cameras, JPEG), or
/// already in the store (an asynchronous upload's, stored when accepted).
pub enum Original {
    Bytes { bytes: Vec<u8>, kind: ImageKind },
    Stored(MediaId),
}

/// Frame `index` of job `job` (0 for a single image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobFrame {
    pub job: ObjectId,
    pub index: u32,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub detection: DetectionRecord,
    pub alarm: Option<Alarm>,
}

#[derive(Clone)]
pub struct Recorder {
    db: Database,
    identifier: Arc<dyn FaceIdentifier>,
    gate: Arc<dyn AlarmGate>,
    strangers: Arc<dyn Strangers>,
    pub detections: Detections,
    prints: FacePrints,
    pub alarms: Alarms,
    pub media: SharedMediaStore,
    pub bus: AlarmBus,
    users: Users,
    keys: IdempotencyKeys,
    /// Whether the disk guard lets camera frames' images be stored.
    storage: Storage,
}

impl Recorder {
    pub fn new(
        db: &Database,
        media: SharedMediaStore,
        bus: AlarmBus,
        identifier: Arc<dyn FaceIdentifier>,
        gate: Arc<dyn AlarmGate>,
        strangers: Arc<dyn Strangers>,
        storage: Storage,
    ) -> Self {
        Self {
            db: db.clone(),
            identifier,
            gate,
            strangers,
            detections: Detections::new(db),
            prints: FacePrints::new(db),
            alarms: Alarms::new(db),
            media,
            bus,
            users: Users::new(db),
            keys: IdempotencyKeys::new(db),
            storage,
        }
    }

    /// Stores a camera's frame. While the disk guard has paused storing,
    /// its detection and alarm are still recorded, without their images
    /// (`image_kept: false`): knowing that someone was at the door matters
    /// more than the picture, and a camera cannot be told to retry later.
    pub async fn record_camera(&self, frame: Frame) -> Result<Recorded, RecordError> {
        let keep_images = !self.storage.is_paused();
        self.store(frame, None, None, keep_images).await
    }

    /// Stores an asynchronous upload's frame (paid for when it was
    /// accepted), or a camera's whatever the disk guard says.
    pub async fn record(&self, frame: Frame) -> Result<Recorded, RecordError> {
        self.store(frame, None, None, true).await
    }

    /// Stores an upload or a video's frame and takes one unit of `payer`'s
    /// quota with it; [`RecordError::Quota`] when a concurrent request took
    /// the last one. With a `claim`, the idempotency key is taken with it
    /// ([`RecordError::KeyTaken`] when another request has it).
    pub async fn record_paid(
        &self,
        frame: Frame,
        payer: UserId,
        claim: Option<&Claim>,
    ) -> Result<Recorded, RecordError> {
        self.store(frame, Some(payer), claim, true).await
    }

    async fn store(
        &self,
        frame: Frame,
        payer: Option<UserId>,
        claim: Option<&Claim>,
        keep_images: bool,
    ) -> Result<Recorded, RecordError> {
        let image = frame.image.clone();
        let faces = frame.detection.faces.clone();
        let conflicts_for = if frame.job.is_some() {
            crate::db::ABANDONED_TRANSACTION_WAIT
        } else {
            crate::db::TRANSACTION_RETRY_BUDGET
        };
        // Recognition and drawing are independent: side by side.
        let identify = self
            .identifier
            .identify(Viewer::of(frame.owner), image.clone(), faces.clone());
        let annotate = tokio::task::spawn_blocking(move || annotate_jpeg(&image, &faces));
        let (mut identified, annotated) = tokio::join!(identify, annotate);
        let annotated = annotated.map_err(|e| VisionError::Encode(e.to_string()))??;
        let detection_id = DetectionId::new();
        // No cover for a new visitor while the disk guard keeps images out.
        let cover_from = keep_images.then(|| frame.image.clone());
        let strangers = self
            .group_strangers(
                frame.owner,
                detection_id,
                cover_from,
                &frame.detection.faces,
                &mut identified,
            )
            .await;
        let identities: Vec<_> = identified
            .iter()
            .map(|i| i.as_ref().map(|i| i.identity.clone()))
            .collect();

        // Not kept: the ids are still reserved (the documents' schema names
        // images), but nothing is written under them.
        let keep_images = keep_images || matches!(frame.original, Original::Stored(_));
        let (media, written) = match &frame.original {
            Original::Bytes { kind, .. } if !keep_images => (
                MediaRefs {
                    original: MediaId::new(*kind),
                    annotated: MediaId::new(ImageKind::Jpeg),
                },
                Written::Nothing,
            ),
            Original::Bytes { kind, .. } => {
                let media = MediaRefs {
                    original: MediaId::new(*kind),
                    annotated: MediaId::new(ImageKind::Jpeg),
                };
                (media, Written::Both(media))
            }
            Original::Stored(original) => {
                let annotated = MediaId::new(ImageKind::Jpeg);
                let media = MediaRefs {
                    original: *original,
                    annotated,
                };
                (media, Written::Annotated(annotated))
            }
        };
        // Durable images before any document points at them.
        let stored = async {
            if !keep_images {
                return Ok(());
            }
            if let Original::Bytes { bytes, .. } = &frame.original {
                self.media.put(media.original, bytes).await?;
            }
            self.media.put(media.annotated, &annotated).await
        }
        .await;
        if let Err(err) = stored {
            self.remove_written(written).await;
            return Err(err.into());
        }

        let face_count = u32::try_from(frame.detection.faces.len()).unwrap_or(u32::MAX);
        let now = frame.captured_at.unwrap_or_else(Utc::now);
        let raises = match frame.alarm {
            // The owner's rule decides; the detection is stored either way.
            AlarmTrigger::IfFaces => {
                face_count > 0
                    && self
                        .gate
                        .raises(frame.owner, &frame.source, &identities, now)
                        .await
            }
            AlarmTrigger::Never => false,
            AlarmTrigger::Always => true,
        };
        let alarm = raises.then(|| Alarm {
            id: AlarmId::new(),
            message: frame.message.clone().unwrap_or_else(|| {
                Alarm::message_for(
                    face_count,
                    &identities,
                    frame.source.as_str(),
                    frame.camera_id.is_some(),
                )
            }),
            date: now,
            image: media.annotated,
            image_kept: keep_images,
            face_count,
            source: frame.source.to_string(),
            camera_id: frame.camera_id.clone(),
            detection_id: detection_id.0,
            user_id: frame.owner,
            identities: identities.clone(),
        });
        let record = DetectionRecord {
            id: detection_id,
            user_id: frame.owner,
            source: frame.source,
            camera_id: frame.camera_id,
            created_at: now,
            width: frame.detection.image_width,
            height: frame.detection.image_height,
            faces: frame
                .detection
                .faces
                .into_iter()
                .zip(identities.into_iter().chain(std::iter::repeat(None)))
                .map(|(face, identity)| SeenFace { face, identity })
                .collect(),
            face_count,
            model: MODEL_NAME.to_owned(),
            duration_ms: frame.duration_ms,
            media,
            image_kept: keep_images,
            alarm_id: alarm.as_ref().map(|a| a.id.0),
            job_id: frame.job.map(|j| j.job),
            job_frame: frame.job.map(|j| j.index),
        };

        let prints = prints_of(&record, &identified, &strangers);

        let turn = match payer {
            Some(payer) => Some(Users::charge_turn(payer).await),
            None => None,
        };
        let committed = crate::in_transaction!(self.db, RecordError, within conflicts_for, |session| async {
            if let Some(claim) = claim {
                if !self
                    .keys
                    .claim(claim, Produced::Detection(record.id.0), session)
                    .await?
                {
                    return Err(RecordError::KeyTaken);
                }
            }
            match self.detections.insert(&record, session).await {
                Err(err) if record.job_id.is_some() && err.is_duplicate_key() => {
                    return Err(RecordError::AlreadyRecorded)
                }
                other => other?,
            }
            self.prints.insert_all(&prints, session).await?;
            if let Some(alarm) = &alarm {
                self.alarms.insert(alarm, Some(session)).await?;
            }
            // Last: the account stays written for the shortest time before
            // the commit, so a concurrent charge elsewhere rarely conflicts.
            if let Some(payer) = payer {
                self.users.charge(payer, session).await?;
            }
            Ok(())
        });
        drop(turn);
        match committed {
            Ok(()) => {}
            Err(err @ RecordError::Db(DbError::CommitUnknown(_))) => {
                // Perhaps stored: the images must stay while a document may name them.
                return Err(err);
            }
            Err(err) => {
                self.remove_written(written).await;
                return Err(err);
            }
        }
        if let Some(alarm) = &alarm {
            self.bus.publish(alarm.clone());
            tracing::info!(alarm = %alarm.id, faces = face_count, source = %alarm.source, "alarm raised");
        }
        // After the alarm, which must not wait for it; before the answer,
        // so a caller who lists visitors next sees the sighting counted.
        if !strangers.is_empty() {
            self.strangers
                .seen(record.id, record.created_at, record.source.as_str(), strangers)
                .await;
        }
        Ok(Recorded {
            detection: record,
            alarm,
        })
    }

    /// Groups the frame's unknown faces into visitors: each gets its
    /// visitor's tag. Returns the faces grouped, to be counted once stored.
    async fn group_strangers(
        &self,
        owner: Option<UserId>,
        detection: DetectionId,
        cover_from: Option<Arc<RgbImage>>,
        faces: &[crate::vision::Face],
        identified: &mut [Option<Identified>],
    ) -> Vec<(StrangerFace, Grouped)> {
        let unknown: Vec<(usize, StrangerFace, &'static str)> = identified
            .iter()
            .enumerate()
            .filter_map(|(index, i)| {
                let i = i.as_ref()?;
                let bbox = faces.get(index)?.bbox;
                matches!(i.identity, Identity::Unknown(_)).then(|| {
                    let face = StrangerFace {
                        face_index: u32::try_from(index).unwrap_or(u32::MAX),
                        embedding: i.embedding,
                        bbox,
                    };
                    (index, face, i.model)
                })
            })
            .collect();
        let Some(&(_, _, model)) = unknown.first() else {
            return Vec::new();
        };
        let faces: Vec<StrangerFace> = unknown.iter().map(|(_, f, _)| f.clone()).collect();
        let grouped = self
            .strangers
            .group(owner, model, detection, cover_from, faces)
            .await;
        let mut counted = Vec::new();
        for ((index, face, _), grouped) in unknown.into_iter().zip(grouped) {
            let (Some(grouped), Some(identified)) = (grouped, identified[index].as_mut()) else {
                continue;
            };
            identified.identity = Identity::Unknown(UnknownFace::of_visitor(grouped.tag.clone()));
            counted.push((face, grouped));
        }
        counted
    }

    /// Deletes one of the caller's detections with its alarm, then its
    /// images. `Ok(false)` when the caller has no such detection. The two
    /// documents go in one transaction: a database failure on the way
    /// leaves both, never an alarm whose detection is gone. An image that
    /// cannot be removed is left to the orphan sweep.
    pub async fn delete(&self, scope: DetectionScope, id: DetectionId) -> Result<bool, RecordError> {
        let record = crate::in_transaction!(self.db, |session| async {
            let Some(record) = self.detections.take(scope, id, session).await? else {
                return Ok(None);
            };
            self.alarms.delete_for_detection(id.0, session).await?;
            let visitors = self.prints.visitors_of(id.0, session).await?;
            self.prints.delete_for(&[id.0], session).await?;
            Ok(Some((record, visitors)))
        })?;
        let Some((record, visitors)) = record else {
            return Ok(false);
        };
        if !visitors.is_empty() {
            self.strangers.detection_deleted(id, visitors).await;
        }
        if record.image_kept {
            self.remove_images(record.media).await;
        }
        tracing::info!(detection = %id, "detection deleted");
        Ok(true)
    }

    /// Removes the images a failed store wrote (never an original it was
    /// given stored: that one is the job's, which may run again).
    async fn remove_written(&self, written: Written) {
        match written {
            Written::Both(media) => self.remove_images(media).await,
            Written::Annotated(id) => self.remove_image(id).await,
            Written::Nothing => {}
        }
    }

    async fn remove_images(&self, media: MediaRefs) {
        for id in [media.original, media.annotated] {
            self.remove_image(id).await;
        }
    }

    async fn remove_image(&self, id: MediaId) {
        if let Err(err) = self.media.delete(id).await {
            tracing::warn!(media = %id, error = %err, "could not remove image; the orphan sweep will");
        }
    }
}

/// The embedded faces of `record`, to be stored with it.
fn prints_of(
    record: &DetectionRecord,
    identified: &[Option<Identified>],
    strangers: &[(StrangerFace, Grouped)],
) -> Vec<SeenFaceRecord> {
    identified
        .iter()
        .enumerate()
        .filter_map(|(index, identified)| {
            let identified = identified.as_ref()?;
            Some(SeenFaceRecord {
                id: ObjectId::new(),
                detection_id: record.id,
                face_index: u32::try_from(index).ok()?,
                user_id: record.user_id,
                created_at: record.created_at,
                model: identified.model.to_owned(),
                embedding: crate::db::StoredEmbedding(identified.embedding),
                subject_id: identified
                    .identity
                    .recognised()
                    .and_then(|r| ObjectId::parse_str(&r.subject_id).ok()),
                visitor_id: strangers
                    .iter()
                    .find(|(face, _)| face.face_index as usize == index)
                    .map(|(_, grouped)| grouped.visitor),
            })
        })
        .collect()
}

/// The images one store wrote.
#[derive(Clone, Copy)]
enum Written {
    Both(MediaRefs),
    Annotated(MediaId),
    Nothing,
}
