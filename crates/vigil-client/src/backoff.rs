//! Reconnect delays: doubling from `initial` up to `max`, with jitter so that
//! many clients cut off by one server restart do not come back in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt. `jitter` in [0, 1) picks a point in
    /// the upper half of the current step ("equal jitter"): never less than
    /// half the step, so the delays still grow.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        step / 2 + step.mul_f64(jitter / 2.0)
    }

    /// [`Self::next_delay`] with a random jitter.
    pub fn next_random(&mut self) -> Duration {
        self.next_delay(rand::random::<f64>())
    }

    /// After a connection that worked: the next failure starts small again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    /// 0.5 s doubling to 30 s: quick after a blip, gentle on a server that is down.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(ms(500), ms(4000));
        let full: Vec<_> = (0..6).map(|_| backoff.next_delay(1.0)).collect();
        assert_eq!(full, [ms(500), ms(1000), ms(2000), ms(4000), ms(4000), ms(4000)]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_step() {
        let mut backoff = Backoff::new(ms(1000), ms(1000));
        assert_eq!(backoff.next_delay(0.0), ms(500));
        assert_eq!(backoff.next_delay(0.5), ms(750));
        for _ in 0..100 {
            let d = backoff.next_random();
            assert!(d >= ms(500) && d <= ms(1000), "{d:?}");
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(ms(100), ms(10_000));
        for _ in 0..5 {
            backoff.next_delay(1.0);
        }
        assert_eq!(backoff.next_delay(1.0), ms(3200));
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), ms(100));
    }
}
