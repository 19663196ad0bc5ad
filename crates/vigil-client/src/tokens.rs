//! The tokens of `vigil client login`, one pair per server, in
//! `<config dir>/vigil/tokens.json` (`$XDG_CONFIG_HOME` or `~/.config` on
//! Linux). The folder is 0700 and the file 0600: a refresh token is a
//! password for 30 days.
//!
//! Several clients may run at once (an upload, a watch, for two servers):
//! every change is a read-modify-write under an exclusive lock on
//! `tokens.lock`, so that none erases another's entry, and the file is
//! replaced in one rename, so that readers never see half of it.

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

/// Locked around every change; next to the tokens, never removed (removing
/// a lock file lets two processes hold "the" lock on different files).
const LOCK_FILE: &str = "tokens.lock";

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

    /// The store's folder, created if need be and 0700 whatever it was
    /// before (an older client, or a user's mkdir, may have left it 0755).
    fn private_dir(&self) -> Result<&Path, ClientError> {
        let dir = self.path.parent().ok_or_else(|| self.error("no parent folder"))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.error(e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| self.error(format!("cannot make {} private: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Reads the file, applies `change` and writes the result back when
    /// `change` says it changed something, all under the store's lock.
    fn update<T>(&self, change: impl FnOnce(&mut TokenFile) -> (T, bool)) -> Result<T, ClientError> {
        let dir = self.private_dir()?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| self.error(format!("cannot open the lock file: {e}")))?;
        // Released when `lock` is dropped (or the process dies).
        lock.lock().map_err(|e| self.error(format!("cannot lock: {e}")))?;
        let mut file = self.read()?;
        let (result, changed) = change(&mut file);
        if changed {
            self.write(dir, &file)?;
        }
        Ok(result)
    }

    /// Replaces the file in one rename, so a crash never leaves half a file
    /// and the new file is 0600 from its first byte. The temporary file has
    /// a fresh random name and must not exist yet: nothing planted or left
    /// behind under a predictable name is ever written through.
    fn write(&self, dir: &Path, file: &TokenFile) -> Result<(), ClientError> {
        let tmp = dir.join(format!(".tokens.{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.error(e))?;
        let result = (|| {
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
        self.update(|file| {
            file.servers.insert(server.to_owned(), tokens.clone());
            ((), true)
        })
    }

    /// Forgets the server's tokens; `false` when there were none.
    pub fn remove(&self, server: &str) -> Result<bool, ClientError> {
        self.update(|file| {
            let removed = file.servers.remove(server).is_some();
            (removed, removed)
        })
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
    fn an_existing_folder_is_made_private_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("vigil");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = TokenStore::at(folder.join("tokens.json"));
        store.save("http://a/", &tokens(1)).unwrap();
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["tokens.json", LOCK_FILE]);
    }

    /// Clients for different servers saving at the same moment: without
    /// the lock, one read-modify-write overwrote the other's entry.
    #[test]
    fn concurrent_saves_for_different_servers_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil").join("tokens.json");
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let store = TokenStore::at(&path);
                std::thread::spawn(move || {
                    for n in 0..25 {
                        store.save(&format!("http://s{writer}-{n}/"), &tokens(n)).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let store = TokenStore::at(&path);
        for writer in 0..4 {
            for n in 0..25 {
                assert_eq!(
                    store.load(&format!("http://s{writer}-{n}/")).unwrap(),
                    Some(tokens(n)),
                    "s{writer}-{n}"
                );
            }
        }
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
