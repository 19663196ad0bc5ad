//! The `visitors` collection: one recurring stranger each, per owner, with
//! up to [`PROTOTYPES`] of their faces' embeddings to recognise them by.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::VisitorId;
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{Database, DbError, StoredEmbedding};
use crate::detections::DetectionId;
use crate::media::{MediaId, MediaReferences};
use crate::users::UserId;
use vigil_wire::people::VisitorTag;

/// Faces kept per visitor to match new faces against: the first ones seen.
pub const PROTOTYPES: usize = 5;
/// Sources listed per visitor (a camera, "upload", a client's label).
pub const SOURCES: usize = 20;

/// One of the faces a visitor is recognised by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prototype {
    pub detection_id: DetectionId,
    pub face_index: u32,
    pub embedding: StoredEmbedding,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorRecord {
    #[serde(rename = "_id")]
    pub id: VisitorId,
    /// The owner of the faces grouped; `None` for the cameras' (admins').
    pub owner_id: Option<UserId>,
    /// Stable per owner: "Visitor {number}".
    pub number: i64,
    pub model: String,
    pub prototypes: Vec<Prototype>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub last_seen: DateTime<Utc>,
    /// Detections stored with this visitor; 0 while the first one is
    /// being stored (or when it never was).
    pub sightings: i64,
    pub sources: Vec<String>,
    /// The first face, cut from its frame (150×150 JPEG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<MediaId>,
    /// The detection the cover was cut from: deleting it takes the cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_detection: Option<DetectionId>,
}

impl VisitorRecord {
    pub fn label(&self) -> String {
        format!("Visitor {}", self.number)
    }

    /// The tag a face carries as this visitor's `sighting`-th sighting.
    pub fn tag(&self, sighting: i64) -> VisitorTag {
        VisitorTag {
            id: self.id.to_string(),
            label: self.label(),
            sightings: u64::try_from(sighting).unwrap_or(0),
        }
    }
}

/// Whose visitors a caller may see: their own, and for an admin the cameras' too.
#[derive(Debug, Clone, Copy)]
pub struct VisitorScope {
    pub user: UserId,
    pub admin: bool,
}

impl VisitorScope {
    fn filter(&self) -> Document {
        if self.admin {
            doc! { "owner_id": { "$in": [Bson::ObjectId(self.user.0), Bson::Null] } }
        } else {
            doc! { "owner_id": self.user.0 }
        }
    }
}

fn owner_bson(owner: Option<UserId>) -> Bson {
    owner.map_or(Bson::Null, |o| Bson::ObjectId(o.0))
}

#[derive(Clone)]
pub struct Visitors {
    visitors: Collection<VisitorRecord>,
    numbers: Collection<Document>,
}

impl Visitors {
    pub fn new(db: &Database) -> Self {
        Self {
            visitors: db.collection("visitors"),
            numbers: db.collection("visitor_numbers"),
        }
    }

    /// Every visitor of `owner` whose faces are of `model`.
    pub async fn of_owner(&self, owner: Option<UserId>, model: &str) -> Result<Vec<VisitorRecord>, DbError> {
        self.visitors
            .find(doc! { "owner_id": owner_bson(owner), "model": model })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    /// The owner's next visitor number (1 for the first).
    pub async fn next_number(&self, owner: Option<UserId>) -> Result<i64, DbError> {
        let key = owner.map_or_else(|| "cameras".to_owned(), |o| o.to_string());
        let counter = self
            .numbers
            .find_one_and_update(doc! { "_id": key }, doc! { "$inc": { "next": 1_i64 } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(DbError::from_driver)?;
        Ok(counter.and_then(|c| c.get_i64("next").ok()).unwrap_or(1))
    }

    pub async fn insert(&self, visitor: &VisitorRecord) -> Result<(), DbError> {
        self.visitors
            .insert_one(visitor)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Counts one sighting stored at `at` from `source`; `prototype` joins
    /// the faces the visitor is recognised by while there are fewer than
    /// [`PROTOTYPES`].
    pub async fn seen(
        &self,
        id: VisitorId,
        at: DateTime<Utc>,
        source: &str,
        prototype: Option<&Prototype>,
    ) -> Result<(), DbError> {
        let at = BsonDateTime::from_chrono(at);
        self.visitors
            .update_one(
                doc! { "_id": id.0 },
                doc! { "$inc": { "sightings": 1_i64 }, "$max": { "last_seen": at }, "$min": { "first_seen": at } },
            )
            .await
            .map_err(DbError::from_driver)?;
        self.visitors
            .update_one(
                doc! { "_id": id.0, format!("sources.{}", SOURCES - 1): { "$exists": false } },
                doc! { "$addToSet": { "sources": source } },
            )
            .await
            .map_err(DbError::from_driver)?;
        if let Some(prototype) = prototype {
            let prototype =
                mongodb::bson::to_bson(prototype).map_err(|e| DbError::Malformed(e.to_string()))?;
            self.visitors
                .update_one(
                    doc! { "_id": id.0, format!("prototypes.{}", PROTOTYPES - 1): { "$exists": false } },
                    doc! { "$push": { "prototypes": prototype } },
                )
                .await
                .map_err(DbError::from_driver)?;
        }
        Ok(())
    }

    /// Whoever's it is (the caller has it from a detection of theirs).
    pub async fn by_id(&self, id: VisitorId) -> Result<Option<VisitorRecord>, DbError> {
        self.visitors
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn get(&self, scope: VisitorScope, id: VisitorId) -> Result<Option<VisitorRecord>, DbError> {
        let mut filter = scope.filter();
        filter.insert("_id", id.0);
        self.visitors.find_one(filter).await.map_err(DbError::from_driver)
    }

    /// Most recently seen first; a visitor whose first detection was never
    /// stored is not listed.
    pub async fn list(
        &self,
        scope: VisitorScope,
        page: &PageRequest,
    ) -> Result<Page<VisitorRecord>, DbError> {
        let mut filter = scope.filter();
        filter.insert("sightings", doc! { "$gt": 0_i64 });
        find_page(&self.visitors, filter, "last_seen", page, |v| {
            (v.last_seen, v.id.0)
        })
        .await
    }

    pub async fn replace(&self, visitor: &VisitorRecord) -> Result<(), DbError> {
        self.visitors
            .replace_one(doc! { "_id": visitor.id.0 }, visitor)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    pub async fn delete(&self, id: VisitorId) -> Result<(), DbError> {
        self.visitors
            .delete_one(doc! { "_id": id.0 })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Deletes the visitors last seen before `cutoff` (their embeddings are
    /// unknown faces' biometric data); returns their covers, whose images
    /// are to go too.
    pub async fn delete_last_seen_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<MediaId>, DbError> {
        let filter = doc! { "last_seen": { "$lt": BsonDateTime::from_chrono(cutoff) } };
        let expired: Vec<VisitorRecord> = self
            .visitors
            .find(filter.clone())
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = expired.iter().map(|v| v.id.0).collect();
        let mut again = filter;
        again.insert("_id", doc! { "$in": ids });
        self.visitors
            .delete_many(again)
            .await
            .map_err(DbError::from_driver)?;
        Ok(expired.iter().filter_map(|v| v.cover).collect())
    }

    /// Takes a deleted detection out of a visitor: one sighting fewer, its
    /// faces no longer prototypes, its cover gone if cut from it. Returns
    /// the visitor as it is now (`None`: already gone).
    pub async fn drop_detection(
        &self,
        id: VisitorId,
        detection: DetectionId,
    ) -> Result<Option<VisitorRecord>, DbError> {
        self.visitors
            .update_one(
                doc! { "_id": id.0 },
                doc! {
                    "$pull": { "prototypes": { "detection_id": detection.0 } },
                    "$inc": { "sightings": -1_i64 },
                },
            )
            .await
            .map_err(DbError::from_driver)?;
        self.visitors
            .update_one(
                doc! { "_id": id.0, "cover_detection": detection.0 },
                doc! { "$unset": { "cover": "", "cover_detection": "" } },
            )
            .await
            .map_err(DbError::from_driver)?;
        self.visitors
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// True when a visitor's cover is this image.
    pub async fn references(&self, media: MediaId) -> Result<bool, DbError> {
        Ok(self
            .visitors
            .find_one(doc! { "cover": media.to_string() })
            .await
            .map_err(DbError::from_driver)?
            .is_some())
    }
}

impl MediaReferences for Visitors {
    fn references(&self, id: MediaId) -> futures_util::future::BoxFuture<'_, Result<bool, DbError>> {
        Box::pin(Visitors::references(self, id))
    }
}
