//! When a failed attempt is run again, per kind of job. Detections and
//! videos fail for reasons that rarely pass (`--job-max-attempts`, 3 by
//! default); a webhook's receiver is often away for minutes, so its
//! deliveries retry with a capped exponential backoff for up to an hour.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{JobKind, JobSettings};

/// Pause before the second attempt of a detect or video job; doubled per attempt.
const RETRY_BASE: Duration = Duration::from_secs(2);

/// Webhooks: first pause, longest pause, and how long after the alarm a
/// delivery may still be attempted.
const WEBHOOK_BASE: Duration = Duration::from_secs(2);
const WEBHOOK_CAP: Duration = Duration::from_secs(300);
const WEBHOOK_WITHIN: Duration = Duration::from_secs(3600);
/// Bounds the takes of a delivery whose worker keeps dying: the hour ends
/// it long before in any other case (2 s doubling to 5 min fits about 20
/// attempts in an hour).
const WEBHOOK_MAX_ATTEMPTS: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryPolicy {
    /// `max` attempts, the pause doubling from `base`.
    Attempts { max: u32, base: Duration },
    /// Attempts until `within` after the job was created, the pause doubling
    /// from `base` up to `cap`; at most `max` takes.
    Deadline {
        base: Duration,
        cap: Duration,
        within: Duration,
        max: u32,
    },
}

impl RetryPolicy {
    pub fn of(kind: JobKind, settings: &JobSettings) -> Self {
        match kind {
            JobKind::Detect | JobKind::Video => RetryPolicy::Attempts {
                max: settings.max_attempts,
                base: RETRY_BASE,
            },
            JobKind::Webhook => RetryPolicy::Deadline {
                base: WEBHOOK_BASE,
                cap: WEBHOOK_CAP,
                within: WEBHOOK_WITHIN,
                max: WEBHOOK_MAX_ATTEMPTS,
            },
        }
    }

    /// Times a job may be taken up, a worker's death included.
    pub fn max_attempts(&self) -> u32 {
        match *self {
            RetryPolicy::Attempts { max, .. } | RetryPolicy::Deadline { max, .. } => max,
        }
    }

    /// The pause before the next attempt of a job created at `created` whose
    /// `attempts`th attempt just failed at `now`; `None`: it is given up.
    pub fn next_delay(&self, attempts: u32, created: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
        let doubled = |base: Duration| base.saturating_mul(2_u32.saturating_pow(attempts.saturating_sub(1)));
        match *self {
            RetryPolicy::Attempts { max, base } => (attempts < max).then(|| doubled(base)),
            RetryPolicy::Deadline {
                base,
                cap,
                within,
                max,
            } => {
                let delay = doubled(base).min(cap);
                let next = now + chrono::Duration::from_std(delay).ok()?;
                let deadline = created + chrono::Duration::from_std(within).ok()?;
                (attempts < max && next <= deadline).then_some(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_and_video_jobs_keep_the_configured_attempts() {
        let settings = JobSettings {
            max_attempts: 3,
            ..JobSettings::default()
        };
        let policy = RetryPolicy::of(JobKind::Video, &settings);
        let now = Utc::now();
        assert_eq!(policy.max_attempts(), 3);
        assert_eq!(policy.next_delay(1, now, now), Some(Duration::from_secs(2)));
        assert_eq!(policy.next_delay(2, now, now), Some(Duration::from_secs(4)));
        assert_eq!(policy.next_delay(3, now, now), None);
    }

    #[test]
    fn webhooks_back_off_to_a_cap_and_give_up_after_an_hour() {
        let settings = JobSettings {
            max_attempts: 1,
            ..JobSettings::default()
        };
        let policy = RetryPolicy::of(JobKind::Webhook, &settings);
        let created = Utc::now();
        let mut now = created;
        let mut delays = Vec::new();
        let mut attempts = 1;
        while let Some(delay) = policy.next_delay(attempts, created, now) {
            delays.push(delay);
            now += chrono::Duration::from_std(delay).unwrap();
            attempts += 1;
        }
        assert_eq!(delays[..4], [2, 4, 8, 16].map(Duration::from_secs));
        assert!(delays.iter().all(|d| *d <= WEBHOOK_CAP), "{delays:?}");
        assert!(delays.contains(&WEBHOOK_CAP));
        let total: Duration = delays.iter().sum();
        assert!(total <= WEBHOOK_WITHIN, "{total:?}");
        assert!(
            total > WEBHOOK_WITHIN - WEBHOOK_CAP,
            "{total:?}: gives up only near the hour"
        );
        assert!(
            attempts < WEBHOOK_MAX_ATTEMPTS,
            "{attempts}: the hour ends it first"
        );
        // Whatever the attempt count, nothing is tried after the hour.
        let late = created + chrono::Duration::seconds(3599);
        assert_eq!(policy.next_delay(2, created, late), None);
    }
}
