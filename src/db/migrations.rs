//! Ordered, checksummed schema migrations.
//!
//! Each file in `migrations/` is `NNNN_name.json` and describes collections
//! (with optional `$jsonSchema` validators) and indexes in MongoDB's own
//! `createIndexes` format. The files are embedded in the binary, so a deployed
//! vigil always carries the schema it was built for.
//!
//! Applied migrations are recorded in `_migrations` with the SHA-256 of the
//! file; an applied file that was edited afterwards is refused by name, since
//! the database no longer matches what the file says. Instances that start
//! together serialise on a lock document with an expiry, so a crashed holder
//! cannot block the others forever.

use std::time::Duration;

use chrono::Utc;
use mongodb::bson::{self, doc, Bson, Document};
use rust_embed::RustEmbed;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{is_duplicate_key, Database, DbError};

const RECORDS: &str = "_migrations";
const LOCKS: &str = "_migrations_lock";
const LOCK_ID: &str = "migrations";

#[derive(RustEmbed)]
#[folder = "migrations/"]
#[include = "*.json"]
struct Embedded;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration file {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("migrations {first} and {second} share version {version}")]
    DuplicateVersion {
        version: u32,
        first: String,
        second: String,
    },
    #[error(
        "migration {version} ({name}) was edited after it was applied: \
         recorded checksum {recorded}, file checksum {actual}; add a new migration instead"
    )]
    ChecksumMismatch {
        version: u32,
        name: String,
        recorded: String,
        actual: String,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    Apply {
        version: u32,
        name: String,
        #[source]
        source: DbError,
    },
    #[error("timed out after {0:?} waiting for the migration lock held by another instance")]
    LockTimeout(Duration),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a migration file describes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub collections: Vec<CollectionSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub name: String,
    /// A MongoDB validator document, e.g. `{"$jsonSchema": {…}}`.
    #[serde(default)]
    pub validator: Option<serde_json::Map<String, serde_json::Value>>,
    /// Index specifications exactly as `createIndexes` takes them.
    #[serde(default)]
    pub indexes: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    pub spec: MigrationSpec,
}

impl Migration {
    /// Parses `NNNN_name.json` and its contents.
    pub fn parse(file: &str, contents: &[u8]) -> Result<Self, MigrationError> {
        let invalid = |reason: String| MigrationError::Invalid {
            file: file.to_owned(),
            reason,
        };
        let stem = file
            .strip_suffix(".json")
            .ok_or_else(|| invalid("name must end in .json".into()))?;
        let (number, name) = stem
            .split_once('_')
            .ok_or_else(|| invalid("name must look like 0001_description.json".into()))?;
        let version: u32 = number
            .parse()
            .map_err(|_| invalid(format!("{number:?} is not a version number")))?;
        if version == 0 || name.is_empty() {
            return Err(invalid("version must be ≥ 1 and the name non-empty".into()));
        }
        let spec: MigrationSpec = serde_json::from_slice(contents).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            version,
            name: name.to_owned(),
            checksum: hex::encode(Sha256::digest(contents)),
            spec,
        })
    }
}

/// An ordered set of migrations with unique versions.
#[derive(Debug, Clone)]
pub struct MigrationSet(Vec<Migration>);

impl MigrationSet {
    pub fn new(mut migrations: Vec<Migration>) -> Result<Self, MigrationError> {
        migrations.sort_by_key(|m| m.version);
        if let Some(pair) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
            return Err(MigrationError::DuplicateVersion {
                version: pair[0].version,
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
        Ok(Self(migrations))
    }

    /// The migrations compiled into this binary from `migrations/`.
    pub fn embedded() -> Result<Self, MigrationError> {
        let migrations = Embedded::iter()
            .map(|file| {
                let contents = Embedded::get(&file).expect("listed file is embedded");
                Migration::parse(&file, &contents.data)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(migrations)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Outcome of one run, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<u32>,
    pub already_applied: Vec<u32>,
}

pub struct Migrator<'a> {
    db: &'a Database,
    set: &'a MigrationSet,
    owner: String,
    lock_ttl: Duration,
    lock_wait: Duration,
}

impl<'a> Migrator<'a> {
    pub fn new(db: &'a Database, set: &'a MigrationSet, owner: impl Into<String>) -> Self {
        Self {
            db,
            set,
            owner: owner.into(),
            lock_ttl: Duration::from_secs(60),
            lock_wait: Duration::from_secs(90),
        }
    }

    /// Applies every pending migration, holding the lock while it does.
    pub async fn run(&self) -> Result<MigrationReport, MigrationError> {
        self.acquire_lock().await?;
        let outcome = self.apply_pending().await;
        if let Err(err) = self.release_lock().await {
            // The lock expires on its own; a failed release only delays others.
            tracing::warn!(error = %err, "could not release the migration lock");
        }
        outcome
    }

    /// True when every migration of the set is recorded with a matching checksum.
    pub async fn is_up_to_date(&self) -> Result<bool, MigrationError> {
        let recorded = self.recorded().await?;
        for migration in self.set.iter() {
            match recorded.iter().find(|r| r.version == migration.version) {
                Some(r) => verify_checksum(migration, r)?,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn apply_pending(&self) -> Result<MigrationReport, MigrationError> {
        let recorded = self.recorded().await?;
        let mut report = MigrationReport::default();
        // Verify everything first: a tampered history must stop us before any change.
        for migration in self.set.iter() {
            if let Some(r) = recorded.iter().find(|r| r.version == migration.version) {
                verify_checksum(migration, r)?;
            }
        }
        for migration in self.set.iter() {
            if recorded.iter().any(|r| r.version == migration.version) {
                report.already_applied.push(migration.version);
                continue;
            }
            let apply_error = |source| MigrationError::Apply {
                version: migration.version,
                name: migration.name.clone(),
                source,
            };
            self.apply(migration).await.map_err(apply_error)?;
            self.record(migration).await.map_err(apply_error)?;
            tracing::info!(version = migration.version, name = %migration.name, "migration applied");
            report.applied.push(migration.version);
        }
        Ok(report)
    }

    async fn apply(&self, migration: &Migration) -> Result<(), DbError> {
        let db = self.db.handle();
        let existing = db.list_collection_names().await.map_err(DbError::from_driver)?;
        for collection in &migration.spec.collections {
            let validator = collection.validator.as_ref().map(json_to_document).transpose()?;
            if !existing.contains(&collection.name) {
                let mut create = doc! { "create": &collection.name };
                if let Some(v) = &validator {
                    create.insert("validator", v.clone());
                }
                db.run_command(create).await.map_err(DbError::from_driver)?;
            } else if let Some(v) = validator {
                db.run_command(doc! { "collMod": &collection.name, "validator": v })
                    .await
                    .map_err(DbError::from_driver)?;
            }
            if !collection.indexes.is_empty() {
                let indexes = collection
                    .indexes
                    .iter()
                    .map(|spec| json_to_document(spec).map(Bson::Document))
                    .collect::<Result<Vec<_>, _>>()?;
                db.run_command(doc! { "createIndexes": &collection.name, "indexes": indexes })
                    .await
                    .map_err(DbError::from_driver)?;
            }
        }
        Ok(())
    }

    async fn record(&self, migration: &Migration) -> Result<(), DbError> {
        let record = doc! {
            "_id": migration.version as i64,
            "name": &migration.name,
            "checksum": &migration.checksum,
            "applied_at": bson::DateTime::now(),
            "applied_by": &self.owner,
        };
        self.db
            .collection::<Document>(RECORDS)
            .insert_one(record)
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }

    async fn recorded(&self) -> Result<Vec<Recorded>, DbError> {
        use futures_util::TryStreamExt;
        let cursor = self
            .db
            .collection::<Document>(RECORDS)
            .find(doc! {})
            .await
            .map_err(DbError::from_driver)?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(DbError::from_driver)?;
        docs.into_iter()
            .map(|d| {
                let version = match d.get("_id") {
                    Some(Bson::Int64(v)) => u32::try_from(*v).ok(),
                    Some(Bson::Int32(v)) => u32::try_from(*v).ok(),
                    _ => None,
                };
                match (version, d.get_str("checksum")) {
                    (Some(version), Ok(checksum)) => Ok(Recorded {
                        version,
                        checksum: checksum.to_owned(),
                    }),
                    _ => Err(DbError::Malformed(format!("{RECORDS} entry {d}"))),
                }
            })
            .collect()
    }

    async fn acquire_lock(&self) -> Result<(), MigrationError> {
        let locks = self.db.collection::<Document>(LOCKS);
        let deadline = tokio::time::Instant::now() + self.lock_wait;
        loop {
            let now = Utc::now();
            let expires_at = now + chrono::Duration::from_std(self.lock_ttl).expect("small duration");
            // Matches only a free (expired) lock or our own; otherwise the upsert
            // collides with the holder's _id and fails with a duplicate key.
            let taken = locks
                .find_one_and_update(
                    doc! {
                        "_id": LOCK_ID,
                        "$or": [
                            { "expires_at": { "$lt": bson::DateTime::from_chrono(now) } },
                            { "owner": &self.owner },
                        ],
                    },
                    doc! { "$set": {
                        "owner": &self.owner,
                        "expires_at": bson::DateTime::from_chrono(expires_at),
                    }},
                )
                .upsert(true)
                .await;
            match taken {
                Ok(_) => return Ok(()),
                Err(err) if is_duplicate_key(&err) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(MigrationError::LockTimeout(self.lock_wait));
                    }
                    tracing::debug!("migration lock held by another instance, waiting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => return Err(DbError::from_driver(err).into()),
            }
        }
    }

    async fn release_lock(&self) -> Result<(), DbError> {
        self.db
            .collection::<Document>(LOCKS)
            .delete_one(doc! { "_id": LOCK_ID, "owner": &self.owner })
            .await
            .map(drop)
            .map_err(DbError::from_driver)
    }
}

/// The newest migration recorded in `db`; `None` before the first, so a
/// database that never held vigil can be told apart from one that does.
pub async fn applied_version(db: &Database) -> Result<Option<u32>, DbError> {
    let newest = db
        .collection::<Document>(RECORDS)
        .find_one(doc! {})
        .sort(doc! { "_id": -1 })
        .await
        .map_err(DbError::from_driver)?;
    newest
        .map(|record| {
            match record.get("_id") {
                Some(Bson::Int64(v)) => u32::try_from(*v).ok(),
                Some(Bson::Int32(v)) => u32::try_from(*v).ok(),
                _ => None,
            }
            .ok_or_else(|| DbError::Malformed(format!("{RECORDS} entry {record}")))
        })
        .transpose()
}

impl MigrationSet {
    /// The newest version of the set (0 when empty).
    pub fn latest(&self) -> u32 {
        self.0.last().map_or(0, |m| m.version)
    }
}

struct Recorded {
    version: u32,
    checksum: String,
}

fn verify_checksum(migration: &Migration, recorded: &Recorded) -> Result<(), MigrationError> {
    if recorded.checksum == migration.checksum {
        return Ok(());
    }
    Err(MigrationError::ChecksumMismatch {
        version: migration.version,
        name: migration.name.clone(),
        recorded: recorded.checksum.clone(),
        actual: migration.checksum.clone(),
    })
}

fn json_to_document(map: &serde_json::Map<String, serde_json::Value>) -> Result<Document, DbError> {
    match bson::to_bson(map) {
        Ok(Bson::Document(doc)) => Ok(doc),
        Ok(other) => Err(DbError::Malformed(format!("expected a document, got {other}"))),
        Err(e) => Err(DbError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_name_and_checksum() {
        let m = Migration::parse("0007_add_alarms.json", br#"{"collections": []}"#).unwrap();
        assert_eq!(m.version, 7);
        assert_eq!(m.name, "add_alarms");
        assert_eq!(m.checksum.len(), 64);
        let edited = Migration::parse("0007_add_alarms.json", br#"{"collections": [] }"#).unwrap();
        assert_ne!(m.checksum, edited.checksum, "any byte change is an edit");
    }

    #[test]
    fn rejects_bad_names_and_contents() {
        for (file, contents) in [
            ("init.json", "{}"),
            ("0001_init.toml", "{}"),
            ("x1_init.json", "{}"),
            ("0000_init.json", "{}"),
            ("0001_.json", "{}"),
            ("0001_init.json", "{not json"),
            ("0001_init.json", r#"{"colections": []}"#),
        ] {
            assert!(
                matches!(
                    Migration::parse(file, contents.as_bytes()),
                    Err(MigrationError::Invalid { .. })
                ),
                "{file} {contents} should be refused"
            );
        }
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let a = Migration::parse("0001_a.json", b"{}").unwrap();
        let b = Migration::parse("0001_b.json", b"{}").unwrap();
        assert!(matches!(
            MigrationSet::new(vec![a, b]),
            Err(MigrationError::DuplicateVersion { version: 1, .. })
        ));
    }

    #[test]
    fn embedded_migrations_parse_and_are_ordered() {
        let set = MigrationSet::embedded().unwrap();
        assert!(!set.is_empty());
        let versions: Vec<u32> = set.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        assert_eq!(versions, sorted);
        for m in set.iter() {
            for c in &m.spec.collections {
                if let Some(v) = &c.validator {
                    json_to_document(v).unwrap();
                }
            }
        }
    }
}
