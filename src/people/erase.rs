//! Erasing a person: the subject, every enrolled face, their crops and
//! source images, every reference to them that detections, alarms and
//! the WebSocket message log keep, alarm rules that list them, and the
//! embeddings of the detected faces recognised as them; audit entries keep
//! who looked and when, no longer whom. A face once named becomes
//! `{"erased": true}` and an alarm's message is written again without the
//! name, so nothing of the person remains.
//!
//! Removing references is idempotent and can be repeated (`vigil erase`
//! does, for a subject that is already gone): another instance may still
//! name the person for the moment its change stream takes, so the API runs
//! it once more a few seconds later.

use vigil_wire::people::Identity;

use super::{SubjectFaceRecord, SubjectFaces, SubjectId, SubjectRecord, Subjects};
use crate::alarm_rules::repository::AlarmRuleStore;
use crate::alarms::Alarms;
use crate::audit::AuditLog;
use crate::db::{Database, DbError};
use crate::detections::{Detections, FacePrints};
use crate::hub::message_log::forget_alarms_naming;
use crate::media::{MediaId, SharedMediaStore};
use crate::users::UserId;

#[derive(Clone)]
pub struct Erasure {
    pub db: Database,
    pub subjects: Subjects,
    pub faces: SubjectFaces,
    pub media: SharedMediaStore,
    pub detections: Detections,
    pub alarms: Alarms,
}

/// What one pass over the references changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedReferences {
    pub detections: usize,
    pub alarms: usize,
    pub log_entries: u64,
    /// Alarm rules that listed the subject.
    pub alarm_rules: u64,
    /// Embeddings of detected faces recognised as the subject.
    pub seen_faces: u64,
    /// Audit entries that named the subject (rewritten, not deleted).
    pub audit_entries: u64,
}

fn erase_in(identity: &mut Option<Identity>, subject: &str) -> bool {
    let named = identity
        .as_ref()
        .and_then(Identity::recognised)
        .is_some_and(|r| r.subject_id == subject);
    if named {
        *identity = Some(Identity::erased());
    }
    named
}

impl Erasure {
    /// Deletes the subject (`owner`'s, or anyone's with `None`) and its
    /// faces in one transaction, then their images. `None` when there is no
    /// such subject.
    pub async fn delete_subject(
        &self,
        owner: Option<UserId>,
        id: SubjectId,
    ) -> Result<Option<(SubjectRecord, Vec<SubjectFaceRecord>)>, DbError> {
        let taken = crate::in_transaction!(self.db, |session| async {
            let Some(subject) = self.subjects.take(owner, id, session).await? else {
                return Ok(None);
            };
            let faces = self.faces.take_all(id, session).await?;
            Ok(Some((subject, faces)))
        })?;
        for face in taken.iter().flat_map(|(_, faces)| faces) {
            remove_images(&self.media, face.images()).await;
        }
        Ok(taken)
    }

    /// Replaces every identity naming `subject` in detections and alarms
    /// (messages rewritten) and drops the logged alarm messages naming it.
    pub async fn references(&self, subject: SubjectId) -> Result<ErasedReferences, DbError> {
        let hex = subject.to_string();
        let mut erased = ErasedReferences::default();
        for mut detection in self.detections.naming(&hex).await? {
            let mut changed = false;
            for face in &mut detection.faces {
                changed |= erase_in(&mut face.identity, &hex);
            }
            if changed {
                self.detections.set_faces(detection.id, &detection.faces).await?;
                erased.detections += 1;
            }
        }
        for mut alarm in self.alarms.naming(&hex).await? {
            let mut changed = false;
            for identity in &mut alarm.identities {
                changed |= erase_in(identity, &hex);
            }
            if changed {
                self.alarms.rename_faces(&alarm).await?;
                erased.alarms += 1;
            }
        }
        erased.log_entries = forget_alarms_naming(&self.db, &hex).await?;
        erased.alarm_rules = AlarmRuleStore::new(&self.db).forget_subject(subject.0).await?;
        erased.seen_faces = FacePrints::new(&self.db).delete_of_subject(subject.0).await?;
        erased.audit_entries = AuditLog::new(&self.db).forget_subject(&hex).await?;
        tracing::info!(
            subject = %subject,
            detections = erased.detections,
            alarms = erased.alarms,
            log_entries = erased.log_entries,
            alarm_rules = erased.alarm_rules,
            seen_faces = erased.seen_faces,
            audit_entries = erased.audit_entries,
            "references to an erased subject removed"
        );
        Ok(erased)
    }
}

pub(super) async fn remove_images(media: &SharedMediaStore, images: [MediaId; 2]) {
    for id in images {
        if let Err(err) = media.delete(id).await {
            tracing::warn!(media = %id, error = %err, "could not remove an image; the orphan sweep will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_wire::people::Recognised;

    #[test]
    fn only_the_erased_subjects_identities_change() {
        let named = |id: &str| {
            Some(Identity::Recognised(Recognised {
                subject_id: id.into(),
                name: "Alice".into(),
                distance: 0.3,
                confidence: 0.9,
            }))
        };
        let mut faces = [named("a"), named("b"), Some(Identity::unknown()), None];
        let changed: Vec<bool> = faces.iter_mut().map(|f| erase_in(f, "a")).collect();
        assert_eq!(changed, [true, false, false, false]);
        assert_eq!(
            faces,
            [
                Some(Identity::erased()),
                named("b"),
                Some(Identity::unknown()),
                None
            ]
        );
    }
}
