//! What this instance's workers did, recorded as they do it, and the
//! queue's depth per state (the database's, counted when scraped).

use std::time::Duration;

use super::{JobKind, JobState};
use crate::observability::series;

fn kind_label(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Detect => "detect",
        JobKind::Video => "video",
        JobKind::Webhook => "webhook",
    }
}

pub(super) fn started() {
    ::metrics::gauge!(series::JOBS_RUNNING).increment(1.0);
}

/// A worker stopped running a job, however it ended.
pub(super) fn stopped() {
    ::metrics::gauge!(series::JOBS_RUNNING).decrement(1.0);
}

/// A job ended for good: `ok` done, else failed.
pub(super) fn finished(kind: JobKind, took: Duration, ok: bool) {
    let kind = kind_label(kind);
    let outcome = if ok { "done" } else { "failed" };
    ::metrics::counter!(series::JOBS_ENDED, "kind" => kind, "outcome" => outcome).increment(1);
    ::metrics::histogram!(series::JOB_DURATION, "kind" => kind).record(took.as_secs_f64());
}

/// A job this instance ran was cancelled or taken over.
pub(super) fn lost() {
    ::metrics::counter!(series::JOBS_LOST).increment(1);
}

/// Sets the queue's depth per state in the current recorder (at scrape time).
pub fn record_depth(depth: &[(JobState, u64)]) {
    for (state, n) in depth {
        ::metrics::gauge!(series::JOBS, "state" => state.as_str()).set(*n as f64);
    }
}
