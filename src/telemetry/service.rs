//! Storing readings and photos, and reading them back, for the owner of the
//! key that sent them.

use base64::Engine;
use chrono::Utc;
use serde_json::Value;
use vigil_wire::people::Identity;
use vigil_wire::telemetry::{GpsView, GyroscopeView, PhotoView, ReadingKind, ReadingView};

use super::device::DeviceId;
use super::devices::{Devices, StoredDevice, StoredPosition};
use super::fields::{ClockSkew, Fields};
use super::photo_index::PhotoIndex;
use super::photos::{PhotoFace, PhotoId, PhotoUpload, StoredMatch, StoredPhoto, COLLECTION};
use super::readings::{Gps, Gyroscope, Header, ParseContext, Reading, StoredReading};
use super::series::{Series, Stored};
use super::{InvalidReading, TelemetryError};
use crate::db::paging::{bson_precision, Page, PageRequest};
use crate::db::{Database, DbError};
use crate::disk::Storage;
use crate::error::{Coded, ErrorCode};
use crate::media::signed::UrlSigner;
use crate::media::{MediaId, SharedMediaStore};
use crate::people::faces::StoredEmbedding;
use crate::people::Recognition;
use crate::users::{UserId, Users};
use crate::vision::{decode_upload, DetectorPool, ImageLimits, VisionError};

#[derive(Debug, Clone, Copy)]
pub struct TelemetrySettings {
    pub skew: ClockSkew,
    pub image_limits: ImageLimits,
}

#[derive(Clone)]
pub struct Telemetry {
    pub devices: Devices,
    pub gyroscope: Series<StoredReading<Gyroscope>>,
    pub gps: Series<StoredReading<Gps>>,
    pub photos: Series<StoredPhoto>,
    pub index: PhotoIndex,
    pub detector: DetectorPool,
    pub recognition: Recognition,
    pub media: SharedMediaStore,
    pub users: Users,
    pub signer: UrlSigner,
    pub settings: TelemetrySettings,
    /// Photos are refused while the disk guard has paused storing.
    pub storage: Storage,
    db: Database,
}

/// What [`Telemetry`] works with besides the database.
pub struct TelemetryDeps {
    pub detector: DetectorPool,
    pub recognition: Recognition,
    pub media: SharedMediaStore,
    pub users: Users,
    pub signer: UrlSigner,
    pub storage: Storage,
}

impl Telemetry {
    pub fn new(db: &Database, deps: TelemetryDeps, settings: TelemetrySettings) -> Self {
        let TelemetryDeps {
            detector,
            recognition,
            media,
            users,
            signer,
            storage,
        } = deps;
        let model = recognition.recognizer.model_id();
        Self {
            devices: Devices::new(db),
            gyroscope: Series::new(db, "telemetry_gyroscope"),
            gps: Series::new(db, "telemetry_gps"),
            photos: Series::new(db, COLLECTION),
            index: PhotoIndex::new(db, model),
            detector,
            recognition,
            media,
            users,
            signer,
            settings,
            storage,
            db: db.clone(),
        }
    }

    /// The clock a reading is checked against: now.
    pub fn context(&self) -> ParseContext {
        ParseContext {
            now: Utc::now(),
            skew: self.settings.skew,
        }
    }

    pub async fn record_gyroscope(
        &self,
        owner: UserId,
        reading: Reading<Gyroscope>,
    ) -> Result<Stored<GyroscopeView>, TelemetryError> {
        let now = Utc::now();
        self.devices
            .touch(owner, &reading.header.device, now, None)
            .await?;
        let stored = self
            .gyroscope
            .insert_once(StoredReading::new(owner, reading, now))
            .await?;
        Ok(stored.map(|r| r.view()))
    }

    pub async fn record_gps(
        &self,
        owner: UserId,
        reading: Reading<Gps>,
    ) -> Result<Stored<GpsView>, TelemetryError> {
        let now = Utc::now();
        // A retry offers the same fix again, which changes nothing.
        let position = StoredPosition {
            collected_at: reading.header.collected_at,
            latitude: reading.data.latitude,
            longitude: reading.data.longitude,
        };
        self.devices
            .touch(owner, &reading.header.device, now, Some(&position))
            .await?;
        let stored = self
            .gps
            .insert_once(StoredReading::new(owner, reading, now))
            .await?;
        Ok(stored.map(|r| r.view()))
    }

    /// Checks, stores and recognises a photo. The quota is checked once the
    /// image is known to be one and not a retry; the unit is taken in the
    /// transaction that stores the photo, so only a stored photo is paid for.
    pub async fn record_photo(
        &self,
        owner: UserId,
        upload: PhotoUpload,
    ) -> Result<Stored<PhotoView>, TelemetryError> {
        let decoded = decode_upload(
            upload.bytes,
            self.settings.image_limits,
            self.detector.decode_budget(),
        )
        .await
        .map_err(not_an_image)?;
        let Header { device, collected_at } = upload.header;
        let now = Utc::now();
        // A retry is answered with what was stored, whatever the quota says
        // now; the lookup is the owner's own, so it reveals nothing of a
        // device another account holds.
        if let Some(existing) = self.photos.find(owner, &device, collected_at).await? {
            self.devices.touch(owner, &device, now, None).await?;
            return Ok(Stored::Existing(self.photo_view(&existing)));
        }
        // Before the device is touched: a refused photo stores nothing.
        self.storage.ensure_room()?;
        self.users.check_quota(owner).await?;
        self.devices.touch(owner, &device, now, None).await?;
        let detection = self.detector.detect(decoded.image.clone()).await?;
        let faces = detection.faces;
        let embeddings = self
            .recognition
            .recognizer
            .embed(decoded.image.clone(), faces.clone())
            .await?;
        self.index.catch_up(owner, now).await?;
        let id = PhotoId::new();
        let best_match = embeddings
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, self.index.nearest(owner, e.as_ref()?, id)?)))
            .min_by(|a, b| a.1.distance.total_cmp(&b.1.distance))
            .map(|(i, nearest)| StoredMatch {
                photo_id: nearest.photo,
                distance: nearest.distance,
                face_index: i as u32,
            });
        let image = MediaId::new(decoded.kind);
        self.media.put(image, &decoded.bytes).await?;
        let photo = StoredPhoto {
            id,
            user_id: owner,
            device_id: device,
            collected_at,
            received_at: bson_precision(now),
            width: detection.image_width,
            height: detection.image_height,
            faces: faces
                .into_iter()
                .zip(embeddings)
                .map(|(face, embedding)| PhotoFace {
                    face,
                    embedding: embedding.map(StoredEmbedding),
                })
                .collect(),
            model: self.recognition.recognizer.model_id().to_owned(),
            image,
            // Below the threshold, as the gallery's rule has it.
            recognized: best_match.is_some_and(|m| m.distance < self.recognition.rule.threshold),
            best_match,
        };
        let turn = Users::charge_turn(owner).await;
        let committed = crate::in_transaction!(self.db, TelemetryError, |session| async {
            self.photos.insert_in(&photo, session).await?;
            self.users.charge(owner, session).await?;
            Ok(())
        });
        drop(turn);
        let lost_race = matches!(&committed, Err(TelemetryError::Db(e)) if e.is_duplicate_key());
        match committed {
            Ok(()) => {}
            // Perhaps stored: the image stays while a document may name it.
            Err(err @ TelemetryError::Db(DbError::CommitUnknown(_))) => return Err(err),
            Err(err) => {
                if let Err(e) = self.media.delete(image).await {
                    tracing::warn!(error = %e, %image, "could not remove the image of an unstored photo");
                }
                if !lost_race {
                    return Err(err);
                }
                // A concurrent retry of the same photo was stored first.
                let existing = self.photos.find(owner, &photo.device_id, collected_at).await?;
                let existing =
                    existing.ok_or_else(|| DbError::Malformed("a duplicate photo vanished".to_owned()))?;
                return Ok(Stored::Existing(self.photo_view(&existing)));
            }
        }
        self.index.add(owner, photo.id, &photo.faces);
        tracing::info!(photo = %photo.id, faces = photo.faces.len(), recognized = photo.recognized, "telemetry photo stored");
        Ok(Stored::Created(self.photo_view(&photo)))
    }

    /// A photo with its faces named by the owner's subjects as they are now.
    pub fn photo_view(&self, photo: &StoredPhoto) -> PhotoView {
        let owners = [photo.user_id];
        let identities = photo
            .faces
            .iter()
            .map(|f| {
                let StoredEmbedding(embedding) = f.embedding.as_ref()?;
                Some(self.recognition.identity_of(&owners, embedding))
            })
            .collect::<Vec<Option<Identity>>>();
        photo.view(&self.signer, identities)
    }

    /// One reading of any kind from a JSON object with a `kind` field: a
    /// batch item (a photo is base64 in `photo`).
    pub async fn record_item(
        &self,
        owner: UserId,
        item: &Value,
        prefix: &str,
    ) -> Result<Stored<ReadingView>, TelemetryError> {
        let kind = match item.get("kind") {
            Some(Value::String(kind)) => ReadingKind::ALL.into_iter().find(|k| k.as_str() == kind),
            _ => None,
        };
        let Some(kind) = kind else {
            return Err(InvalidReading::one(
                &format!("{prefix}kind"),
                "must be one of \"gyroscope\", \"gps\", \"photo\"",
            )
            .into());
        };
        let cx = self.context();
        Ok(match kind {
            ReadingKind::Gyroscope => self
                .record_gyroscope(owner, Reading::parse(item, prefix, cx)?)
                .await?
                .map(ReadingView::Gyroscope),
            ReadingKind::Gps => self
                .record_gps(owner, Reading::parse(item, prefix, cx)?)
                .await?
                .map(ReadingView::Gps),
            ReadingKind::Photo => self
                .record_photo(owner, photo_from_json(item, prefix, cx)?)
                .await?
                .map(ReadingView::Photo),
        })
    }

    /// The owner's device, or `None` (also for another owner's).
    pub async fn device(&self, owner: UserId, device: &DeviceId) -> Result<Option<StoredDevice>, DbError> {
        self.devices.get(owner, device).await
    }

    pub async fn gyroscope_page(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &PageRequest,
    ) -> Result<Page<GyroscopeView>, DbError> {
        let page = self.gyroscope.readings(owner, device, page).await?;
        Ok(map_page(page, |r| r.view()))
    }

    pub async fn gps_page(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &PageRequest,
    ) -> Result<Page<GpsView>, DbError> {
        let page = self.gps.readings(owner, device, page).await?;
        Ok(map_page(page, |r| r.view()))
    }

    pub async fn photo_page(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &PageRequest,
    ) -> Result<Page<PhotoView>, DbError> {
        let page = self.photos.photos(owner, device, page).await?;
        Ok(map_page(page, |p| self.photo_view(p)))
    }
}

fn map_page<T, U>(page: Page<T>, f: impl Fn(&T) -> U) -> Page<U> {
    Page {
        items: page.items.iter().map(f).collect(),
        next_cursor: page.next_cursor,
    }
}

/// Bytes that are not an image the server reads are a bad `photo` field
/// (400, like any other bad field); too many bytes or pixels keep their 413.
fn not_an_image(err: VisionError) -> TelemetryError {
    match err.code() {
        ErrorCode::InvalidImage => InvalidReading::one("photo", err.to_string()).into(),
        _ => err.into(),
    }
}

/// A photo sent as JSON: `device_id`, `timestamp` and `photo` as base64
/// (standard alphabet, padding optional; a `data:image/…;base64,` prefix is
/// allowed).
pub fn photo_from_json(body: &Value, prefix: &str, cx: ParseContext) -> Result<PhotoUpload, InvalidReading> {
    let mut fields = Fields::of(body, prefix);
    let device = fields.device_id();
    let collected_at = fields.timestamp(cx.now, cx.skew);
    let bytes = fields.string("photo").and_then(|encoded| {
        let encoded = encoded
            .split_once("base64,")
            .map_or(encoded, |(_, data)| data)
            .trim();
        match base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')) {
            Ok(bytes) if !bytes.is_empty() => Some(bytes),
            Ok(_) => {
                fields.bad("photo", "is empty");
                None
            }
            Err(_) => {
                fields.bad("photo", "must be base64 (RFC 4648, standard alphabet)");
                None
            }
        }
    });
    finish_photo(fields, device, collected_at, bytes)
}

/// A photo sent as multipart: text fields `device_id` and `timestamp`, the
/// image in `photo`.
pub fn photo_from_parts(
    device_id: Option<String>,
    timestamp: Option<String>,
    photo: Option<Vec<u8>>,
    cx: ParseContext,
) -> Result<PhotoUpload, InvalidReading> {
    let mut object = serde_json::Map::new();
    if let Some(device) = device_id {
        object.insert("device_id".into(), Value::String(device));
    }
    if let Some(timestamp) = timestamp {
        object.insert("timestamp".into(), Value::String(timestamp));
    }
    let body = Value::Object(object);
    let mut fields = Fields::of(&body, "");
    let device = fields.device_id();
    let collected_at = fields.timestamp(cx.now, cx.skew);
    let bytes = match photo {
        Some(bytes) if !bytes.is_empty() => Some(bytes),
        Some(_) => {
            fields.bad("photo", "is empty");
            None
        }
        None => {
            fields.bad(
                "photo",
                "is missing: send the image as the multipart file field `photo`",
            );
            None
        }
    };
    finish_photo(fields, device, collected_at, bytes)
}

fn finish_photo(
    fields: Fields<'_>,
    device: Option<DeviceId>,
    collected_at: Option<chrono::DateTime<Utc>>,
    bytes: Option<Vec<u8>>,
) -> Result<PhotoUpload, InvalidReading> {
    let parsed = device
        .zip(collected_at)
        .zip(bytes)
        .map(|((device, collected_at), bytes)| PhotoUpload {
            header: Header { device, collected_at },
            bytes,
        });
    fields.finish(parsed)
}
