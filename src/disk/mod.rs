//! The disk guard: free space in the data folder, measured periodically,
//! decides whether vigil may store what it is sent. Below the threshold
//! uploads are refused with 507 `insufficient_storage` and camera frames are
//! recorded without their images; storing resumes once space returns.
//!
//! Resuming needs a little more than the threshold (a tenth more, at most
//! 256 MiB): a disk hovering at the threshold would otherwise flip between
//! the two states with every upload.

mod probe;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use probe::{DataDirProbe, FreeSpace};

use crate::error::{Coded, ErrorCode};

const MIB: u64 = 1024 * 1024;
const MAX_HYSTERESIS: u64 = 256 * MIB;

/// Refused: the data folder is below `--min-free-disk-mb`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the server is short of disk space ({free_mib} MiB free, below the {min_mib} MiB it keeps free): nothing new is stored until space returns")]
pub struct StoragePaused {
    pub free_mib: u64,
    pub min_mib: u64,
}

impl Coded for StoragePaused {
    fn code(&self) -> ErrorCode {
        ErrorCode::InsufficientStorage
    }
}

/// Whether storing is allowed now; cheap to clone and to read on every
/// request. Written only by the [`DiskGuard`].
#[derive(Clone)]
pub struct Storage {
    inner: Arc<State>,
}

struct State {
    min_free: u64,
    paused: AtomicBool,
    free: AtomicU64,
}

/// A change of state the guard saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Paused,
    Resumed,
}

impl Storage {
    /// A guard keeping `min_free_bytes` free; 0 turns it off.
    pub fn new(min_free_bytes: u64) -> Self {
        Self {
            inner: Arc::new(State {
                min_free: min_free_bytes,
                paused: AtomicBool::new(false),
                free: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// Storing always allowed (`--min-free-disk-mb 0`, and commands without a guard).
    pub fn unguarded() -> Self {
        Self::new(0)
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.min_free > 0
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::Relaxed)
    }

    /// `Err` while storing is paused: what every upload asks first.
    pub fn ensure_room(&self) -> Result<(), StoragePaused> {
        if self.is_paused() {
            Err(self.paused_error())
        } else {
            Ok(())
        }
    }

    fn paused_error(&self) -> StoragePaused {
        StoragePaused {
            free_mib: self.inner.free.load(Ordering::Relaxed) / MIB,
            min_mib: self.inner.min_free / MIB,
        }
    }

    /// Why storing is paused, for `/readyz`; `None` while it is not.
    pub fn pause_reason(&self) -> Option<String> {
        self.is_paused().then(|| self.paused_error().to_string())
    }

    /// Free bytes at which a paused guard resumes.
    fn resume_at(&self) -> u64 {
        let min = self.inner.min_free;
        min.saturating_add((min / 10).min(MAX_HYSTERESIS))
    }

    /// Takes one measurement; returns the transition it caused, if any.
    pub fn observe(&self, free_bytes: u64) -> Option<Transition> {
        self.inner.free.store(free_bytes, Ordering::Relaxed);
        if !self.is_enabled() {
            return None;
        }
        let paused = self.is_paused();
        let next = if paused {
            free_bytes < self.resume_at()
        } else {
            free_bytes < self.inner.min_free
        };
        if next == paused {
            return None;
        }
        self.inner.paused.store(next, Ordering::Relaxed);
        Some(if next {
            Transition::Paused
        } else {
            Transition::Resumed
        })
    }
}

/// Measures the data folder every `interval` and publishes the result.
pub struct DiskGuard {
    pub probe: Arc<dyn FreeSpace>,
    pub storage: Storage,
    pub interval: Duration,
}

impl DiskGuard {
    /// One measurement, with its log line on a transition and its metrics.
    /// Run once before the server listens, so the first request already
    /// meets the right state.
    pub fn check(&self) {
        let free = match self.probe.free_bytes() {
            Ok(free) => free,
            Err(err) => {
                // The last state stands: a failing probe neither pauses nor
                // resumes storing.
                tracing::warn!(path = %self.probe.describe(), error = %err, "cannot measure free disk space");
                return;
            }
        };
        ::metrics::gauge!("vigil_disk_free_bytes").set(free as f64);
        let min_free_mib = self.storage.inner.min_free / MIB;
        match self.storage.observe(free) {
            Some(Transition::Paused) => tracing::error!(
                path = %self.probe.describe(),
                free_mib = free / MIB,
                min_free_mib,
                "disk almost full: uploads refused (507) and camera frames no longer stored"
            ),
            Some(Transition::Resumed) => tracing::warn!(
                path = %self.probe.describe(),
                free_mib = free / MIB,
                min_free_mib,
                "disk space is back: storing resumed"
            ),
            None => {}
        }
        ::metrics::gauge!("vigil_storage_paused").set(if self.storage.is_paused() { 1.0 } else { 0.0 });
    }

    pub async fn run(self) {
        loop {
            tokio::time::sleep(self.interval).await;
            self.check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A disk whose free space the test sets.
    struct FakeDisk(Mutex<std::io::Result<u64>>);

    impl FakeDisk {
        fn set(&self, free: std::io::Result<u64>) {
            *self.0.lock().unwrap() = free;
        }
    }

    impl FreeSpace for FakeDisk {
        fn free_bytes(&self) -> std::io::Result<u64> {
            match &*self.0.lock().unwrap() {
                Ok(free) => Ok(*free),
                Err(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
            }
        }

        fn describe(&self) -> String {
            "fake disk".into()
        }
    }

    fn guard(min_mib: u64, free_mib: u64) -> (DiskGuard, Arc<FakeDisk>) {
        let disk = Arc::new(FakeDisk(Mutex::new(Ok(free_mib * MIB))));
        let guard = DiskGuard {
            probe: disk.clone(),
            storage: Storage::new(min_mib * MIB),
            interval: Duration::from_secs(1),
        };
        (guard, disk)
    }

    #[test]
    fn pauses_below_the_threshold_and_resumes_when_space_returns() {
        let (guard, disk) = guard(512, 2048);
        guard.check();
        assert!(!guard.storage.is_paused());
        assert!(guard.storage.ensure_room().is_ok());

        disk.set(Ok(100 * MIB));
        guard.check();
        assert!(guard.storage.is_paused());
        let err = guard.storage.ensure_room().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InsufficientStorage);
        assert_eq!((err.free_mib, err.min_mib), (100, 512));
        assert!(guard.storage.pause_reason().unwrap().contains("100 MiB free"));

        // At the threshold, not yet above it by the margin: still paused.
        disk.set(Ok(520 * MIB));
        guard.check();
        assert!(guard.storage.is_paused(), "no flapping at the threshold");

        disk.set(Ok(600 * MIB));
        guard.check();
        assert!(!guard.storage.is_paused());
        assert!(guard.storage.ensure_room().is_ok());
        assert_eq!(guard.storage.pause_reason(), None);
    }

    #[test]
    fn transitions_are_reported_once() {
        let storage = Storage::new(100);
        assert_eq!(storage.observe(1000), None);
        assert_eq!(storage.observe(50), Some(Transition::Paused));
        assert_eq!(storage.observe(40), None);
        assert_eq!(storage.observe(105), None, "within the margin");
        assert_eq!(storage.observe(110), Some(Transition::Resumed));
        assert_eq!(storage.observe(2000), None);
    }

    #[test]
    fn a_failing_probe_changes_nothing() {
        let (guard, disk) = guard(512, 10);
        guard.check();
        assert!(guard.storage.is_paused());
        disk.set(Err(std::io::Error::other("gone")));
        guard.check();
        assert!(
            guard.storage.is_paused(),
            "paused until a measurement says otherwise"
        );
    }

    #[test]
    fn the_state_and_the_free_space_are_series() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let (guard, disk) = guard(512, 100);
        ::metrics::with_local_recorder(&recorder, || guard.check());
        let text = handle.render();
        assert!(text.contains("vigil_storage_paused 1"), "{text}");
        assert!(
            text.contains(&format!("vigil_disk_free_bytes {}", 100 * MIB)),
            "{text}"
        );
        disk.set(Ok(4096 * MIB));
        ::metrics::with_local_recorder(&recorder, || guard.check());
        assert!(handle.render().contains("vigil_storage_paused 0"));
    }

    #[test]
    fn zero_turns_the_guard_off() {
        let (guard, _disk) = guard(0, 0);
        guard.check();
        assert!(!guard.storage.is_enabled());
        assert!(!guard.storage.is_paused());
    }

    #[test]
    fn the_real_probe_measures_a_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        let free = DataDirProbe::new(dir.path()).free_bytes().unwrap();
        assert!(free > 0);
        assert!(DataDirProbe::new(&dir.path().join("missing"))
            .free_bytes()
            .is_err());
    }
}
