//! Where a server keeps its images, for the commands that read or write
//! them beside it (erase, backup, restore): the same flags and variables
//! as `vigil serve`, so one environment serves all of them.

use std::path::PathBuf;
use std::sync::Arc;

use crate::db::Database;
use crate::media::{FileStore, GridFsStore, MediaBackend, SharedMediaStore};

#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// The server's data folder (images live in its `images/` with the fs store).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the server keeps images: fs or gridfs (then they are in the database).
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,
}

impl MediaArgs {
    /// The folder of the fs store.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    pub fn open(&self, db: &Database) -> std::io::Result<SharedMediaStore> {
        Ok(match self.media_store {
            MediaBackend::Fs => Arc::new(FileStore::open(self.images_dir())?),
            MediaBackend::Gridfs => Arc::new(GridFsStore::new(db)),
        })
    }
}
