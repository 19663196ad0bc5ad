//! Alarm rules: who raises an alarm. Per account (its uploads and videos)
//! and for the cameras (admins), each source may have its own rule, and a
//! rule without a source covers the others:
//!
//! - `any`: every frame with faces (what happens without a rule);
//! - `unknown`: only faces that are none of the owner's subjects;
//! - `watch_list`: only the listed subjects;
//! - `household`: everyone but the listed subjects;
//!
//! each optionally within a daily time window. The detection is stored
//! whatever the rule says; only its alarm is decided here, by the
//! recorder, through [`crate::detections::AlarmGate`].
//!
//! - [`repository`]: the `alarm_rules` collection.
//! - [`service`]: what the API calls, and the gate the recorder asks.

pub mod repository;
pub mod service;

use chrono::{NaiveTime, Timelike};
use mongodb::bson::oid::ObjectId;
use vigil_wire::alarm_rules::{AlarmRuleView, ScheduleView};
use vigil_wire::people::Identity;

pub use service::AlarmRules;
pub use vigil_wire::alarm_rules::{AlarmRulesView, AlarmWhen};

use crate::db::DbError;
use crate::detections::Source;
use crate::error::{Coded, ErrorCode};

/// Rules in one set (an account's, or the cameras').
pub const MAX_RULES: usize = 50;
/// Subjects one rule may list.
pub const MAX_SUBJECTS: usize = 100;

/// Minutes since local midnight, 0–1439.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayMinute(u16);

impl DayMinute {
    pub fn of(time: NaiveTime) -> Self {
        Self((time.hour() * 60 + time.minute()) as u16)
    }

    fn parse(raw: &str) -> Option<Self> {
        let (h, m) = raw.split_once(':')?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(Self(h * 60 + m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes < 24 * 60).then_some(Self(minutes))
    }

    fn render(self) -> String {
        format!("{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A daily window, `from` included, `to` excluded; across midnight when
/// `from` is later than `to`; the whole day when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub from: DayMinute,
    pub to: DayMinute,
}

impl Schedule {
    pub fn contains(&self, at: DayMinute) -> bool {
        if self.from == self.to {
            true
        } else if self.from < self.to {
            self.from <= at && at < self.to
        } else {
            at >= self.from || at < self.to
        }
    }
}

/// One rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Option<Source>,
    pub when: AlarmWhen,
    pub subjects: Vec<ObjectId>,
    pub schedule: Option<Schedule>,
}

impl Rule {
    /// Whether a frame whose faces are `identities` (one per face; `None`
    /// where a face could not be embedded) raises its alarm at `at`.
    pub fn raises(&self, identities: &[Option<Identity>], at: DayMinute) -> bool {
        if identities.is_empty() || self.schedule.is_some_and(|s| !s.contains(at)) {
            return false;
        }
        let listed = |identity: &Option<Identity>| {
            let subject = identity
                .as_ref()
                .and_then(Identity::recognised)
                .and_then(|r| ObjectId::parse_str(&r.subject_id).ok());
            subject.is_some_and(|s| self.subjects.contains(&s))
        };
        let named = |identity: &Option<Identity>| identity.as_ref().and_then(Identity::recognised).is_some();
        match self.when {
            AlarmWhen::Any => true,
            AlarmWhen::Unknown => identities.iter().any(|i| !named(i)),
            AlarmWhen::WatchList => identities.iter().any(listed),
            AlarmWhen::Household => identities.iter().any(|i| !listed(i)),
        }
    }

    pub fn view(&self) -> AlarmRuleView {
        AlarmRuleView {
            source: self.source.as_ref().map(|s| s.to_string()),
            when: self.when,
            subjects: self.subjects.iter().map(|s| s.to_hex()).collect(),
            schedule: self.schedule.map(|s| ScheduleView {
                from: s.from.render(),
                to: s.to.render(),
            }),
        }
    }
}

/// The rule for `source` among `rules`: its own, else the one without a source.
pub fn rule_for<'a>(rules: &'a [Rule], source: &Source) -> Option<&'a Rule> {
    rules
        .iter()
        .find(|r| r.source.as_ref() == Some(source))
        .or_else(|| rules.iter().find(|r| r.source.is_none()))
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmRuleError {
    /// A rule breaks a rule of its own shape; `field` as the body names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Two rules for one source.
    #[error("{field}: {message}")]
    SourceTaken { field: String, message: String },
    /// A listed subject that is not one the rules may name.
    #[error("{field}: {message}")]
    UnknownSubject { field: String, message: String },
    #[error("only admins set the cameras' rules")]
    CamerasForbidden,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AlarmRuleError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Coded for AlarmRuleError {
    fn code(&self) -> ErrorCode {
        match self {
            AlarmRuleError::Invalid { .. } => ErrorCode::ValidationFailed,
            AlarmRuleError::SourceTaken { .. } => ErrorCode::RuleExists,
            AlarmRuleError::UnknownSubject { .. } => ErrorCode::NotFound,
            AlarmRuleError::CamerasForbidden => ErrorCode::Forbidden,
            AlarmRuleError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AlarmRuleError::Db(e) => e.retry_after(),
            _ => None,
        }
    }

    fn fields(&self) -> Vec<vigil_wire::FieldError> {
        match self {
            AlarmRuleError::Invalid { field, message }
            | AlarmRuleError::SourceTaken { field, message }
            | AlarmRuleError::UnknownSubject { field, message } => vec![vigil_wire::FieldError {
                field: field.clone(),
                problem: message.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

/// A set of rules as sent (`field` names it in errors: `rules` or
/// `camera_rules`), checked: each rule well-formed, one per source at most.
pub fn parse_rules(field: &str, views: Vec<AlarmRuleView>) -> Result<Vec<Rule>, AlarmRuleError> {
    if views.len() > MAX_RULES {
        return Err(AlarmRuleError::invalid(
            field,
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(views.len());
    for (i, view) in views.into_iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        // Blank is no source, as an upload's blank label is its default.
        let source = match view.source.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                Some(Source::parse(raw).map_err(|e| AlarmRuleError::invalid(at("source"), e.to_string()))?)
            }
        };
        if rules.iter().any(|r| r.source == source) {
            let which = source
                .as_ref()
                .map_or("every source".to_owned(), |s| format!("{s:?}"));
            return Err(AlarmRuleError::SourceTaken {
                field: at("source"),
                message: format!("{which} has a rule already"),
            });
        }
        if view.subjects.len() > MAX_SUBJECTS {
            return Err(AlarmRuleError::invalid(
                at("subjects"),
                format!("at most {MAX_SUBJECTS}"),
            ));
        }
        // `any` and `unknown` name nobody: what they were sent is not kept.
        // An empty list is a rule too (a watch-list of nobody alarms for
        // nobody), as erasing its last subject leaves it.
        let names_subjects = matches!(view.when, AlarmWhen::WatchList | AlarmWhen::Household);
        let mut subjects = Vec::new();
        for raw in view.subjects.iter().filter(|_| names_subjects) {
            let id = ObjectId::parse_str(raw).map_err(|_| AlarmRuleError::UnknownSubject {
                field: at("subjects"),
                message: format!("{raw:?} is not a subject id"),
            })?;
            if !subjects.contains(&id) {
                subjects.push(id);
            }
        }
        let schedule = match view.schedule {
            None => None,
            Some(s) => {
                let time = |raw: &str, name: &str| {
                    DayMinute::parse(raw).ok_or_else(|| {
                        AlarmRuleError::invalid(
                            at(&format!("schedule.{name}")),
                            format!("{raw:?} is not a time HH:MM"),
                        )
                    })
                };
                Some(Schedule {
                    from: time(&s.from, "from")?,
                    to: time(&s.to, "to")?,
                })
            }
        };
        rules.push(Rule {
            source,
            when: view.when,
            subjects,
            schedule,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_wire::people::Recognised;

    fn named(subject: ObjectId) -> Option<Identity> {
        Some(Identity::Recognised(Recognised {
            subject_id: subject.to_hex(),
            name: "someone".into(),
            distance: 0.3,
            confidence: 0.9,
        }))
    }

    fn rule(when: AlarmWhen, subjects: Vec<ObjectId>) -> Rule {
        Rule {
            source: None,
            when,
            subjects,
            schedule: None,
        }
    }

    const NOON: DayMinute = DayMinute(12 * 60);

    #[test]
    fn each_kind_of_rule_picks_its_faces() {
        let (ann, bob) = (ObjectId::new(), ObjectId::new());
        let stranger = Some(Identity::unknown());
        let unembedded: Option<Identity> = None;
        // The faces, and whether any, unknown, watch_list [ann] and household [ann] alarm.
        type Case = (&'static str, Vec<Option<Identity>>, [bool; 4]);
        let cases: [Case; 6] = [
            ("ann alone", vec![named(ann)], [true, false, true, false]),
            ("bob alone", vec![named(bob)], [true, false, false, true]),
            ("a stranger", vec![stranger.clone()], [true, true, false, true]),
            (
                "a face too small to embed",
                vec![unembedded],
                [true, true, false, true],
            ),
            (
                "ann and a stranger",
                vec![named(ann), stranger],
                [true, true, true, true],
            ),
            ("nobody", vec![], [false, false, false, false]),
        ];
        for (what, faces, expected) in cases {
            let got = [
                rule(AlarmWhen::Any, vec![]).raises(&faces, NOON),
                rule(AlarmWhen::Unknown, vec![]).raises(&faces, NOON),
                rule(AlarmWhen::WatchList, vec![ann]).raises(&faces, NOON),
                rule(AlarmWhen::Household, vec![ann]).raises(&faces, NOON),
            ];
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn schedules_hold_within_their_window_across_midnight_too() {
        let at = |h: u16, m: u16| DayMinute(h * 60 + m);
        let day = Schedule {
            from: at(8, 0),
            to: at(18, 0),
        };
        assert!(day.contains(at(8, 0)) && day.contains(at(17, 59)));
        assert!(!day.contains(at(18, 0)) && !day.contains(at(7, 59)));
        let night = Schedule {
            from: at(22, 0),
            to: at(6, 30),
        };
        assert!(night.contains(at(23, 0)) && night.contains(at(0, 0)) && night.contains(at(6, 29)));
        assert!(!night.contains(at(6, 30)) && !night.contains(at(12, 0)));
        let mut r = rule(AlarmWhen::Any, vec![]);
        r.schedule = Some(night);
        assert!(!r.raises(&[Some(Identity::unknown())], NOON));
        assert!(r.raises(&[Some(Identity::unknown())], at(23, 15)));
    }

    #[test]
    fn a_source_s_own_rule_wins_over_the_general_one() {
        let general = rule(AlarmWhen::Unknown, vec![]);
        let mut door = rule(AlarmWhen::Any, vec![]);
        door.source = Some(Source::parse("door").unwrap());
        let rules = [general.clone(), door.clone()];
        assert_eq!(rule_for(&rules, &Source::parse("door").unwrap()), Some(&door));
        assert_eq!(rule_for(&rules, &Source::parse("yard").unwrap()), Some(&general));
        assert_eq!(rule_for(&[door], &Source::parse("yard").unwrap()), None);
    }

    fn view(json: serde_json::Value) -> AlarmRuleView {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn sets_are_parsed_once_with_the_field_that_is_wrong() {
        let id = ObjectId::new().to_hex();
        let rules = parse_rules(
            "rules",
            vec![
                view(serde_json::json!({"when": "unknown", "schedule": {"from": "22:00", "to": "06:30"}})),
                view(serde_json::json!({"source": "door", "when": "household", "subjects": [id, id]})),
            ],
        )
        .unwrap();
        assert_eq!(rules[1].subjects.len(), 1, "duplicates dropped");
        assert_eq!(rules[0].view().schedule.unwrap().to, "06:30");
        assert_eq!(rules[1].view().source.as_deref(), Some("door"));

        use serde_json::json;
        let parse = |json: Vec<serde_json::Value>| parse_rules("rules", json.into_iter().map(view).collect());
        // What the schema allows and means something: kept as meant.
        let lenient = parse(vec![
            json!({"when": "any", "subjects": [id], "source": "  "}),
            json!({"source": " yard ", "when": "watch_list", "schedule": {"from": "07:00", "to": "07:00"}}),
        ])
        .unwrap();
        assert!(
            lenient[0].subjects.is_empty() && lenient[0].source.is_none(),
            "{lenient:?}"
        );
        assert_eq!(lenient[1].source.as_ref().map(Source::as_str), Some("yard"));
        assert!(lenient[1].subjects.is_empty());
        assert!(
            lenient[1].schedule.unwrap().contains(DayMinute(3 * 60)),
            "from = to: all day"
        );

        let refused = |json: Vec<serde_json::Value>| -> (String, ErrorCode) {
            match parse(json) {
                Err(e @ AlarmRuleError::Invalid { .. })
                | Err(e @ AlarmRuleError::SourceTaken { .. })
                | Err(e @ AlarmRuleError::UnknownSubject { .. }) => (e.fields()[0].field.clone(), e.code()),
                other => panic!("{other:?}"),
            }
        };
        let invalid = |field: &str| (field.to_owned(), ErrorCode::ValidationFailed);
        assert_eq!(
            refused(vec![json!({"when": "household", "subjects": ["nope"]})]),
            ("rules[0].subjects".to_owned(), ErrorCode::NotFound)
        );
        assert_eq!(
            refused(vec![
                json!({"when": "any"}),
                json!({"when": "unknown", "source": ""})
            ]),
            ("rules[1].source".to_owned(), ErrorCode::RuleExists)
        );
        assert_eq!(
            refused(vec![json!({"when": "any", "source": "a\u{7}b"})]),
            invalid("rules[0].source")
        );
        for (from, to, field) in [
            ("24:00", "06:00", "from"),
            ("7:00", "08:00", "from"),
            ("07:00", "07:60", "to"),
        ] {
            assert_eq!(
                refused(vec![json!({"when": "any", "schedule": {"from": from, "to": to}})]),
                invalid(&format!("rules[0].schedule.{field}"))
            );
        }
        assert_eq!(
            refused(vec![json!({"when": "any"}); MAX_RULES + 1]),
            invalid("rules")
        );
    }
}
