//! Everything vigil stores about one person, in one zip: what a data
//! subject may ask for (GDPR art. 15). `subject.json` holds the subject,
//! each enrolled face with its embedding, every detection and alarm that
//! names them and how many detected faces' embeddings are kept as theirs;
//! `faces/ID.jpg` is each enrolled face's crop. Faces stored as "not this
//! person" (corrections) are someone else's and are left out.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{FaceOrigin, People, PeopleError, SubjectId};
use crate::alarms::Alarms;
use crate::audit::AuditAction;
use crate::detections::FacePrints;
use crate::users::UserId;
use crate::vision::Face;

#[derive(Serialize)]
struct ExportedSubject {
    exported_at: DateTime<Utc>,
    subject: SubjectPart,
    faces: Vec<FacePart>,
    sightings: Vec<Sighting>,
    alarms: Vec<AlarmPart>,
    /// Detected faces recognised as the subject whose embeddings are kept
    /// (for search by face); erasing the subject deletes them.
    stored_face_embeddings: u64,
}

#[derive(Serialize)]
struct SubjectPart {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct FacePart {
    id: String,
    origin: FaceOrigin,
    face: Face,
    model: String,
    embedding: Vec<f32>,
    /// Path of the crop inside the zip; absent when its image is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    crop: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct Sighting {
    detection_id: String,
    face_index: usize,
    created_at: DateTime<Utc>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    camera_id: Option<String>,
    distance: f32,
}

#[derive(Serialize)]
struct AlarmPart {
    id: String,
    date: DateTime<Utc>,
    message: String,
    source: String,
    detection_id: String,
}

impl People {
    /// `owner`'s subject, exported as a zip; the export is on the audit log
    /// before it is returned.
    pub async fn export(&self, owner: UserId, id: SubjectId) -> Result<Vec<u8>, PeopleError> {
        let subject = self.get(owner, id).await?;
        let hex = subject.id.to_string();
        let faces = self.faces.of_subject(subject.id).await?;
        let mut crops = Vec::with_capacity(faces.len());
        let mut face_parts = Vec::with_capacity(faces.len());
        for face in &faces {
            let crop = self.media.get(face.crop).await?;
            let path = crop.as_ref().map(|_| format!("faces/{}.jpg", face.id));
            if let (Some(path), Some(bytes)) = (&path, crop) {
                crops.push((path.clone(), bytes));
            }
            face_parts.push(FacePart {
                id: face.id.to_string(),
                origin: face.origin.clone(),
                face: face.face,
                model: face.model.clone(),
                embedding: face.embedding.0.as_array().to_vec(),
                crop: path,
                created_at: face.created_at,
            });
        }
        let sightings = self
            .detections
            .naming(&hex)
            .await?
            .iter()
            .flat_map(|d| {
                d.faces.iter().enumerate().filter_map(|(index, face)| {
                    let named = face.identity.as_ref()?.recognised()?;
                    (named.subject_id == hex).then(|| Sighting {
                        detection_id: d.id.to_string(),
                        face_index: index,
                        created_at: d.created_at,
                        source: d.source.to_string(),
                        camera_id: d.camera_id.clone(),
                        distance: named.distance,
                    })
                })
            })
            .collect();
        let alarms = Alarms::new(&self.db)
            .naming(&hex)
            .await?
            .into_iter()
            .map(|a| AlarmPart {
                id: a.id.to_string(),
                date: a.date,
                message: a.message,
                source: a.source,
                detection_id: a.detection_id.to_hex(),
            })
            .collect();
        let document = ExportedSubject {
            exported_at: Utc::now(),
            subject: SubjectPart {
                id: hex.clone(),
                name: subject.name.clone(),
                note: subject.note.clone(),
                created_at: subject.created_at,
                updated_at: subject.updated_at,
            },
            faces: face_parts,
            sightings,
            alarms,
            stored_face_embeddings: FacePrints::new(&self.db).count_of_subject(subject.id.0).await?,
        };
        let zip = write_zip(&document, &crops).map_err(|e| PeopleError::Export(e.to_string()))?;
        self.audit
            .record(
                owner,
                AuditAction::SubjectExport,
                format!("subject {hex}"),
                faces.len(),
            )
            .await?;
        tracing::info!(subject = %subject.id, faces = faces.len(), bytes = zip.len(), "subject exported");
        Ok(zip)
    }
}

/// JPEGs do not compress further: every entry is stored as it is.
fn write_zip(
    document: &ExportedSubject,
    crops: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("subject.json", options)?;
    let json = serde_json::to_vec_pretty(document).map_err(std::io::Error::other)?;
    zip.write_all(&json)?;
    for (path, bytes) in crops {
        zip.start_file(path.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}
