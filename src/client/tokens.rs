//! The tokens of `vigil client login`, one pair per server, in
//! `<config dir>/vigil/tokens.json` (`$XDG_CONFIG_HOME` or `~/.config` on
//! Linux). The folder is 0700 and the file 0600: a refresh token is a
//! password for 30 days.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::ClientError;

/// One login's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token stops working (from `expires_in` at issue time).
    pub expires_at: DateTime<Utc>,
    /// The login name, for messages.
    pub login: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    /// Keyed by the server's base URL as `--server` normalises it.
    servers: BTreeMap<String, StoredTokens>,
}

#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `<config dir>/vigil/tokens.json`.
    pub fn default_location() -> Result<Self, ClientError> {
        let dir = dirs::config_dir().ok_or_else(|| ClientError::TokenStore {
            path: PathBuf::from("~/.config"),
            detail: "no config folder: set HOME or XDG_CONFIG_HOME".into(),
        })?;
        Ok(Self::at(dir.join("vigil").join("tokens.json")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::TokenStore {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    fn read(&self) -> Result<TokenFile, ClientError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.error(format!("unreadable ({e}); delete it and log in again"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Replaces the file in one rename, so a crash never leaves half a file
    /// and the new file is 0600 from its first byte.
    fn write(&self, file: &TokenFile) -> Result<(), ClientError> {
        let dir = self.path.parent().ok_or_else(|| self.error("no parent folder"))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.error(e))?;
        let tmp = dir.join(format!(".tokens.{}.tmp", std::process::id()));
        let result = (|| {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // An old temp file may have been created with other bits.
            out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            out.write_all(&serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?)?;
            out.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| self.error(e))
    }

    pub fn load(&self, server: &str) -> Result<Option<StoredTokens>, ClientError> {
        Ok(self.read()?.servers.remove(server))
    }

    pub fn save(&self, server: &str, tokens: &StoredTokens) -> Result<(), ClientError> {
        let mut file = self.read()?;
        file.servers.insert(server.to_owned(), tokens.clone());
        self.write(&file)
    }

    /// Forgets the server's tokens; `false` when there were none.
    pub fn remove(&self, server: &str) -> Result<bool, ClientError> {
        let mut file = self.read()?;
        let removed = file.servers.remove(server).is_some();
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: u32) -> StoredTokens {
        StoredTokens {
            access_token: format!("access-{n}"),
            refresh_token: format!("refresh-{n}"),
            expires_at: "2026-05-01T10:00:00Z".parse().unwrap(),
            login: "alice".into(),
        }
    }

    #[test]
    fn keeps_one_pair_per_server_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::at(dir.path().join("vigil").join("tokens.json"));
        assert_eq!(store.load("http://a/").unwrap(), None);

        store.save("http://a/", &tokens(1)).unwrap();
        store.save("https://b/", &tokens(2)).unwrap();
        store.save("http://a/", &tokens(3)).unwrap();
        assert_eq!(store.load("http://a/").unwrap(), Some(tokens(3)));
        assert_eq!(store.load("https://b/").unwrap(), Some(tokens(2)));

        let mode = std::fs::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(store.path().parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        assert!(store.remove("http://a/").unwrap());
        assert!(!store.remove("http://a/").unwrap());
        assert_eq!(store.load("http://a/").unwrap(), None);
        assert_eq!(store.load("https://b/").unwrap(), Some(tokens(2)));
    }

    #[test]
    fn a_corrupt_file_is_named_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "{not json").unwrap();
        let store = TokenStore::at(&path);
        let err = store.save("http://a/", &tokens(1)).unwrap_err();
        assert!(err.to_string().contains("tokens.json"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }
}
