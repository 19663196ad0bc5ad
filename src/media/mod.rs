//! Saved images: the store (a folder, or GridFS for several instances) behind
//! one trait, ids that cannot name anything outside the store, and signed URLs
//! so that `<img src>` works without an Authorization header.

mod fs;
mod gridfs;
pub mod signed;
mod sweep;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;

pub use fs::FileStore;
pub use gridfs::GridFsStore;
pub use sweep::{sweep_orphans, MediaReferences, SweepError};
/// Image formats the store holds; the extension is part of the id.
pub use vigil_wire::media::ImageKind;

use crate::error::{Coded, ErrorCode};

/// `<24 hex digits>.<ext>`: the only names the store accepts, so a request
/// can never reach a path outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaId {
    pub oid: ObjectId,
    pub kind: ImageKind,
}

impl MediaId {
    pub fn new(kind: ImageKind) -> Self {
        Self {
            oid: ObjectId::new(),
            kind,
        }
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.oid.to_hex(), self.kind.extension())
    }
}

impl FromStr for MediaId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (hex, ext) = s.split_once('.').ok_or(())?;
        if hex.len() != 24
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(());
        }
        let kind = ImageKind::ALL
            .into_iter()
            .find(|k| k.extension() == ext)
            .ok_or(())?;
        Ok(Self {
            oid: ObjectId::parse_str(hex).map_err(drop)?,
            kind,
        })
    }
}

impl serde::Serialize for MediaId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MediaId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom(format!("invalid media id {s:?}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("media store database: {0}")]
    Db(#[from] mongodb::error::Error),
}

impl Coded for MediaError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// Where images live. Writes are durable when `put` returns.
pub trait MediaStore: Send + Sync {
    fn put<'a>(&'a self, id: MediaId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>>;
    /// `None` when there is no such image.
    fn get(&self, id: MediaId) -> BoxFuture<'_, Result<Option<Vec<u8>>, MediaError>>;
    /// Removing an absent image is not an error.
    fn delete(&self, id: MediaId) -> BoxFuture<'_, Result<(), MediaError>>;
    /// Images stored more than `age` ago, for the orphan sweep.
    fn older_than(&self, age: Duration) -> BoxFuture<'_, Result<Vec<MediaId>, MediaError>>;
}

pub type SharedMediaStore = Arc<dyn MediaStore>;

/// Where images are kept and how long their signed URLs work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaSettings {
    pub backend: MediaBackend,
    pub url_ttl: Duration,
}

/// Where [`MediaStore`] keeps images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaBackend {
    /// Files under $VIGIL_DATA_DIR/images (one instance).
    Fs,
    /// GridFS in the database (several instances sharing one database).
    Gridfs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_paths() {
        let id = MediaId::new(ImageKind::Png);
        assert_eq!(id.to_string().parse::<MediaId>().unwrap(), id);
        for bad in [
            "../../etc/passwd",
            "0123456789abcdef01234567",
            "0123456789abcdef01234567.exe",
            "0123456789ABCDEF01234567.jpg",
            "0123456789abcdef0123456.jpg",
            "0123456789abcdef01234567.jpg/..",
            "/0123456789abcdef0123456.jpg",
        ] {
            assert!(bad.parse::<MediaId>().is_err(), "{bad}");
        }
    }
}
