//! What the API does with visitors: list them and their sightings, name one
//! (it becomes a subject), merge two that are one person, erase one.
//!
//! A face's visitor tag is written into its detection and alarm when it is
//! stored; naming, merging and erasing rewrite those tags wherever they are,
//! so a detection never names a visitor that is gone.

use std::collections::HashMap;

use mongodb::bson::oid::ObjectId;
use vigil_wire::people::{Identity, Recognised, UnknownFace, VisitorTag};

use super::repository::{VisitorRecord, VisitorScope, Visitors, PROTOTYPES, SOURCES};
use super::VisitorId;
use crate::alarms::Alarms;
use crate::db::paging::{Page, PageRequest};
use crate::db::DbError;
use crate::detections::{DetectionId, DetectionRecord, Detections, FacePrints};
use crate::error::{Coded, ErrorCode};
use crate::media::{MediaId, SharedMediaStore};
use crate::people::{EnrolFrom, MatchRule, NewSubject, People, PeopleError, SubjectId, SubjectRecord};
use crate::vision::Embedding;

#[derive(Debug, thiserror::Error)]
pub enum VisitorError {
    #[error("no visitor with this id")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    People(#[from] PeopleError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for VisitorError {
    fn code(&self) -> ErrorCode {
        match self {
            VisitorError::NotFound => ErrorCode::NotFound,
            VisitorError::Invalid(_) => ErrorCode::ValidationFailed,
            VisitorError::People(e) => e.code(),
            VisitorError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            VisitorError::People(e) => e.retry_after(),
            VisitorError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Whom a named visitor becomes.
#[derive(Debug)]
pub enum NameAs {
    New(NewSubject),
    Existing(SubjectId),
}

/// One detection a visitor was seen in.
#[derive(Debug, Clone)]
pub struct VisitorSighting {
    pub detection: DetectionRecord,
    pub face_index: u32,
}

/// The most visitors merged in one call.
pub const MAX_MERGE: usize = 20;

#[derive(Clone)]
pub struct VisitorService {
    pub visitors: Visitors,
    pub prints: FacePrints,
    pub detections: Detections,
    pub alarms: Alarms,
    pub people: People,
    pub rule: MatchRule,
    pub media: SharedMediaStore,
}

impl VisitorService {
    pub async fn list(
        &self,
        scope: VisitorScope,
        page: &PageRequest,
    ) -> Result<Page<VisitorRecord>, VisitorError> {
        Ok(self.visitors.list(scope, page).await?)
    }

    pub async fn get(&self, scope: VisitorScope, id: VisitorId) -> Result<VisitorRecord, VisitorError> {
        self.visitors.get(scope, id).await?.ok_or(VisitorError::NotFound)
    }

    /// The visitor's sightings whose faces are still kept, newest first.
    pub async fn sightings(
        &self,
        scope: VisitorScope,
        id: VisitorId,
        page: &PageRequest,
    ) -> Result<(VisitorRecord, Page<VisitorSighting>), VisitorError> {
        let visitor = self.get(scope, id).await?;
        let prints = self.prints.of_visitor(visitor.id.0, page).await?;
        let ids: Vec<ObjectId> = prints.items.iter().map(|p| p.detection_id.0).collect();
        let detections = self.detections.by_ids(&ids).await?;
        let items = prints
            .items
            .iter()
            .filter_map(|p| {
                let detection = detections.iter().find(|d| d.id == p.detection_id)?.clone();
                Some(VisitorSighting {
                    detection,
                    face_index: p.face_index,
                })
            })
            .collect();
        Ok((
            visitor,
            Page {
                items,
                next_cursor: prints.next_cursor,
            },
        ))
    }

    /// Makes the visitor a subject of the caller's: its prototype faces are
    /// enrolled, its sightings named, and the visitor is gone.
    pub async fn name(
        &self,
        scope: VisitorScope,
        id: VisitorId,
        name_as: NameAs,
    ) -> Result<SubjectRecord, VisitorError> {
        let visitor = self.get(scope, id).await?;
        let subject = match name_as {
            NameAs::New(new) => self.people.create(scope.user, new).await?,
            NameAs::Existing(subject) => self.people.get(scope.user, subject).await?,
        };
        let mut enrolled = 0;
        for prototype in &visitor.prototypes {
            let from = EnrolFrom::Seen {
                detection_id: prototype.detection_id,
                face_index: prototype.face_index,
            };
            // The subject as stored now: its face count grows with each.
            let current = self.people.get(scope.user, subject.id).await?;
            match self.people.enrol(&current, from).await {
                Ok(_) => enrolled += 1,
                Err(PeopleError::LimitReached(_)) => break,
                Err(err) => {
                    tracing::warn!(visitor = %id, error = %err, "a visitor's face could not be enrolled; skipped")
                }
            }
        }
        let subject = self.people.get(scope.user, subject.id).await?;
        let enrolled_faces: Vec<Embedding> = self
            .people
            .faces(scope.user, subject.id)
            .await?
            .into_iter()
            .map(|f| f.embedding.0)
            .collect();
        let distances: HashMap<(DetectionId, u32), f32> = self
            .prints
            .all_of_visitor(visitor.id.0)
            .await?
            .into_iter()
            .filter(|_| !enrolled_faces.is_empty())
            .map(|p| {
                let sum: f32 = enrolled_faces.iter().map(|e| e.distance(&p.embedding.0)).sum();
                ((p.detection_id, p.face_index), sum / enrolled_faces.len() as f32)
            })
            .collect();
        // Sightings whose embedding expired get the visitor's mean distance.
        let typical = if distances.is_empty() {
            self.rule.threshold
        } else {
            distances.values().sum::<f32>() / distances.len() as f32
        };
        let hex = visitor.id.to_string();
        let rule = self.rule;
        let named = |detection: DetectionId, index: usize| {
            let distance = distances
                .get(&(detection, index as u32))
                .copied()
                .unwrap_or(typical);
            Some(Identity::Recognised(Recognised {
                subject_id: subject.id.to_string(),
                name: subject.name.clone(),
                distance,
                // The owner's word: never below the floor of a recognised face.
                confidence: rule.confidence(distance).max(0.51),
            }))
        };
        self.retag(&hex, |detection, index, _| named(detection, index))
            .await?;
        self.prints.name_visitor(visitor.id.0, subject.id.0).await?;
        self.forget(&visitor, None).await?;
        // A face grouped with the visitor while this ran.
        self.retag(&hex, |detection, index, _| named(detection, index))
            .await?;
        self.prints.name_visitor(visitor.id.0, subject.id.0).await?;
        tracing::info!(visitor = %visitor.id, subject = %subject.id, enrolled, "visitor named");
        Ok(subject)
    }

    /// Folds the visitors `from` into `into`: their sightings, sources and
    /// prototypes become its, their tags name it.
    pub async fn merge(
        &self,
        scope: VisitorScope,
        into: VisitorId,
        from: &[VisitorId],
    ) -> Result<VisitorRecord, VisitorError> {
        if from.is_empty() || from.len() > MAX_MERGE {
            return Err(VisitorError::Invalid(format!(
                "`from` lists 1 to {MAX_MERGE} visitors"
            )));
        }
        if from.contains(&into) {
            return Err(VisitorError::Invalid(
                "a visitor cannot be merged into itself".into(),
            ));
        }
        let mut target = self.get(scope, into).await?;
        let mut merged = Vec::with_capacity(from.len());
        for id in from {
            let visitor = self.get(scope, *id).await?;
            if visitor.owner_id != target.owner_id || visitor.model != target.model {
                return Err(VisitorError::Invalid(format!(
                    "{} and {} are not seen by the same owner",
                    visitor.label(),
                    target.label()
                )));
            }
            if !merged.iter().any(|m: &VisitorRecord| m.id == visitor.id) {
                merged.push(visitor);
            }
        }
        for visitor in &merged {
            if target.cover.is_none() {
                // Taken over: not removed with the visitor it was.
                target.cover = visitor.cover;
            }
            target.sightings += visitor.sightings;
            target.first_seen = target.first_seen.min(visitor.first_seen);
            target.last_seen = target.last_seen.max(visitor.last_seen);
            for source in &visitor.sources {
                if target.sources.len() < SOURCES && !target.sources.contains(source) {
                    target.sources.push(source.clone());
                }
            }
            for prototype in &visitor.prototypes {
                if target.prototypes.len() < PROTOTYPES {
                    target.prototypes.push(prototype.clone());
                }
            }
        }
        self.visitors.replace(&target).await?;
        for visitor in &merged {
            let tag = target.tag(0);
            self.retag(&visitor.id.to_string(), |_, _, old| {
                Some(Identity::Unknown(UnknownFace::of_visitor(VisitorTag {
                    sightings: old.sightings,
                    ..tag.clone()
                })))
            })
            .await?;
            self.prints.move_visitor(visitor.id.0, target.id.0).await?;
            self.forget(visitor, target.cover).await?;
        }
        tracing::info!(visitor = %target.id, merged = merged.len(), "visitors merged");
        Ok(target)
    }

    /// Erases a visitor: its faces' embeddings, its prototypes, and its tag
    /// on every detection and alarm (the faces stay plainly unknown).
    pub async fn erase(&self, scope: VisitorScope, id: VisitorId) -> Result<(), VisitorError> {
        let visitor = self.get(scope, id).await?;
        let hex = visitor.id.to_string();
        // The visitor goes last, so an erasure cut short can be run again;
        // a face tagged in the meantime is untagged by the second pass.
        self.retag(&hex, |_, _, _| Some(Identity::unknown())).await?;
        self.prints.delete_of_visitor(visitor.id.0).await?;
        self.forget(&visitor, None).await?;
        self.retag(&hex, |_, _, _| Some(Identity::unknown())).await?;
        self.prints.delete_of_visitor(visitor.id.0).await?;
        tracing::info!(visitor = %visitor.id, "visitor erased");
        Ok(())
    }

    /// Deletes the visitor's document, then its cover (unless it is `kept`:
    /// taken over by the visitor it was merged into).
    async fn forget(&self, visitor: &VisitorRecord, kept: Option<MediaId>) -> Result<(), DbError> {
        self.visitors.delete(visitor.id).await?;
        if let Some(cover) = visitor.cover.filter(|c| Some(*c) != kept) {
            if let Err(err) = self.media.delete(cover).await {
                tracing::warn!(media = %cover, error = %err, "a visitor's cover could not be removed; the orphan sweep will");
            }
        }
        Ok(())
    }

    /// Rewrites every face tagged as visitor `hex`, in detections and
    /// alarms (messages included): `identity(detection, face index, old tag)`.
    async fn retag(
        &self,
        hex: &str,
        identity: impl Fn(DetectionId, usize, &VisitorTag) -> Option<Identity>,
    ) -> Result<(), DbError> {
        let tagged = |i: &Option<Identity>| match i {
            Some(Identity::Unknown(UnknownFace {
                visitor: Some(tag), ..
            })) if tag.id == hex => Some(tag.clone()),
            _ => None,
        };
        for mut detection in self.detections.with_visitor(hex).await? {
            for (index, face) in detection.faces.iter_mut().enumerate() {
                if let Some(tag) = tagged(&face.identity) {
                    face.identity = identity(detection.id, index, &tag);
                }
            }
            self.detections.set_faces(detection.id, &detection.faces).await?;
        }
        for mut alarm in self.alarms.with_visitor(hex).await? {
            let detection = DetectionId(alarm.detection_id);
            for (index, face) in alarm.identities.iter_mut().enumerate() {
                if let Some(tag) = tagged(face) {
                    *face = identity(detection, index, &tag);
                }
            }
            self.alarms.rename_faces(&alarm).await?;
        }
        Ok(())
    }
}
