//! Backups of a whole deployment by vigil itself (`vigil backup`, `vigil
//! restore`), for machines where MongoDB's own tools are not installed.
//!
//! A backup is a folder in mongodump's layout, so `mongorestore` can read it
//! too: `<db>/<collection>.bson` (the documents, concatenated) and
//! `<db>/<collection>.metadata.json` (options and indexes, in Extended
//! JSON); with the folder store the images in `media/`; and `manifest.json`,
//! which names every file with its size and SHA-256. The manifest is written
//! last and the folder is renamed into place only when complete, so a folder
//! with a manifest is a whole backup, and any byte changed since is found
//! before a restore touches the database.

mod bson_file;
mod dump;
mod manifest;
mod metadata;
mod restore;

use std::path::PathBuf;

pub use dump::{backup, BackupSummary, MediaSource};
pub use manifest::{Manifest, StoredMedia, FORMAT, MANIFEST};
pub use restore::{restore, RestoreOptions, RestoreSummary};

use crate::db::migrations::MigrationError;
use crate::db::DbError;
use crate::media::MediaError;

/// The backup's folder of images (the folder store's `images/`).
pub const MEDIA_DIR: &str = "media";

/// Collections whose documents describe processes running right now
/// (instance heartbeats, connected WebSocket clients, camera leases, the
/// migration lock, the journal marker). Their metadata is kept so that a
/// restore recreates them with their indexes, their documents are not:
/// restored elsewhere they would name processes that do not exist there.
pub const RUNTIME_STATE: [&str; 5] = [
    "instances",
    "ws_clients",
    "camera_leases",
    "_migrations_lock",
    "_journal",
];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already exists; give a new folder for each backup")]
    Exists(PathBuf),
    #[error("no backup at {0}")]
    NotFound(PathBuf),
    #[error(
        "{0} has no manifest.json: not a vigil backup, or one that did not finish \
         (an interrupted backup leaves only a hidden .partial folder)"
    )]
    NoManifest(PathBuf),
    #[error("database {0:?} holds no vigil data (no migration applied): is --database right?")]
    NoVigilData(String),
    #[error("no image folder at {0}: is --data-dir the server's, and --media-store right?")]
    NoImageFolder(PathBuf),
    #[error("the backup is damaged: {0}")]
    Corrupt(String),
    #[error("the backup cannot be restored here: {0}")]
    Incompatible(String),
    #[error(
        "database {database:?} already holds vigil data ({holding}); \
         restore into a new database, or pass --drop to replace it"
    )]
    NotEmpty { database: String, holding: String },
    #[error("{0}; the database is partly restored: fix the cause, then run the restore again with --drop")]
    Partial(Box<BackupError>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl From<mongodb::error::Error> for BackupError {
    fn from(err: mongodb::error::Error) -> Self {
        BackupError::Db(DbError::from_driver(err))
    }
}

/// Attaches the path to an I/O error.
fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.into();
    move |source| BackupError::Io { path, source }
}
