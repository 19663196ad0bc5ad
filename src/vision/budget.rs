//! How many pixels may be decoded and held at once, across every request.
//!
//! A decoded image costs 3 bytes a pixel, and more while it is drawn on
//! and encoded: sixteen 6300×6300 PNGs of 115 KB each decoded together took
//! 4 GB. Each decode first reserves its pixels (read from the header) and
//! keeps them until the decoded image is dropped; when the budget is spent,
//! a request waits its turn, in arrival order, for up to `--decode-wait-secs`,
//! then is refused with 503 `busy` and `Retry-After`. An image larger than
//! the whole budget takes all of it, alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a refused client is told to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, Clone)]
pub struct DecodeBudget {
    /// One permit per pixel.
    pixels: Arc<Semaphore>,
    total: u32,
    /// How long a decode waits for room before it is refused.
    wait: Duration,
}

/// Pixels reserved for one decoded image, given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    _permit: Option<OwnedSemaphorePermit>,
}

/// The budget stayed spent for [`WAIT`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the server is decoding as many pixels as it may hold ({total} at once); try again in {RETRY_AFTER_SECS} s")]
pub struct Busy {
    pub total: u32,
}

impl DecodeBudget {
    /// A budget of `pixels` (at most u32::MAX; 0 means no limit), waited
    /// for at most `wait`.
    pub fn new(pixels: u64, wait: Duration) -> Self {
        let total = u32::try_from(pixels).unwrap_or(u32::MAX);
        Self {
            pixels: Arc::new(Semaphore::new(total as usize)),
            total,
            wait,
        }
    }

    /// No limit: for the command line, where one image is decoded at a time.
    pub fn unlimited() -> Self {
        Self::new(0, Duration::ZERO)
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    /// Pixels not reserved right now.
    pub fn available(&self) -> usize {
        self.pixels.available_permits()
    }

    /// Reserves `pixels` (all of the budget when it is smaller), waiting
    /// for room at most the budget's wait.
    pub async fn reserve(&self, pixels: u64) -> Result<Reserved, Busy> {
        if self.total == 0 {
            return Ok(Reserved { _permit: None });
        }
        let wanted = u32::try_from(pixels).unwrap_or(u32::MAX).clamp(1, self.total);
        let acquire = self.pixels.clone().acquire_many_owned(wanted);
        // A budget with room answers at once, even with no wait at all.
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reserved {
                _permit: Some(permit),
            }),
            // Timed out, or the semaphore closed (never: nothing closes it).
            _ => Err(Busy { total: self.total }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pixels_come_back_when_the_image_goes_and_a_spent_budget_refuses() {
        let budget = DecodeBudget::new(1000, Duration::from_millis(20));
        let first = budget.reserve(600).await.unwrap();
        assert_eq!(budget.available(), 400);
        let refused = budget.reserve(600).await;
        assert_eq!(refused.unwrap_err(), Busy { total: 1000 });
        assert_eq!(budget.available(), 400, "a refusal holds nothing");

        let patient = DecodeBudget {
            wait: Duration::from_secs(60),
            ..budget.clone()
        };
        let waiting = tokio::spawn(async move { patient.reserve(600).await });
        tokio::task::yield_now().await;
        drop(first);
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(budget.available(), 400);
        drop(second);

        let huge = budget.reserve(50_000).await.unwrap();
        assert_eq!(budget.available(), 0, "larger than the budget: all of it");
        drop(huge);
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn zero_is_no_limit() {
        let budget = DecodeBudget::unlimited();
        let _a = budget.reserve(u64::MAX).await.unwrap();
        let _b = budget.reserve(u64::MAX).await.unwrap();
    }
}
