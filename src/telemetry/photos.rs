//! Photos from devices: the image in the media store, its faces with their
//! embeddings in `telemetry_photos`, and whether it showed someone an
//! earlier photo of the same owner showed.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use mongodb::bson::doc;
use serde::{Deserialize, Serialize};
use vigil_wire::people::{Identity, SeenFace};
use vigil_wire::telemetry::{PhotoMatch, PhotoView};

use super::device::DeviceId;
use super::readings::Header;
use super::series::Series;
use crate::db::DbError;
use crate::media::signed::UrlSigner;
use crate::media::{MediaId, MediaReferences};
use crate::people::faces::StoredEmbedding;
use crate::users::UserId;
use crate::vision::Face;

pub const COLLECTION: &str = "telemetry_photos";

crate::object_id!(
    /// A stored photo's id: 24 hex digits.
    PhotoId
);

/// A photo as received, before anything is spent on it.
pub struct PhotoUpload {
    pub header: Header,
    pub bytes: Vec<u8>,
}

/// A face of a photo and its embedding (absent when it could not be embedded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoFace {
    pub face: Face,
    #[serde(default)]
    pub embedding: Option<StoredEmbedding>,
}

/// The closest earlier face, as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StoredMatch {
    pub photo_id: PhotoId,
    pub distance: f32,
    pub face_index: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPhoto {
    #[serde(rename = "_id")]
    pub id: PhotoId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub collected_at: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub received_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<PhotoFace>,
    /// The recognizer that computed the embeddings.
    pub model: String,
    pub image: MediaId,
    pub recognized: bool,
    #[serde(default)]
    pub best_match: Option<StoredMatch>,
}

impl StoredPhoto {
    /// The photo as the API shows it. Identities are given by the caller,
    /// worked out now from the current gallery: a subject erased since is
    /// no longer named.
    pub fn view(&self, signer: &UrlSigner, identities: Vec<Option<Identity>>) -> PhotoView {
        let faces: Vec<SeenFace> = self
            .faces
            .iter()
            .zip(identities.into_iter().chain(std::iter::repeat(None)))
            .map(|(f, identity)| SeenFace {
                face: f.face,
                identity,
            })
            .collect();
        let best_match = self.best_match.map(|m| PhotoMatch {
            photo_id: m.photo_id.to_string(),
            distance: m.distance,
            face_index: m.face_index,
            subject: faces
                .get(m.face_index as usize)
                .and_then(|f| f.identity.as_ref())
                .and_then(Identity::recognised)
                .cloned(),
        });
        PhotoView {
            id: self.id.to_string(),
            device_id: self.device_id.to_string(),
            collected_at: self.collected_at,
            received_at: self.received_at,
            width: self.width,
            height: self.height,
            faces,
            recognized: self.recognized,
            best_match,
            image_url: signer.url(&self.image),
        }
    }
}

impl Series<StoredPhoto> {
    pub async fn photos(
        &self,
        owner: UserId,
        device: &DeviceId,
        page: &crate::db::paging::PageRequest,
    ) -> Result<crate::db::paging::Page<StoredPhoto>, DbError> {
        self.page(owner, device, page, |p| (p.collected_at, p.id.0)).await
    }
}

/// The orphan sweep must not take a photo's image.
pub struct PhotoImages(pub Series<StoredPhoto>);

impl MediaReferences for PhotoImages {
    fn references(&self, id: MediaId) -> BoxFuture<'_, Result<bool, DbError>> {
        Box::pin(async move {
            Ok(self
                .0
                .collection()
                .find_one(doc! { "image": id.to_string() })
                .await
                .map_err(DbError::from_driver)?
                .is_some())
        })
    }
}
