//! Many sessions asking at once, one database round trip: a reconnect storm
//! of 5000 clients would otherwise queue 5000 single-row inserts and 5000
//! single-row reads behind each other.
//!
//! Callers hand their request to one task and wait for its answer. The task
//! serves everything that arrived while the previous batch was in flight,
//! in arrival order, so a lone request costs one round trip as before and a
//! storm costs one per batch.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Requests waiting for the task; a caller beyond it waits for room.
const QUEUE: usize = 16_384;

/// Most requests one batch serves.
const LARGEST_BATCH: usize = 1000;

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
    pub fn start<F, Fut>(name: &'static str, mut serve: F) -> Self
    where
        F: FnMut(Vec<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Resp>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<(Req, oneshot::Sender<Resp>)>(QUEUE);
        let task = async move {
            let mut pending = Vec::with_capacity(LARGEST_BATCH);
            while rx.recv_many(&mut pending, LARGEST_BATCH).await > 0 {
                let (requests, replies): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
                let responses = serve(requests).await;
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
        let double = Batched::start("test", move |numbers: Vec<u32>| {
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
