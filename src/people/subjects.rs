//! The `subjects` collection: who a user knows.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::{PeopleError, SubjectId, SubjectName, SubjectView};
use crate::db::paging::{find_page, Page, PageRequest};
use crate::db::{is_duplicate_key, Database, DbError};
use crate::media::signed::UrlSigner;
use crate::media::MediaId;
use crate::users::UserId;

/// The stored subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectRecord {
    #[serde(rename = "_id")]
    pub id: SubjectId,
    pub owner_id: UserId,
    pub name: String,
    /// Lower-cased name; unique per owner.
    pub name_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub face_count: u32,
    /// One enrolled face's crop, shown as the subject's thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<MediaId>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub updated_at: DateTime<Utc>,
}

impl SubjectRecord {
    pub fn view(&self, signer: &UrlSigner) -> SubjectView {
        SubjectView {
            id: self.id.to_string(),
            name: self.name.clone(),
            note: self.note.clone(),
            face_count: self.face_count,
            thumbnail_url: self.cover.map(|c| signer.url(&c)),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn name_error(name: &str) -> impl Fn(mongodb::error::Error) -> PeopleError + '_ {
    move |err| {
        if is_duplicate_key(&err) {
            PeopleError::NameTaken(name.to_owned())
        } else {
            PeopleError::Db(DbError::from_driver(err))
        }
    }
}

#[derive(Clone)]
pub struct Subjects {
    subjects: Collection<SubjectRecord>,
}

impl Subjects {
    pub fn new(db: &Database) -> Self {
        Self {
            subjects: db.collection("subjects"),
        }
    }

    pub async fn insert(&self, subject: &SubjectRecord) -> Result<(), PeopleError> {
        self.subjects
            .insert_one(subject)
            .await
            .map(drop)
            .map_err(name_error(&subject.name))
    }

    pub async fn count(&self, owner: UserId) -> Result<u64, DbError> {
        self.subjects
            .count_documents(doc! { "owner_id": owner.0 })
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn get(&self, owner: UserId, id: SubjectId) -> Result<Option<SubjectRecord>, DbError> {
        self.subjects
            .find_one(doc! { "_id": id.0, "owner_id": owner.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// Any owner's subject, for the gallery's change stream.
    pub async fn by_id(&self, id: SubjectId) -> Result<Option<SubjectRecord>, DbError> {
        self.subjects
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(DbError::from_driver)
    }

    /// Those of `ids` that are subjects (`owner`'s, or anyone's with `None`).
    pub async fn existing(&self, owner: Option<UserId>, ids: &[ObjectId]) -> Result<Vec<ObjectId>, DbError> {
        let mut filter = doc! { "_id": { "$in": ids } };
        if let Some(owner) = owner {
            filter.insert("owner_id", owner.0);
        }
        crate::db::ids_matching(&self.subjects, filter).await
    }

    /// Every subject's (id, owner, name), for loading the gallery.
    pub async fn all(&self) -> Result<Vec<SubjectRecord>, DbError> {
        self.subjects
            .find(doc! {})
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)
    }

    pub async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<SubjectRecord>, DbError> {
        find_page(
            &self.subjects,
            doc! { "owner_id": owner.0 },
            "created_at",
            page,
            |s| (s.created_at, s.id.0),
        )
        .await
    }

    /// Renames and/or re-notes; `None` when the owner has no such subject.
    pub async fn update(
        &self,
        owner: UserId,
        id: SubjectId,
        name: Option<&SubjectName>,
        note: Option<Option<String>>,
    ) -> Result<Option<SubjectRecord>, PeopleError> {
        let mut set = doc! { "updated_at": BsonDateTime::now() };
        let mut unset = Document::new();
        if let Some(name) = name {
            set.insert("name", name.as_str());
            set.insert("name_key", name.key());
        }
        match note {
            Some(Some(note)) => {
                set.insert("note", note);
            }
            Some(None) => {
                unset.insert("note", "");
            }
            None => {}
        }
        let mut update = doc! { "$set": set };
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        self.subjects
            .find_one_and_update(doc! { "_id": id.0, "owner_id": owner.0 }, update)
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .map_err(name_error(name.map_or("", SubjectName::as_str)))
    }

    /// One more (or fewer) face, in the enrolment's transaction. A cover is
    /// set when the subject has none; `uncover` replaces a removed one.
    pub async fn count_face(
        &self,
        id: SubjectId,
        delta: i32,
        cover: Option<MediaId>,
        session: &mut ClientSession,
    ) -> Result<(), DbError> {
        let mut set = doc! { "updated_at": BsonDateTime::now() };
        if let Some(cover) = cover {
            set.insert("cover", cover.to_string());
        }
        self.subjects
            .update_one(
                doc! { "_id": id.0 },
                doc! { "$inc": { "face_count": delta }, "$set": set },
            )
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Points the cover at another face (or none), when the face it showed goes.
    pub async fn replace_cover(
        &self,
        id: SubjectId,
        gone: MediaId,
        next: Option<MediaId>,
        session: &mut ClientSession,
    ) -> Result<(), DbError> {
        let filter = doc! { "_id": id.0, "cover": gone.to_string() };
        let update = match next {
            Some(next) => doc! { "$set": { "cover": next.to_string() } },
            None => doc! { "$unset": { "cover": "" } },
        };
        self.subjects
            .update_one(filter, update)
            .session(session)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    /// Removes the subject: `owner`'s, or anyone's with `None` (`vigil erase`).
    pub async fn take(
        &self,
        owner: Option<UserId>,
        id: SubjectId,
        session: &mut ClientSession,
    ) -> Result<Option<SubjectRecord>, DbError> {
        let mut filter = doc! { "_id": id.0 };
        if let Some(owner) = owner {
            filter.insert("owner_id", owner.0);
        }
        self.subjects
            .find_one_and_delete(filter)
            .session(session)
            .await
            .map_err(DbError::from_driver)
    }
}

impl crate::alarm_rules::service::SubjectDirectory for Subjects {
    fn existing<'a>(
        &'a self,
        owner: Option<UserId>,
        ids: &'a [ObjectId],
    ) -> BoxFuture<'a, Result<Vec<ObjectId>, DbError>> {
        Box::pin(Subjects::existing(self, owner, ids))
    }
}
