//! Fibonacci numbers of any size by fast doubling: O(log n) big-integer
//! multiplications instead of n additions, so fib(100000) takes milliseconds.
//! The work is CPU-bound, so it runs on the blocking pool, never on the
//! async workers that serve every other session.

use std::sync::Arc;

use num_bigint::BigUint;
use tokio::sync::Semaphore;
use vigil_wire::hub::FibN;

use crate::error::{Coded, ErrorCode};

/// F(n), with F(0) = 0 and F(1) = 1.
pub fn fib(n: u64) -> BigUint {
    // Invariant: (a, b) = (F(k), F(k+1)) for k = the bits of n read so far.
    let mut a = BigUint::ZERO;
    let mut b = BigUint::from(1u32);
    let bits = u64::BITS - n.leading_zeros();
    for i in (0..bits).rev() {
        // F(2k) = F(k) * (2F(k+1) - F(k)); never negative since F(k+1) ≥ F(k).
        let even = &a * ((&b << 1u32) - &a);
        // F(2k+1) = F(k)² + F(k+1)²
        let odd = &a * &a + &b * &b;
        if (n >> i) & 1 == 0 {
            a = even;
            b = odd;
        } else {
            b = &even + &odd;
            a = odd;
        }
    }
    a
}

/// Computes Fibonacci numbers off the async runtime, a bounded number at a
/// time: a flood of requests queues here instead of taking every blocking
/// thread of the process.
#[derive(Clone)]
pub struct FibService {
    permits: Arc<Semaphore>,
    pub max_n: u64,
}

impl FibService {
    pub fn new(max_n: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            max_n,
        }
    }

    /// Refuses an `n` above `--fib-max-n` before any work is queued.
    pub fn check(&self, n: FibN) -> Result<u64, FibError> {
        let n = n.get();
        if n > self.max_n {
            return Err(FibError::TooLarge { max: self.max_n });
        }
        Ok(n)
    }

    /// F(n) in decimal.
    pub async fn decimal(&self, n: u64) -> Result<String, FibError> {
        if n > self.max_n {
            return Err(FibError::TooLarge { max: self.max_n });
        }
        let _permit = self.permits.acquire().await.map_err(|_| FibError::Cancelled)?;
        tokio::task::spawn_blocking(move || fib(n).to_string())
            .await
            .map_err(|_| FibError::Cancelled)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FibError {
    #[error("n is too large: at most {max}")]
    TooLarge { max: u64 },
    #[error("the computation was cancelled")]
    Cancelled,
}

impl Coded for FibError {
    fn code(&self) -> ErrorCode {
        match self {
            FibError::TooLarge { .. } => ErrorCode::InvalidFibN,
            FibError::Cancelled => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_addition(n: u64) -> BigUint {
        let (mut a, mut b) = (BigUint::ZERO, BigUint::from(1u32));
        for _ in 0..n {
            let next = &a + &b;
            a = std::mem::replace(&mut b, next);
        }
        a
    }

    #[test]
    fn matches_the_definition() {
        for n in 0..300 {
            assert_eq!(fib(n), by_addition(n), "F({n})");
        }
        assert_eq!(fib(2000), by_addition(2000));
    }

    #[test]
    fn known_values() {
        assert_eq!(fib(0).to_string(), "0");
        assert_eq!(fib(1).to_string(), "1");
        assert_eq!(fib(10).to_string(), "55");
        assert_eq!(fib(93).to_string(), "12200160415121876738");
        assert_eq!(fib(100).to_string(), "354224848179261915075");
    }

    #[test]
    fn large_n_has_the_expected_size() {
        // F(n) ≈ φⁿ/√5: log10 F(100000) ≈ 20898.6, so 20899 digits.
        assert_eq!(fib(100_000).to_string().len(), 20899);
    }
}
