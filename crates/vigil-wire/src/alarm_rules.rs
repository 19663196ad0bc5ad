//! Alarm rules: which faces raise an alarm, per account and per source or
//! camera (`GET|PUT /api/v1/alarm-rules`). Detections are stored whatever
//! the rule; only the alarm is decided by it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which faces of a frame raise its alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmWhen {
    /// Any face (what happens without a rule).
    Any,
    /// A face that is not one of the owner's subjects (or could not be embedded).
    Unknown,
    /// A face recognised as one of `subjects`, and no other.
    WatchList,
    /// A face that is not one of `subjects`: the household comes and goes
    /// without alarms; everyone else raises one.
    Household,
}

/// The daily window in which the rule raises alarms, in the server's local
/// time (its `TZ`); `from` after `to` spans midnight, `from` equal to `to`
/// is the whole day. Outside it: no alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleView {
    #[schema(example = "22:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub from: String,
    #[schema(example = "06:30", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub to: String,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRuleView {
    /// The upload source label or camera id the rule is for (trimmed);
    /// absent or blank: every source without a rule of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "front-door",
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub source: Option<String>,
    pub when: AlarmWhen,
    /// The caller's subject ids (camera rules: any admin's) that
    /// `watch_list` alarms for and `household` does not; ignored by `any`
    /// and `unknown`. An id that is not such a subject is 404 `not_found`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleView>,
}

/// Every rule of the caller, and (admins only) the cameras' rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRulesView {
    /// At most one rule per source (and one without): 409 `rule_exists` otherwise.
    #[schema(max_items = 50)]
    pub rules: Vec<AlarmRuleView>,
    /// The cameras' rules (their alarms have no owner). Shown to admins;
    /// in a PUT, left out to keep them as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 50)]
    pub camera_rules: Option<Vec<AlarmRuleView>>,
}
