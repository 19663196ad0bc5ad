//! Bounded work on tokio's blocking pool, shared by the detector and the
//! recognizer: at most N jobs at once, queued fairly in arrival order, so a
//! burst of uploads neither starves the runtime nor oversubscribes the cores.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::VisionError;

#[derive(Debug, Clone)]
pub struct BlockingSlots {
    permits: Arc<Semaphore>,
    /// "detector", "recognizer": for the error messages.
    what: &'static str,
}

impl BlockingSlots {
    /// `max_concurrent` of 0 is treated as 1.
    pub fn new(max_concurrent: usize, what: &'static str) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            what,
        }
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `job` on the blocking pool once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, VisionError> {
        // The permit moves into the blocking task so the slot stays taken
        // until the work is really finished, even if the caller's future is
        // dropped (client disconnected) while it runs.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| VisionError::Inference(format!("the {} pool is closed", self.what)))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| VisionError::Inference(format!("the {} task failed: {e}", self.what)))
    }
}
