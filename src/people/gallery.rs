//! Every owner's enrolled embeddings in memory, searched exactly.
//!
//! Galleries are small next to what one core scans per millisecond (a face
//! is 128 floats; 100 000 faces are 51 MB and one probe against them all is
//! a few milliseconds), so an exact scan beats an approximate index on
//! both speed at these sizes and on never missing the right subject.
//! Entries are keyed by face id: applying an enrolment or a deletion twice
//! (here and again from the change stream) changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{SubjectFaceId, SubjectId};
use crate::users::UserId;
use crate::vision::recognizer::EMBEDDING_LEN;
use crate::vision::Embedding;

/// One owner's faces: vectors side by side, for a scan without pointer chasing.
#[derive(Default)]
struct OwnerFaces {
    ids: Vec<SubjectFaceId>,
    subjects: Vec<SubjectId>,
    /// "Not this subject" corrections, scanned with the rest.
    negative: Vec<bool>,
    vectors: Vec<f32>,
}

impl OwnerFaces {
    fn push(&mut self, id: SubjectFaceId, subject: SubjectId, negative: bool, embedding: &Embedding) {
        self.ids.push(id);
        self.subjects.push(subject);
        self.negative.push(negative);
        self.vectors.extend_from_slice(embedding.as_array());
    }

    fn swap_remove(&mut self, at: usize) {
        let last = self.ids.len() - 1;
        self.ids.swap_remove(at);
        self.subjects.swap_remove(at);
        self.negative.swap_remove(at);
        if at != last {
            let (head, tail) = self.vectors.split_at_mut(last * EMBEDDING_LEN);
            head[at * EMBEDDING_LEN..(at + 1) * EMBEDDING_LEN].copy_from_slice(&tail[..EMBEDDING_LEN]);
        }
        self.vectors.truncate(last * EMBEDDING_LEN);
    }
}

#[derive(Default)]
struct State {
    owners: HashMap<UserId, OwnerFaces>,
    /// Where each face is: its owner and position.
    faces: HashMap<SubjectFaceId, (UserId, usize)>,
    names: HashMap<SubjectId, String>,
}

impl State {
    fn insert(&mut self, face: &GalleryFace) -> bool {
        if self.faces.contains_key(&face.face) {
            return false;
        }
        let faces = self.owners.entry(face.owner).or_default();
        self.faces.insert(face.face, (face.owner, faces.ids.len()));
        faces.push(face.face, face.subject, face.negative, &face.embedding);
        true
    }

    fn remove(&mut self, face: SubjectFaceId) -> bool {
        let Some((owner, at)) = self.faces.remove(&face) else {
            return false;
        };
        let Some(faces) = self.owners.get_mut(&owner) else {
            return false;
        };
        faces.swap_remove(at);
        if let Some(moved) = faces.ids.get(at) {
            self.faces.insert(*moved, (owner, at));
        }
        if faces.ids.is_empty() {
            self.owners.remove(&owner);
        }
        true
    }
}

/// A subject's distance to a probe, over all its enrolled faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubjectDistance {
    pub subject: SubjectId,
    /// Mean Euclidean distance to the subject's faces.
    pub mean: f32,
    /// The nearest single face.
    pub nearest: f32,
    pub faces: u32,
    /// The nearest face marked "not this subject" (infinite without any).
    pub nearest_negative: f32,
}

impl SubjectDistance {
    /// The probe is nearer to a face someone said is not this subject than
    /// to the subject's own faces: whoever that was, it is not them.
    pub fn contradicted(&self) -> bool {
        self.nearest_negative < self.mean
    }
}

/// One enrolled face, as the gallery holds it.
#[derive(Debug, Clone)]
pub struct GalleryFace {
    pub owner: UserId,
    pub subject: SubjectId,
    pub face: SubjectFaceId,
    pub embedding: Embedding,
    /// A "not this subject" correction rather than one of their faces.
    pub negative: bool,
}

/// Shared by every request and the sync task. Cheap to clone.
#[derive(Clone, Default)]
pub struct Gallery {
    state: Arc<RwLock<State>>,
}

impl Gallery {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces everything (at start, and after the change stream was lost).
    pub fn load(&self, faces: impl IntoIterator<Item = GalleryFace>, names: HashMap<SubjectId, String>) {
        let mut state = State {
            names,
            ..State::default()
        };
        for f in faces {
            state.insert(&f);
        }
        *self.write() = state;
    }

    /// False when the face was there already.
    pub fn insert(&self, face: GalleryFace) -> bool {
        self.write().insert(&face)
    }

    /// False when the face was not there.
    pub fn remove_face(&self, face: SubjectFaceId) -> bool {
        self.write().remove(face)
    }

    pub fn set_name(&self, subject: SubjectId, name: String) {
        self.write().names.insert(subject, name);
    }

    /// The subject's name and every face of it.
    pub fn remove_subject(&self, subject: SubjectId) {
        let mut state = self.write();
        state.names.remove(&subject);
        let gone: Vec<SubjectFaceId> = state
            .owners
            .values()
            .flat_map(|o| o.ids.iter().zip(&o.subjects))
            .filter(|(_, s)| **s == subject)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            state.remove(id);
        }
    }

    pub fn name(&self, subject: SubjectId) -> Option<String> {
        self.read().names.get(&subject).cloned()
    }

    /// Every subject with its name (the people the MQTT publisher announces).
    pub fn names(&self) -> Vec<(SubjectId, String)> {
        self.read()
            .names
            .iter()
            .map(|(id, name)| (*id, name.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().faces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn faces_of(&self, owners: &[UserId]) -> usize {
        let state = self.read();
        owners
            .iter()
            .filter_map(|o| state.owners.get(o))
            .map(|f| f.ids.len())
            .sum()
    }

    /// Every subject of `owners` with at least one face of their own,
    /// nearest (by mean) first.
    pub fn distances(&self, owners: &[UserId], probe: &Embedding) -> Vec<SubjectDistance> {
        let state = self.read();
        let mut by_subject: HashMap<SubjectId, SubjectDistance> = HashMap::new();
        let probe = probe.as_array();
        for faces in owners.iter().filter_map(|o| state.owners.get(o)) {
            let vectors = faces.vectors.chunks_exact(EMBEDDING_LEN);
            for ((vector, subject), negative) in vectors.zip(&faces.subjects).zip(&faces.negative) {
                let d = squared_distance(probe, vector).sqrt();
                let entry = by_subject.entry(*subject).or_insert(SubjectDistance {
                    subject: *subject,
                    mean: 0.0,
                    nearest: f32::INFINITY,
                    faces: 0,
                    nearest_negative: f32::INFINITY,
                });
                if *negative {
                    entry.nearest_negative = entry.nearest_negative.min(d);
                } else {
                    entry.mean += d;
                    entry.nearest = entry.nearest.min(d);
                    entry.faces += 1;
                }
            }
        }
        let mut out: Vec<SubjectDistance> = by_subject
            .into_values()
            .filter(|s| s.faces > 0)
            .map(|mut s| {
                s.mean /= s.faces as f32;
                s
            })
            .collect();
        out.sort_by(|a, b| a.mean.total_cmp(&b.mean));
        out
    }
}

/// Squared Euclidean distance between a probe and a stored vector.
pub fn squared_distance(a: &[f32; EMBEDDING_LEN], b: &[f32]) -> f32 {
    vigil_kernels::distance::squared_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;

    fn embedding(seed: f32) -> Embedding {
        let mut v = [0f32; EMBEDDING_LEN];
        for (i, x) in v.iter_mut().enumerate() {
            *x = ((i as f32 + 1.0) * seed).sin() * 0.1;
        }
        Embedding::from_array(v)
    }

    fn face(owner: UserId, subject: SubjectId, seed: f32) -> GalleryFace {
        GalleryFace {
            owner,
            subject,
            face: SubjectFaceId::new(),
            embedding: embedding(seed),
            negative: false,
        }
    }

    #[test]
    fn distances_are_exact_means_per_subject_and_scoped_to_owners() {
        let (alice, bob) = (UserId(ObjectId::new()), UserId(ObjectId::new()));
        let (s1, s2, s3) = (SubjectId::new(), SubjectId::new(), SubjectId::new());
        let gallery = Gallery::default();
        let faces = [
            face(alice, s1, 1.0),
            face(alice, s1, 1.1),
            face(alice, s2, 2.0),
            face(bob, s3, 1.0),
        ];
        for f in &faces {
            assert!(gallery.insert(f.clone()));
        }
        assert!(
            !gallery.insert(faces[0].clone()),
            "an insert applied twice changes nothing"
        );
        let probe = embedding(1.0);
        let found = gallery.distances(&[alice], &probe);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].subject, s1);
        let expected = (probe.distance(&faces[0].embedding) + probe.distance(&faces[1].embedding)) / 2.0;
        assert!((found[0].mean - expected).abs() < 1e-6);
        assert_eq!(found[0].nearest, 0.0);
        assert_eq!(found[0].faces, 2);
        assert!(gallery.distances(&[bob], &probe).iter().all(|d| d.subject == s3));
        assert_eq!(gallery.faces_of(&[alice, bob]), 4);
    }

    #[test]
    fn removals_keep_the_remaining_vectors_in_place() {
        let owner = UserId(ObjectId::new());
        let subjects: Vec<SubjectId> = (0..5).map(|_| SubjectId::new()).collect();
        let gallery = Gallery::default();
        let faces: Vec<GalleryFace> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| face(owner, *s, i as f32 + 1.0))
            .collect();
        for f in &faces {
            gallery.insert(f.clone());
        }
        assert!(gallery.remove_face(faces[1].face));
        assert!(!gallery.remove_face(faces[1].face));
        gallery.remove_subject(subjects[3]);
        assert_eq!(gallery.len(), 3);
        for kept in [0, 2, 4] {
            let found = gallery.distances(&[owner], &faces[kept].embedding);
            assert_eq!(found[0].subject, subjects[kept]);
            assert_eq!(found[0].mean, 0.0, "face {kept} still holds its own vector");
        }
        for f in [0, 2, 4] {
            gallery.remove_face(faces[f].face);
        }
        assert!(gallery.is_empty());
        assert_eq!(gallery.faces_of(&[owner]), 0);
    }

    #[test]
    fn corrections_are_measured_apart_and_never_make_a_subject() {
        let owner = UserId(ObjectId::new());
        let (s1, s2) = (SubjectId::new(), SubjectId::new());
        let gallery = Gallery::default();
        let own = face(owner, s1, 1.0);
        let not_s1 = GalleryFace {
            negative: true,
            ..face(owner, s1, 3.0)
        };
        let only_negative = GalleryFace {
            negative: true,
            ..face(owner, s2, 1.0)
        };
        for f in [&own, &not_s1, &only_negative] {
            gallery.insert(f.clone());
        }
        let probe = embedding(3.0);
        let found = gallery.distances(&[owner], &probe);
        assert_eq!(
            found.len(),
            1,
            "a subject with corrections only is nobody's answer"
        );
        let d = found[0];
        assert_eq!((d.subject, d.faces), (s1, 1));
        assert_eq!(
            d.mean,
            probe.distance(&own.embedding),
            "the correction is not averaged in"
        );
        assert_eq!(d.nearest_negative, 0.0);
        assert!(d.contradicted());
        assert!(!gallery.distances(&[owner], &own.embedding)[0].contradicted());

        assert!(gallery.remove_face(not_s1.face));
        let after = gallery.distances(&[owner], &probe)[0];
        assert_eq!(after.nearest_negative, f32::INFINITY);
        assert!(!after.contradicted());
    }
}
