//! How many messages one session may send: a token bucket per session, and
//! the point at which a client that keeps pushing past it is closed.
//!
//! Every text or binary frame takes a token; tokens come back at `per_second`
//! up to `burst`. A frame without a token is not handled (it is answered
//! with `rate_limited`), so a flood costs the server a parse and a small
//! error each, never the work the messages asked for. Refusals are not free
//! either, so a client that goes on being refused — more than `burst`
//! refusals without a whole second free of them — is closed with 1008: a
//! burst now and then survives, a flood does not.
//!
//! The time is the caller's (`now`), not a clock of its own, so the tests
//! below can play out seconds of traffic in no time.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

/// The limit, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimit {
    /// Messages per second a session may send on average.
    pub per_second: NonZeroU32,
    /// Messages a session may send at once.
    pub burst: NonZeroU32,
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Handle,
    /// Over the limit: answer `rate_limited`, do nothing else.
    Refuse,
    /// Over the limit for too long: refuse it and close the session.
    Close,
}

/// A quiet second after a refusal forgives the refusals before it.
const FORGIVE_AFTER: Duration = Duration::from_secs(1);

/// One session's bucket.
#[derive(Debug)]
pub struct MessageBudget {
    limit: MessageLimit,
    tokens: f64,
    refilled_at: Instant,
    /// Refusals since the last quiet second, and when the last one was.
    refused: u32,
    last_refusal: Option<Instant>,
}

impl MessageBudget {
    /// A full bucket.
    pub fn new(limit: MessageLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.get()),
            refilled_at: now,
            refused: 0,
            last_refusal: None,
        }
    }

    /// Spends a token on a message arriving at `now`, when there is one.
    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second.get()))
            .min(f64::from(self.limit.burst.get()));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Handle;
        }
        if self
            .last_refusal
            .is_some_and(|at| now.saturating_duration_since(at) >= FORGIVE_AFTER)
        {
            self.refused = 0;
        }
        self.last_refusal = Some(now);
        self.refused = self.refused.saturating_add(1);
        if self.refused > self.limit.burst.get() {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: MessageLimit = MessageLimit {
        per_second: NonZeroU32::new(10).unwrap(),
        burst: NonZeroU32::new(5).unwrap(),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(LIMIT, start);
        for _ in 0..5 {
            assert_eq!(budget.take(start), Verdict::Handle);
        }
        assert_eq!(budget.take(start), Verdict::Refuse);
        // 10 per second: one token every 100 ms, not before; a refusal
        // costs none, so by 200 ms two have come.
        assert_eq!(budget.take(start + ms(99)), Verdict::Refuse);
        assert_eq!(budget.take(start + ms(200)), Verdict::Handle);
        assert_eq!(budget.take(start + ms(200)), Verdict::Handle);
        assert_eq!(budget.take(start + ms(200)), Verdict::Refuse);
        // At the rate, every message is handled, for as long as it lasts.
        for i in 1..=100 {
            assert_eq!(
                budget.take(start + ms(300 + 100 * i)),
                Verdict::Handle,
                "message {i}"
            );
        }
        // Idle time refills only up to the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(budget.take(later), Verdict::Handle);
        }
        assert_eq!(budget.take(later), Verdict::Refuse);
    }

    #[test]
    fn a_flood_is_closed_and_a_pause_forgives() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(LIMIT, start);
        for _ in 0..5 {
            budget.take(start);
        }
        for i in 1..=5 {
            assert_eq!(budget.take(start + ms(i)), Verdict::Refuse);
        }
        // A second without refusals (the client slowed down) starts over.
        let later = start + ms(1100);
        for _ in 0..5 {
            assert_eq!(budget.take(later), Verdict::Handle);
        }
        for i in 1..=5 {
            assert_eq!(budget.take(later + ms(i)), Verdict::Refuse);
        }
        assert_eq!(budget.take(later + ms(6)), Verdict::Close);
    }

    #[test]
    fn an_extra_message_now_and_then_is_refused_but_never_closed() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(LIMIT, start);
        let mut refused = 0;
        // At the rate for a minute, plus one more every 1.5 s.
        for i in 0..600u64 {
            let at = start + ms(100 * i);
            let mut verdicts = vec![budget.take(at)];
            if i % 15 == 0 {
                verdicts.push(budget.take(at));
            }
            for verdict in verdicts {
                assert_ne!(verdict, Verdict::Close, "message {i}");
                refused += u32::from(verdict == Verdict::Refuse);
            }
        }
        assert!(refused > 30, "the extras were refused: {refused}");
    }

    #[test]
    fn steadily_over_the_rate_is_closed_too() {
        // 20 a second against 10: every other message is refused, and the
        // refusals never leave a quiet second.
        let start = Instant::now();
        let mut budget = MessageBudget::new(LIMIT, start);
        let mut verdicts = Vec::new();
        for i in 0..100 {
            let verdict = budget.take(start + ms(50 * i));
            verdicts.push(verdict);
            if verdict == Verdict::Close {
                break;
            }
        }
        assert_eq!(verdicts.last(), Some(&Verdict::Close), "{verdicts:?}");
        assert!(verdicts.contains(&Verdict::Handle));
    }
}
