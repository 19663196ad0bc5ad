//! Images appearing in a folder (an FTP drop, a camera that uploads stills).
//! Polled rather than watched with inotify: it works the same on network
//! mounts and needs no extra crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{stopped, Ended, FrameOut};
use crate::vision::{decode_image, ImageLimits};

const POLL: Duration = Duration::from_millis(500);
const EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "ppm"];

type Stamp = (u64, Option<SystemTime>);

pub async fn run(folder: &Path, out: &FrameOut, stop: &mut watch::Receiver<bool>) -> Result<Ended, String> {
    if !folder.is_dir() {
        return Err(format!("folder not found: {}", folder.display()));
    }
    // Files already there were seen by whoever put them there: only new
    // arrivals are frames.
    let mut seen: HashMap<PathBuf, Stamp> = scan(folder).await?.into_iter().collect();
    // A quiet folder is a healthy one: running without any frame yet.
    out.stats.set_state(crate::capture::CameraState::Running);
    // A file is read once its size and time stop changing between two
    // polls, so a half-copied image is not decoded.
    let mut settling: HashMap<PathBuf, Stamp> = HashMap::new();
    loop {
        tokio::select! {
            _ = stopped(stop) => return Ok(Ended::Stopped),
            _ = tokio::time::sleep(POLL) => {}
        }
        let mut current = scan(folder).await?;
        current.sort_by_key(|(_, (_, modified))| *modified);
        let present: std::collections::HashSet<&PathBuf> = current.iter().map(|(p, _)| p).collect();
        seen.retain(|p, _| present.contains(p));
        settling.retain(|p, _| present.contains(p));
        for (path, stamp) in &current {
            if seen.get(path) == Some(stamp) {
                continue;
            }
            if settling.get(path) != Some(stamp) {
                settling.insert(path.clone(), *stamp);
                continue;
            }
            settling.remove(path);
            seen.insert(path.clone(), *stamp);
            let file = path.clone();
            let decoded = tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&file).map_err(|e| e.to_string())?;
                decode_image(&bytes, &ImageLimits::default()).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?;
            match decoded {
                Ok(image) => {
                    tracing::debug!(file = %path.display(), "new image");
                    out.push(image);
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "skipping unreadable image");
                    out.stats.set_error(format!("{}: {err}", path.display()));
                }
            }
        }
    }
}

async fn scan(folder: &Path) -> Result<Vec<(PathBuf, Stamp)>, String> {
    let mut entries = tokio::fs::read_dir(folder)
        .await
        .map_err(|e| format!("cannot read folder {}: {e}", folder.display()))?;
    let mut files = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| format!("cannot read folder {}: {e}", folder.display()))?
    {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Dot files are what uploaders write before renaming into place.
        let wanted = !name.starts_with('.')
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !wanted {
            continue;
        }
        if let Ok(meta) = entry.metadata().await {
            if meta.is_file() {
                files.push((path, (meta.len(), meta.modified().ok())));
            }
        }
    }
    Ok(files)
}
