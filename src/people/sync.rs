//! Keeping every instance's gallery current: loaded at start, then followed
//! through change streams on `subject_faces` and `subjects`, so a face
//! enrolled or deleted on one instance counts on the others within moments.
//!
//! The streams are opened before the gallery is loaded, so nothing written
//! between the two is missed; applying an event the load already saw
//! changes nothing (entries are keyed by face id). When a stream is lost
//! and cannot be resumed, the gallery is loaded again from scratch.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::change_stream::ChangeStream;

use super::gallery::GalleryFace;
use super::{
    Gallery, Polarity, SubjectFaceId, SubjectFaceRecord, SubjectFaces, SubjectId, SubjectRecord, Subjects,
};
use crate::db::{Database, DbError};

type Events = ChangeStream<ChangeStreamEvent<Document>>;

/// Both streams, opened before the gallery was loaded.
pub struct Streams {
    faces: Events,
    subjects: Events,
}

#[derive(Clone)]
pub struct GallerySync {
    pub db: Database,
    pub gallery: Gallery,
    pub subjects: Subjects,
    pub faces: SubjectFaces,
    /// Only embeddings of this model are loaded.
    pub model: &'static str,
}

impl GallerySync {
    async fn open(&self, collection: &str) -> Result<Events, DbError> {
        self.db
            .collection::<Document>(collection)
            .watch()
            .pipeline([
                doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace", "delete"] } } },
            ])
            .await
            .map_err(DbError::from_driver)
    }

    /// Loads every subject's name and every face of the current model.
    pub async fn load(&self) -> Result<(), DbError> {
        let names: HashMap<SubjectId, String> = self
            .subjects
            .all()
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let faces = self.faces.all_of_model(self.model).await?;
        let count = faces.len();
        self.gallery.load(faces.into_iter().map(gallery_face), names);
        let stale = self.faces.count_not_of_model(self.model).await?;
        if stale > 0 {
            tracing::warn!(
                stale,
                model = self.model,
                "enrolled faces were embedded by another model and are not compared; run `vigil reindex`"
            );
        }
        tracing::info!(faces = count, "gallery loaded");
        Ok(())
    }

    /// Opens the streams, then loads the gallery.
    pub async fn prepare(&self) -> Result<Streams, DbError> {
        let faces = self.open("subject_faces").await?;
        let subjects = self.open("subjects").await?;
        self.load().await?;
        Ok(Streams { faces, subjects })
    }

    /// Follows both collections forever (from `first` when startup already
    /// loaded the gallery); reloads after any gap.
    #[tracing::instrument(name = "gallery_sync", skip_all)]
    pub async fn run(self, first: Option<Streams>) {
        const MAX_BACKOFF: Duration = Duration::from_secs(30);
        let mut backoff = Duration::from_millis(250);
        let mut first = first;
        loop {
            let opened = match first.take() {
                Some(streams) => Ok(streams),
                None => self.prepare().await,
            };
            let Streams {
                mut faces,
                mut subjects,
            } = match opened {
                Ok(streams) => streams,
                Err(err) => {
                    tracing::warn!(error = %err, ?backoff, "cannot load the gallery; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(250);
            let failure = loop {
                tokio::select! {
                    event = faces.next() => match event {
                        Some(Ok(event)) => self.on_face(event).await,
                        Some(Err(err)) => break err.to_string(),
                        None => break "the face stream ended".to_owned(),
                    },
                    event = subjects.next() => match event {
                        Some(Ok(event)) => self.on_subject(event).await,
                        Some(Err(err)) => break err.to_string(),
                        None => break "the subject stream ended".to_owned(),
                    },
                }
            };
            tracing::warn!(error = %failure, "gallery change stream lost; reloading");
            tokio::time::sleep(backoff).await;
        }
    }

    async fn on_face(&self, event: ChangeStreamEvent<Document>) {
        match event.operation_type {
            OperationType::Insert | OperationType::Replace => {
                let Some(document) = event.full_document else {
                    return;
                };
                match mongodb::bson::from_document::<SubjectFaceRecord>(document) {
                    Ok(face) => self.put(face),
                    Err(err) => tracing::warn!(error = %err, "skipping an enrolled face of unexpected shape"),
                }
            }
            // Updates carry only the changed fields (a re-embedding): read it back.
            OperationType::Update => {
                let Some(id) = document_id(&event).map(SubjectFaceId) else {
                    return;
                };
                match self.faces.get(id).await {
                    Ok(Some(face)) => self.put(face),
                    Ok(None) => {
                        self.gallery.remove_face(id);
                    }
                    Err(err) => tracing::warn!(error = %err, face = %id, "cannot read a changed face"),
                }
            }
            OperationType::Delete => {
                if let Some(id) = document_id(&event) {
                    self.gallery.remove_face(SubjectFaceId(id));
                }
            }
            _ => {}
        }
    }

    /// A face as stored now: its old vector (if any) goes, the new one
    /// counts only when it is of the current model.
    fn put(&self, face: SubjectFaceRecord) {
        self.gallery.remove_face(face.id);
        if face.model == self.model {
            self.gallery.insert(gallery_face(face));
        }
    }

    async fn on_subject(&self, event: ChangeStreamEvent<Document>) {
        let Some(id) = document_id(&event).map(SubjectId) else {
            return;
        };
        let inserted = event
            .full_document
            .and_then(|d| mongodb::bson::from_document::<SubjectRecord>(d).ok());
        match (event.operation_type, inserted) {
            (OperationType::Delete, _) => self.gallery.remove_subject(id),
            (_, Some(subject)) => self.gallery.set_name(subject.id, subject.name),
            // Updates carry only the changed fields: read the name back.
            _ => match self.subjects.by_id(id).await {
                Ok(Some(subject)) => self.gallery.set_name(subject.id, subject.name),
                Ok(None) => self.gallery.remove_subject(id),
                Err(err) => tracing::warn!(error = %err, subject = %id, "cannot read a changed subject"),
            },
        }
    }
}

fn document_id(event: &ChangeStreamEvent<Document>) -> Option<mongodb::bson::oid::ObjectId> {
    event.document_key.as_ref()?.get_object_id("_id").ok()
}

fn gallery_face(face: SubjectFaceRecord) -> GalleryFace {
    GalleryFace {
        owner: face.owner_id,
        subject: face.subject_id,
        face: face.id,
        embedding: face.embedding.0,
        negative: face.polarity == Polarity::Negative,
    }
}
