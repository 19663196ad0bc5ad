//! `manifest.json`: what a backup holds and the checksum of every file, and
//! the check that the folder still matches it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{io_at, BackupError};

pub const MANIFEST: &str = "manifest.json";

/// The layout this vigil writes and reads; a later layout gets a new number.
pub const FORMAT: u32 = 1;

/// Where the backed-up server kept its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredMedia {
    /// In the backup's `media/` folder.
    Fs,
    /// In the database (GridFS's `media.files` and `media.chunks`).
    Gridfs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub vigil_version: String,
    /// The newest migration applied to the database when it was backed up.
    pub migration_version: u32,
    pub created_at: DateTime<Utc>,
    /// The backed-up database's name: its files are in this sub-folder.
    pub database: String,
    pub media_store: StoredMedia,
    /// Documents per collection.
    pub collections: BTreeMap<String, u64>,
    /// Images in `media/` (0 with GridFS: they are documents then).
    pub media_files: u64,
    /// Every other file of the backup, by its path relative to the backup's
    /// folder with `/` between components.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn documents(&self) -> u64 {
        self.collections.values().sum()
    }

    /// Reads `dir`'s manifest and checks every file against it (presence,
    /// size, SHA-256) and that nothing else is there, before anything is
    /// restored from it.
    pub async fn verify(dir: &Path) -> Result<Self, BackupError> {
        match tokio::fs::metadata(dir).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(BackupError::NotFound(dir.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::NotFound(dir.to_owned()))
            }
            Err(e) => return Err(io_at(dir)(e)),
        }
        let path = dir.join(MANIFEST);
        let text = match tokio::fs::read(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::NoManifest(dir.to_owned()))
            }
            Err(e) => return Err(io_at(path)(e)),
        };
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| BackupError::Corrupt(format!("{MANIFEST} does not parse: {e}")))?;
        if manifest.format != FORMAT {
            return Err(BackupError::Incompatible(format!(
                "its format is {}, this vigil ({}) reads format {FORMAT}",
                manifest.format,
                env!("CARGO_PKG_VERSION")
            )));
        }
        manifest.check_names()?;
        for (name, expected) in &manifest.files {
            let file = dir.join(name);
            let actual = match hash_file(&file).await {
                Ok(actual) => actual,
                Err(BackupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BackupError::Corrupt(format!("{name} is missing")))
                }
                Err(e) => return Err(e),
            };
            if actual.bytes != expected.bytes {
                return Err(BackupError::Corrupt(format!(
                    "{name} has {} bytes, the manifest says {}",
                    actual.bytes, expected.bytes
                )));
            }
            if actual.sha256 != expected.sha256 {
                return Err(BackupError::Corrupt(format!(
                    "{name} does not match its checksum (sha256 {}, the manifest says {})",
                    actual.sha256, expected.sha256
                )));
            }
        }
        for name in files_under(dir).await? {
            if name != MANIFEST && !manifest.files.contains_key(&name) {
                return Err(BackupError::Corrupt(format!("{name} is not in the manifest")));
            }
        }
        Ok(manifest)
    }

    /// Every name is a plain relative path, and every collection has its two
    /// files: a manifest cannot make a restore read outside its folder or
    /// skip a collection silently.
    fn check_names(&self) -> Result<(), BackupError> {
        for name in self.files.keys() {
            let plain = !name.is_empty()
                && Path::new(name)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
            if !plain {
                return Err(BackupError::Corrupt(format!(
                    "the manifest names {name:?}, which is not a path inside the backup"
                )));
            }
        }
        if !is_plain_name(&self.database) {
            return Err(BackupError::Corrupt(format!(
                "the manifest's database name {:?} is not a folder name",
                self.database
            )));
        }
        for collection in self.collections.keys() {
            for file in [
                documents_file(&self.database, collection),
                metadata_file(&self.database, collection),
            ] {
                if !self.files.contains_key(&file) {
                    return Err(BackupError::Corrupt(format!(
                        "collection {collection} has no {file} in the manifest"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `<db>/<collection>.bson`, as mongodump names it.
pub fn documents_file(database: &str, collection: &str) -> String {
    format!("{database}/{collection}.bson")
}

/// `<db>/<collection>.metadata.json`, as mongodump names it.
pub fn metadata_file(database: &str, collection: &str) -> String {
    format!("{database}/{collection}.metadata.json")
}

/// Size and SHA-256 of a file, read in pieces (videos and dumps may be large).
pub async fn hash_file(path: &Path) -> Result<FileEntry, BackupError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_at(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    let mut bytes = 0_u64;
    loop {
        let n = file.read(&mut buffer).await.map_err(io_at(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(FileEntry {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The files under `dir`, as manifest names (relative, `/`-separated).
async fn files_under(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut names = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(dir.to_owned(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let mut entries = tokio::fs::read_dir(&folder).await.map_err(io_at(&folder))?;
        while let Some(entry) = entries.next_entry().await.map_err(io_at(&folder))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{name}");
            let kind = entry.file_type().await.map_err(io_at(entry.path()))?;
            if kind.is_dir() {
                pending.push((entry.path(), format!("{relative}/")));
            } else {
                names.push(relative);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[&str]) -> Manifest {
        Manifest {
            format: FORMAT,
            vigil_version: "0".into(),
            migration_version: 1,
            created_at: Utc::now(),
            database: "vigil".into(),
            media_store: StoredMedia::Fs,
            collections: BTreeMap::from([("users".to_owned(), 1)]),
            media_files: 0,
            files: files
                .iter()
                .map(|f| {
                    (
                        (*f).to_owned(),
                        FileEntry {
                            bytes: 0,
                            sha256: String::new(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn names_outside_the_backup_are_refused() {
        let fine = manifest(&["vigil/users.bson", "vigil/users.metadata.json", "media/a.jpg"]);
        fine.check_names().unwrap();
        for bad in ["../etc/passwd", "/etc/passwd", "media/../../x", ""] {
            let m = manifest(&["vigil/users.bson", "vigil/users.metadata.json", bad]);
            assert!(m.check_names().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_collection_without_its_files_is_refused() {
        let m = manifest(&["vigil/users.bson"]);
        let err = m.check_names().unwrap_err().to_string();
        assert!(err.contains("users.metadata.json"), "{err}");
    }

    #[test]
    fn a_database_name_that_is_a_path_is_refused() {
        let mut m = manifest(&["vigil/users.bson", "vigil/users.metadata.json"]);
        m.database = "../vigil".into();
        assert!(m.check_names().is_err());
    }
}
