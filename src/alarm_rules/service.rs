//! Reading and replacing an account's rules (and the cameras'), and the
//! gate the recorder asks before it raises an alarm.
//!
//! The gate reads the rules from the database at each frame with faces
//! (one indexed query on a handful of documents), so a change applies at
//! once on every instance, with nothing to keep in sync.

use chrono::{DateTime, Local, Utc};
use futures_util::future::BoxFuture;
use std::sync::Arc;

use mongodb::bson::oid::ObjectId;
use vigil_wire::people::Identity;

use super::repository::{AlarmRuleStore, RuleOwner};
use super::{parse_rules, rule_for, AlarmRuleError, AlarmRulesView, DayMinute, Rule};
use crate::db::{Database, DbError};
use crate::detections::{AlarmGate, Source};
use crate::users::UserId;

/// Who asks: an account, and whether it is an admin's.
#[derive(Debug, Clone, Copy)]
pub struct RuleEditor {
    pub user: UserId,
    pub admin: bool,
}

/// Which of some subject ids exist (an owner's, or any owner's with
/// `None`), asked of whoever keeps the subjects (`people`), which itself
/// uses this module to take erased subjects out of rules.
pub trait SubjectDirectory: Send + Sync {
    fn existing<'a>(
        &'a self,
        owner: Option<UserId>,
        ids: &'a [ObjectId],
    ) -> BoxFuture<'a, Result<Vec<ObjectId>, DbError>>;
}

#[derive(Clone)]
pub struct AlarmRules {
    db: Database,
    store: AlarmRuleStore,
    subjects: Arc<dyn SubjectDirectory>,
}

impl AlarmRules {
    pub fn new(db: &Database, subjects: Arc<dyn SubjectDirectory>) -> Self {
        Self {
            db: db.clone(),
            store: AlarmRuleStore::new(db),
            subjects,
        }
    }

    pub async fn get(&self, editor: RuleEditor) -> Result<AlarmRulesView, AlarmRuleError> {
        let views = |rules: Vec<Rule>| rules.iter().map(Rule::view).collect::<Vec<_>>();
        let camera_rules = if editor.admin {
            Some(views(self.store.of(RuleOwner::Cameras).await?))
        } else {
            None
        };
        Ok(AlarmRulesView {
            rules: views(self.store.of(RuleOwner::User(editor.user)).await?),
            camera_rules,
        })
    }

    /// Replaces the editor's rules, and the cameras' when given (admins
    /// only), together; answers what is stored now.
    pub async fn replace(
        &self,
        editor: RuleEditor,
        body: AlarmRulesView,
    ) -> Result<AlarmRulesView, AlarmRuleError> {
        if body.camera_rules.is_some() && !editor.admin {
            return Err(AlarmRuleError::CamerasForbidden);
        }
        let own = parse_rules("rules", body.rules)?;
        let cameras = body
            .camera_rules
            .map(|views| parse_rules("camera_rules", views))
            .transpose()?;
        // A user's rules name their own subjects; the cameras' name the
        // subjects camera frames are matched against: any admin's.
        self.check_subjects("rules", &own, Some(editor.user)).await?;
        if let Some(cameras) = &cameras {
            self.check_subjects("camera_rules", cameras, None).await?;
        }
        crate::in_transaction!(self.db, |session| async {
            self.store
                .replace(RuleOwner::User(editor.user), &own, session)
                .await?;
            if let Some(cameras) = &cameras {
                self.store.replace(RuleOwner::Cameras, cameras, session).await?;
            }
            Ok(())
        })?;
        self.get(editor).await
    }

    async fn check_subjects(
        &self,
        field: &str,
        rules: &[Rule],
        owner: Option<UserId>,
    ) -> Result<(), AlarmRuleError> {
        let mut wanted: Vec<ObjectId> = rules.iter().flat_map(|r| r.subjects.iter().copied()).collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = self.subjects.existing(owner, &wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !found.contains(id)) {
            let whose = if owner.is_some() {
                "one of your subjects"
            } else {
                "a subject"
            };
            return Err(AlarmRuleError::UnknownSubject {
                field: field.to_owned(),
                message: format!("{missing} is not {whose}"),
            });
        }
        Ok(())
    }

    async fn decide(
        &self,
        owner: Option<UserId>,
        source: &Source,
        identities: &[Option<Identity>],
        at: DateTime<Utc>,
    ) -> bool {
        match self.store.of(RuleOwner::of(owner)).await {
            Ok(rules) => match rule_for(&rules, source) {
                Some(rule) => rule.raises(identities, DayMinute::of(at.with_timezone(&Local).time())),
                None => !identities.is_empty(),
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the alarm rules: the alarm is raised");
                !identities.is_empty()
            }
        }
    }
}

impl AlarmGate for AlarmRules {
    fn raises<'a>(
        &'a self,
        owner: Option<UserId>,
        source: &'a Source,
        identities: &'a [Option<Identity>],
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, bool> {
        Box::pin(self.decide(owner, source, identities, at))
    }
}
