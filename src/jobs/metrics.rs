//! What this instance's workers did, for `/metrics` (the queue's depth per
//! state is the database's, counted when scraped).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{JobKind, JobState};

#[derive(Default)]
struct PerKind {
    done: AtomicU64,
    failed: AtomicU64,
    /// Microseconds, over the jobs that ended here.
    duration_us: AtomicU64,
}

#[derive(Default)]
struct Figures {
    running: AtomicU64,
    lost: AtomicU64,
    detect: PerKind,
    video: PerKind,
    webhook: PerKind,
}

/// Counters shared by the workers; cheap to clone.
#[derive(Clone, Default)]
pub struct JobMetrics(Arc<Figures>);

impl JobMetrics {
    fn kind(&self, kind: JobKind) -> &PerKind {
        match kind {
            JobKind::Detect => &self.0.detect,
            JobKind::Video => &self.0.video,
            JobKind::Webhook => &self.0.webhook,
        }
    }

    pub(super) fn started(&self) {
        self.0.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker stopped running a job, however it ended.
    pub(super) fn stopped(&self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }

    /// A job ended for good: `ok` done, else failed.
    pub(super) fn finished(&self, kind: JobKind, took: Duration, ok: bool) {
        let figures = self.kind(kind);
        let counter = if ok { &figures.done } else { &figures.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        figures.duration_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// A job this instance ran was cancelled or taken over.
    pub(super) fn lost(&self) {
        self.0.lost.fetch_add(1, Ordering::Relaxed);
    }

    /// The job lines of `/metrics`; `depth` is the queue's count per state,
    /// when the database answered.
    pub fn render(&self, depth: Option<&[(JobState, u64)]>) -> String {
        let mut out = String::new();
        if let Some(depth) = depth {
            let name = "vigil_jobs";
            let _ = writeln!(
                out,
                "# HELP {name} Jobs in the queue (every instance's), by state.\n# TYPE {name} gauge"
            );
            for (state, n) in depth {
                let _ = writeln!(out, "{name}{{state=\"{}\"}} {n}", state.as_str());
            }
        }
        let name = "vigil_jobs_running";
        let _ = writeln!(
            out,
            "# HELP {name} Jobs this instance's workers are running.\n# TYPE {name} gauge"
        );
        let _ = writeln!(out, "{name} {}", self.0.running.load(Ordering::Relaxed));
        let name = "vigil_jobs_lost_total";
        let _ = writeln!(out, "# HELP {name} Jobs stopped here because they were cancelled or taken over.\n# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", self.0.lost.load(Ordering::Relaxed));
        let kinds = [
            ("detect", &self.0.detect),
            ("video", &self.0.video),
            ("webhook", &self.0.webhook),
        ];
        let name = "vigil_jobs_ended_total";
        let _ = writeln!(
            out,
            "# HELP {name} Jobs that ended here, by kind and outcome.\n# TYPE {name} counter"
        );
        for (kind, figures) in kinds {
            for (outcome, counter) in [("done", &figures.done), ("failed", &figures.failed)] {
                let _ = writeln!(
                    out,
                    "{name}{{kind=\"{kind}\",outcome=\"{outcome}\"}} {}",
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        let name = "vigil_job_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a job's start here to its end.\n# TYPE {name} summary"
        );
        for (kind, figures) in kinds {
            let count = figures.done.load(Ordering::Relaxed) + figures.failed.load(Ordering::Relaxed);
            let sum = figures.duration_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_ended_and_what_runs() {
        let metrics = JobMetrics::default();
        metrics.started();
        metrics.started();
        metrics.finished(JobKind::Video, Duration::from_millis(1500), true);
        metrics.stopped();
        let text = metrics.render(Some(&[(JobState::Queued, 4)]));
        assert!(text.contains("vigil_jobs{state=\"queued\"} 4"), "{text}");
        assert!(text.contains("vigil_jobs_running 1"), "{text}");
        assert!(
            text.contains("vigil_jobs_ended_total{kind=\"video\",outcome=\"done\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_job_duration_seconds_sum{kind=\"video\"} 1.5"),
            "{text}"
        );
        metrics.stopped();
        assert!(metrics.render(None).contains("vigil_jobs_running 0"));
    }
}
