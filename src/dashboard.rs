//! The dashboard's files (`static/`): built into the binary, so one file is
//! the whole deployment, or read from a folder on every request while they
//! are being edited (`--static-dir`).
//!
//! Debug builds embed the files too (rust-embed's `debug-embed`), so the
//! tests exercise the very copy that ships; `--static-dir` is the way to
//! serve edits without a rebuild.
//!
//! Both sources answer the same way: a content type from a fixed table, a
//! strong ETag from the content's SHA-256 (computed at build time for the
//! embedded files), and only paths made of plain segments, so no request can
//! name a file outside the folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Embedded;

/// The page every route of the dashboard starts from.
pub const INDEX: &str = "index.html";

/// Longest asset path accepted; ours are far shorter.
const MAX_PATH: usize = 200;

/// Where the dashboard's files come from.
#[derive(Debug, Clone)]
pub enum Assets {
    Embedded,
    Dir(PathBuf),
}

/// One file, ready to send.
#[derive(Debug)]
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    pub content_type: &'static str,
    /// Hex digest (without quotes) naming exactly these bytes.
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    #[error("--static-dir {0}: not a folder with an {INDEX}")]
    NoIndex(PathBuf),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Coded for AssetsError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::Internal
    }
}

impl Assets {
    pub fn new(dir: Option<&Path>) -> Self {
        dir.map_or(Self::Embedded, |d| Self::Dir(d.to_owned()))
    }

    /// A folder without an index is a typo in the flag; say so at startup
    /// rather than with a 404 in the browser.
    pub fn check(&self) -> Result<(), AssetsError> {
        match self {
            Self::Embedded => Ok(()),
            Self::Dir(dir) if dir.join(INDEX).is_file() => Ok(()),
            Self::Dir(dir) => Err(AssetsError::NoIndex(dir.clone())),
        }
    }

    /// The file at `path` (relative to `static/`), or `None` when there is
    /// none or the path is not one a file of ours can have.
    pub async fn get(&self, path: &str) -> Result<Option<Asset>, AssetsError> {
        if !is_plain_path(path) {
            return Ok(None);
        }
        let (bytes, digest) = match self {
            Self::Embedded => match Embedded::get(path) {
                Some(file) => (file.data, file.metadata.sha256_hash()),
                None => return Ok(None),
            },
            Self::Dir(dir) => {
                let full = dir.join(path);
                match tokio::fs::read(&full).await {
                    // Hashing per request costs microseconds for files this
                    // size; the folder may change between any two requests.
                    Ok(bytes) => {
                        let digest: [u8; 32] = Sha256::digest(&bytes).into();
                        (Cow::Owned(bytes), digest)
                    }
                    Err(err)
                        if matches!(
                            err.kind(),
                            std::io::ErrorKind::NotFound
                                | std::io::ErrorKind::IsADirectory
                                | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        return Ok(None)
                    }
                    Err(source) => return Err(AssetsError::Read { path: full, source }),
                }
            }
        };
        let etag = hex::encode(&digest[..16]);
        Ok(Some(Asset {
            content_type: content_type(path),
            bytes,
            etag,
        }))
    }
}

/// `a/b.js`-style paths only: non-empty segments of `A-Z a-z 0-9 . _ -`,
/// none starting with a dot (no `..`, no hidden files), no backslashes.
pub fn is_plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Content types by extension; anything else is served as opaque bytes
/// (and `nosniff` keeps browsers from guessing).
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Everything the page needs comes from this origin; nothing inline runs.
/// `form-action 'none'`: forms are sent by script, so a form that somehow
/// submitted natively cannot put a password in a URL.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_accepted() {
        for ok in ["index.html", "js/app.js", "js/views/wall.js", "css/app.css"] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../Cargo.toml",
            "js/../../Cargo.toml",
            "js//app.js",
            ".git/config",
            "js/.hidden",
            "js\\app.js",
            "a b.js",
            "js/app.js%00",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
        assert!(!is_plain_path(&"a".repeat(MAX_PATH + 1)));
    }

    #[test]
    fn content_types_carry_a_charset_for_text() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[tokio::test]
    async fn the_embedded_index_is_there_and_unknown_files_are_not() {
        let assets = Assets::Embedded;
        let index = assets.get(INDEX).await.unwrap().expect("index.html is embedded");
        assert!(String::from_utf8_lossy(&index.bytes).contains("<!doctype html>"));
        assert_eq!(index.etag.len(), 32);
        // The build-time digest names these bytes, as the folder's would.
        assert_eq!(index.etag, hex::encode(&Sha256::digest(&index.bytes)[..16]));
        assert!(assets.get("nope.js").await.unwrap().is_none());
        assert!(assets.get("../Cargo.toml").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_folder_is_read_on_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let assets = Assets::new(Some(dir.path()));
        assert!(matches!(assets.check(), Err(AssetsError::NoIndex(_))));
        std::fs::write(dir.path().join(INDEX), "one").unwrap();
        assets.check().unwrap();
        let first = assets.get(INDEX).await.unwrap().unwrap();
        std::fs::write(dir.path().join(INDEX), "two").unwrap();
        let second = assets.get(INDEX).await.unwrap().unwrap();
        assert_eq!(&*second.bytes, b"two");
        assert_ne!(first.etag, second.etag);
        std::fs::create_dir(dir.path().join("js")).unwrap();
        assert!(
            assets.get("js").await.unwrap().is_none(),
            "a folder is not a file"
        );
    }
}
