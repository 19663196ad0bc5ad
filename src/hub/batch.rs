//! Many sessions asking at once, one database round trip: a reconnect storm
//! of 5000 clients would otherwise queue 5000 single-row inserts and 5000
//! single-row reads behind each other.
//!
//! Callers hand their request to one task and wait for its answer. The task
//! serves everything that arrived while the previous batch was in flight,
//! in arrival order, so a lone request costs one round trip as before and a
//! storm costs one per batch.
//!
//! These round trips are what a connecting client waits for, so they come
//! first: while one is in flight the hub's background writers (the message
//! log) hold back a moment ([`Foreground::quiet`]) instead of putting a
//! long `insert_many` in front of it on a busy database.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tracing::Instrument;

/// Requests waiting for the task; a caller beyond it waits for room.
const QUEUE: usize = 16_384;

/// Most requests one batch serves.
const LARGEST_BATCH: usize = 1000;

/// Round trips someone is waiting for right now.
#[derive(Clone, Default)]
pub struct Foreground {
    inner: Arc<ForegroundInner>,
}

#[derive(Default)]
struct ForegroundInner {
    in_flight: AtomicUsize,
    idle: Notify,
}

struct InFlight(Foreground);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.inner.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.inner.idle.notify_waiters();
        }
    }
}

impl Foreground {
    fn enter(&self) -> InFlight {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Waits until no foreground round trip is in flight, or `at_most`:
    /// background work yields, but is never starved.
    pub async fn quiet(&self, at_most: Duration) {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }
}

pub struct Batched<Req, Resp> {
    tx: mpsc::Sender<(Req, oneshot::Sender<Resp>)>,
}

impl<Req, Resp> Clone for Batched<Req, Resp> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Batched<Req, Resp> {
    /// Starts the task on the current runtime. `serve` answers a batch with
    /// one response per request, in order.
    pub fn start<F, Fut>(name: &'static str, foreground: Foreground, mut serve: F) -> Self
    where
        F: FnMut(Vec<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Resp>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<(Req, oneshot::Sender<Resp>)>(QUEUE);
        let task = async move {
            let mut pending = Vec::with_capacity(LARGEST_BATCH);
            while rx.recv_many(&mut pending, LARGEST_BATCH).await > 0 {
                let (requests, replies): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
                let in_flight = foreground.enter();
                let responses = serve(requests).await;
                drop(in_flight);
                debug_assert_eq!(responses.len(), replies.len());
                for (reply, response) in replies.into_iter().zip(responses) {
                    // The caller may have given up (its session ended).
                    let _ = reply.send(response);
                }
            }
        };
        tokio::spawn(task.instrument(tracing::info_span!("batched", name)));
        Self { tx }
    }

    /// The answer to `request`, or `None` when the task is gone (the
    /// process is stopping).
    pub async fn call(&self, request: Req) -> Option<Resp> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((request, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let double = Batched::start("test", Foreground::default(), move |numbers: Vec<u32>| {
            seen.lock().unwrap().push(numbers.len());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                numbers.into_iter().map(|n| n * 2).collect()
            }
        });
        let calls: Vec<_> = (0..200)
            .map(|n| {
                let double = double.clone();
                tokio::spawn(async move { (n, double.call(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, Some(n * 2));
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes.len() < 20, "200 calls in {} round trips", sizes.len());
    }
}

#[cfg(test)]
mod foreground_tests {
    use super::*;

    #[tokio::test]
    async fn background_work_waits_for_the_foreground_but_not_forever() {
        let foreground = Foreground::default();
        // Nothing in flight: at once (a minute's bound would fail the test).
        tokio::time::timeout(Duration::from_secs(5), foreground.quiet(Duration::from_secs(60)))
            .await
            .expect("no wait");

        let in_flight = foreground.enter();
        let started = std::time::Instant::now();
        let ends = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(in_flight);
        });
        tokio::time::timeout(Duration::from_secs(5), foreground.quiet(Duration::from_secs(60)))
            .await
            .expect("until the round trip ended, not the bound");
        assert!(started.elapsed() >= Duration::from_millis(30));
        ends.await.unwrap();

        let _stuck = foreground.enter();
        let started = std::time::Instant::now();
        foreground.quiet(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "the bound, then on"
        );
    }
}
