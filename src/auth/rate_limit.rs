//! Request rate limiting with governor (GCRA), one bucket per principal.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::api_keys::ApiKeyId;
use crate::users::UserId;

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    User(UserId),
    ApiKey(ApiKeyId),
    Ip(IpAddr),
}

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

#[derive(Clone)]
pub struct RequestLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<RateKey>>,
    clock: DefaultClock,
}

impl RequestLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when the key is over its limit.
    pub fn check(&self, key: RateKey) -> Result<(), Duration> {
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose bucket is full again: an idle key costs nothing, so
    /// memory follows the number of recently active clients, not all ever seen.
    pub fn evict_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    /// Runs [`Self::evict_idle`] periodically until the task is dropped.
    pub async fn evict_forever(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.evict_idle();
        }
    }
}

/// `Retry-After` wants whole seconds; never tell a client to retry in 0.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn burst_then_refusal_per_key() {
        let limiter = RequestLimiter::new(limit(10, 3));
        let a = RateKey::Ip("127.0.0.1".parse().unwrap());
        let b = RateKey::Ip("127.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limiter.check(b).is_ok(), "keys are independent");
    }

    #[test]
    fn idle_keys_are_evicted() {
        let limiter = RequestLimiter::new(limit(1000, 1));
        for i in 0..50u8 {
            limiter.check(RateKey::Ip(IpAddr::from([10, 0, 0, i]))).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 50);
        std::thread::sleep(Duration::from_millis(20));
        limiter.evict_idle();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }
}
