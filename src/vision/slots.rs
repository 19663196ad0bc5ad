//! Bounded work on tokio's blocking pool, shared by the detector and the
//! recognizer: at most N jobs at once, queued fairly in arrival order, so a
//! burst of uploads neither starves the runtime nor oversubscribes the cores.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::VisionError;
use crate::observability::series;

/// What a pool is called in error messages, and the histograms its work
/// and its waits for a slot are recorded in.
#[derive(Debug)]
pub struct SlotSeries {
    what: &'static str,
    duration: &'static str,
    queue_wait: &'static str,
}

pub static DETECTOR: SlotSeries = SlotSeries {
    what: "detector",
    duration: series::DETECTOR_DURATION,
    queue_wait: series::DETECTOR_QUEUE_WAIT,
};

pub static RECOGNIZER: SlotSeries = SlotSeries {
    what: "recognizer",
    duration: series::RECOGNIZER_DURATION,
    queue_wait: series::RECOGNIZER_QUEUE_WAIT,
};

#[derive(Debug, Clone)]
pub struct BlockingSlots {
    permits: Arc<Semaphore>,
    series: &'static SlotSeries,
}

impl BlockingSlots {
    /// `max_concurrent` of 0 is treated as 1.
    pub fn new(max_concurrent: usize, series: &'static SlotSeries) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            series,
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
        let series = self.series;
        let queued = Instant::now();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| VisionError::Inference(format!("the {} pool is closed", series.what)))?;
        ::metrics::histogram!(series.queue_wait).record(queued.elapsed().as_secs_f64());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = Instant::now();
            let done = job();
            ::metrics::histogram!(series.duration).record(started.elapsed().as_secs_f64());
            done
        })
        .await
        .map_err(|e| VisionError::Inference(format!("the {} task failed: {e}", series.what)))
    }
}
