//! Whether a frame with faces raises its alarm, asked of whoever keeps the
//! alarm rules (`alarm_rules`), so that detections need not know them.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use vigil_wire::people::Identity;

use super::Source;
use crate::users::UserId;

pub trait AlarmGate: Send + Sync {
    /// `owner`: the uploader, `None` for a camera's frame; `identities`:
    /// one per face, `None` where a face could not be embedded. Never
    /// fails: when the rules cannot be read, the alarm is raised (a missed
    /// alarm costs more than an extra one).
    fn raises<'a>(
        &'a self,
        owner: Option<UserId>,
        source: &'a Source,
        identities: &'a [Option<Identity>],
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, bool>;
}

/// No rules: every frame with faces raises its alarm.
pub struct EveryFace;

impl AlarmGate for EveryFace {
    fn raises<'a>(
        &'a self,
        _: Option<UserId>,
        _: &'a Source,
        identities: &'a [Option<Identity>],
        _: DateTime<Utc>,
    ) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(!identities.is_empty()))
    }
}
