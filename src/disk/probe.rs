use std::path::{Path, PathBuf};

/// Where free space is measured: the real data folder, or a test's fake disk.
pub trait FreeSpace: Send + Sync {
    /// Bytes an unprivileged process may still write.
    fn free_bytes(&self) -> std::io::Result<u64>;
    /// What is measured, for log lines.
    fn describe(&self) -> String;
}

/// statvfs(2) of the data folder.
pub struct DataDirProbe {
    path: PathBuf,
}

impl DataDirProbe {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }
}

impl FreeSpace for DataDirProbe {
    fn free_bytes(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.path)?;
        // f_bavail, not f_bfree: the blocks reserved for root are not ours.
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
