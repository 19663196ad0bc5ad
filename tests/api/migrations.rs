use mongodb::bson::{doc, Document};
use vigil::db::migrations::{Migration, MigrationError, MigrationSet, Migrator};
use vigil::db::{Database, DatabaseSettings};
use vigil::startup::Application;

use crate::helpers::{database_uri, spawn_app_with, unique_database_name, AppOptions};

async fn fresh_database() -> Database {
    Database::connect(&DatabaseSettings {
        uri: database_uri(),
        name: unique_database_name(),
        pool_size: 16,
        server_selection_timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap()
}

fn set(files: &[(&str, &str)]) -> MigrationSet {
    MigrationSet::new(
        files
            .iter()
            .map(|(name, body)| Migration::parse(name, body.as_bytes()).unwrap())
            .collect(),
    )
    .unwrap()
}

const WIDGETS: &str = r#"{"collections": [{"name": "widgets",
  "validator": {"$jsonSchema": {"bsonType": "object", "required": ["size"]}},
  "indexes": [{"key": {"size": 1}, "name": "size_unique", "unique": true}]}]}"#;
const GADGETS: &str = r#"{"collections": [{"name": "gadgets"}]}"#;

async fn records(db: &Database) -> Vec<Document> {
    use futures_util::TryStreamExt;
    db.collection::<Document>("_migrations")
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_are_recorded_with_checksums() {
    let db = fresh_database().await;
    let migrations = set(&[("0001_widgets.json", WIDGETS), ("0002_gadgets.json", GADGETS)]);

    let first = Migrator::new(&db, &migrations, "a").run().await.unwrap();
    assert_eq!(first.applied, vec![1, 2]);
    let second = Migrator::new(&db, &migrations, "b").run().await.unwrap();
    assert!(second.applied.is_empty(), "re-applying is a no-op");
    assert_eq!(second.already_applied, vec![1, 2]);

    let recorded = records(&db).await;
    assert_eq!(recorded.len(), 2);
    for (record, migration) in recorded.iter().zip(migrations.iter()) {
        assert_eq!(record.get_str("checksum").unwrap(), migration.checksum);
        assert_eq!(record.get_str("name").unwrap(), migration.name);
        assert_eq!(record.get_str("applied_by").unwrap(), "a");
    }

    // What the migration describes is really there: the validator and the unique index.
    let widgets = db.collection::<Document>("widgets");
    assert!(
        widgets.insert_one(doc! { "colour": "red" }).await.is_err(),
        "validator enforced"
    );
    widgets.insert_one(doc! { "size": 1 }).await.unwrap();
    let duplicate = widgets.insert_one(doc! { "size": 1 }).await.unwrap_err();
    assert!(vigil::db::is_duplicate_key(&duplicate), "{duplicate}");
    assert!(Migrator::new(&db, &migrations, "c")
        .is_up_to_date()
        .await
        .unwrap());
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_by_name() {
    let db = fresh_database().await;
    Migrator::new(&db, &set(&[("0001_widgets.json", WIDGETS)]), "a")
        .run()
        .await
        .unwrap();

    let edited = WIDGETS.replace("size_unique", "size_idx");
    let err = Migrator::new(
        &db,
        &set(&[("0001_widgets.json", &edited), ("0002_gadgets.json", GADGETS)]),
        "b",
    )
    .run()
    .await
    .unwrap_err();
    assert!(
        matches!(&err, MigrationError::ChecksumMismatch { version: 1, name, .. } if name == "widgets"),
        "{err}"
    );
    assert!(err.to_string().contains("widgets"), "{err}");
    assert_eq!(
        records(&db).await.len(),
        1,
        "nothing applied past a tampered history"
    );
}

#[tokio::test]
async fn startup_fails_on_a_checksum_mismatch() {
    let options = AppOptions::default();
    let client = mongodb::Client::with_uri_str(database_uri()).await.unwrap();
    let first = MigrationSet::embedded().unwrap();
    let first = first.iter().next().unwrap();
    client
        .database(&options.database_name)
        .collection::<Document>("_migrations")
        .insert_one(doc! { "_id": first.version as i64, "name": &first.name, "checksum": "0".repeat(64) })
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = options.serve_args(dir.path()).into_config().unwrap();
    let err = match Application::build(config).await {
        Ok(_) => panic!("startup must refuse an edited migration"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains(&first.name), "error names the migration: {err}");
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_exactly_once() {
    let db = fresh_database().await;
    let migrations = set(&[("0001_widgets.json", WIDGETS), ("0002_gadgets.json", GADGETS)]);
    let runs = futures_util::future::join_all((0..6).map(|i| {
        let db = db.clone();
        let migrations = migrations.clone();
        async move { Migrator::new(&db, &migrations, format!("runner-{i}")).run().await }
    }))
    .await;
    let mut applied: Vec<u32> = runs.into_iter().flat_map(|r| r.unwrap().applied).collect();
    applied.sort();
    assert_eq!(
        applied,
        vec![1, 2],
        "each migration applied by exactly one runner"
    );
    assert_eq!(records(&db).await.len(), 2);
}

#[tokio::test]
async fn two_instances_starting_together_share_one_migration_history() {
    let name = unique_database_name();
    let options = || AppOptions::default().database(&name);
    let (a, b) = tokio::join!(spawn_app_with(options()), spawn_app_with(options()));
    assert_eq!(a.get("/healthz").await.status(), 200);
    assert_eq!(b.get("/healthz").await.status(), 200);
    let recorded = records(
        &Database::connect(&DatabaseSettings {
            uri: database_uri(),
            name,
            pool_size: 4,
            server_selection_timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(recorded.len(), MigrationSet::embedded().unwrap().len());
}
