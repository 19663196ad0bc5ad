//! The `alarm_rules` collection: one document per rule, keyed by owner
//! (`null` for the cameras) and source (`null` for the general rule), in
//! the order they were given.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson};
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::{AlarmWhen, DayMinute, Rule, Schedule};
use crate::db::{Database, DbError};
use crate::detections::Source;
use crate::users::UserId;

/// Whose rules: an account's, or the cameras'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOwner {
    User(UserId),
    Cameras,
}

impl RuleOwner {
    pub fn of(owner: Option<UserId>) -> Self {
        owner.map_or(RuleOwner::Cameras, RuleOwner::User)
    }

    fn bson(self) -> Bson {
        match self {
            RuleOwner::User(user) => Bson::ObjectId(user.0),
            RuleOwner::Cameras => Bson::Null,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RuleDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    owner: Option<ObjectId>,
    source: Option<String>,
    position: i32,
    when: AlarmWhen,
    #[serde(default)]
    subjects: Vec<ObjectId>,
    /// Minutes since local midnight.
    from_minute: Option<i32>,
    to_minute: Option<i32>,
    #[serde(with = "mongodb::bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    updated_at: DateTime<Utc>,
}

impl RuleDocument {
    fn into_rule(self) -> Option<Rule> {
        let minute = |m: Option<i32>| {
            m.and_then(|m| u16::try_from(m).ok())
                .and_then(DayMinute::from_minutes)
        };
        let schedule = match (minute(self.from_minute), minute(self.to_minute)) {
            (Some(from), Some(to)) if from != to => Some(Schedule { from, to }),
            _ => None,
        };
        let source = match self.source {
            Some(raw) => Some(Source::parse(&raw).ok()?),
            None => None,
        };
        Some(Rule {
            source,
            when: self.when,
            subjects: self.subjects,
            schedule,
        })
    }
}

#[derive(Clone)]
pub struct AlarmRuleStore {
    rules: Collection<RuleDocument>,
}

impl AlarmRuleStore {
    pub fn new(db: &Database) -> Self {
        Self {
            rules: db.collection("alarm_rules"),
        }
    }

    /// `owner`'s rules, in their order.
    pub async fn of(&self, owner: RuleOwner) -> Result<Vec<Rule>, DbError> {
        let documents: Vec<RuleDocument> = self
            .rules
            .find(doc! { "owner": owner.bson() })
            .sort(doc! { "position": 1 })
            .await
            .map_err(DbError::from_driver)?
            .try_collect()
            .await
            .map_err(DbError::from_driver)?;
        Ok(documents
            .into_iter()
            .filter_map(RuleDocument::into_rule)
            .collect())
    }

    /// Replaces `owner`'s rules with `rules`, inside the caller's transaction.
    pub async fn replace(
        &self,
        owner: RuleOwner,
        rules: &[Rule],
        session: &mut ClientSession,
    ) -> Result<(), DbError> {
        self.rules
            .delete_many(doc! { "owner": owner.bson() })
            .session(&mut *session)
            .await
            .map_err(DbError::from_driver)?;
        if rules.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let documents = rules.iter().enumerate().map(|(position, rule)| RuleDocument {
            id: ObjectId::new(),
            owner: match owner {
                RuleOwner::User(user) => Some(user.0),
                RuleOwner::Cameras => None,
            },
            source: rule.source.as_ref().map(|s| s.to_string()),
            position: position as i32,
            when: rule.when,
            subjects: rule.subjects.clone(),
            from_minute: rule.schedule.map(|s| i32::from(s.from.minutes())),
            to_minute: rule.schedule.map(|s| i32::from(s.to.minutes())),
            updated_at: now,
        });
        self.rules
            .insert_many(documents)
            .session(&mut *session)
            .await
            .map_err(DbError::from_driver)?;
        Ok(())
    }

    /// Takes an erased subject out of every rule that lists it.
    pub async fn forget_subject(&self, subject: ObjectId) -> Result<u64, DbError> {
        let result = self
            .rules
            .update_many(
                doc! { "subjects": subject },
                doc! { "$pull": { "subjects": subject } },
            )
            .await
            .map_err(DbError::from_driver)?;
        Ok(result.modified_count)
    }
}
