//! `vigil backup` and `vigil restore`: the real binary against the real
//! database, with a server running while the backup is taken, and a server
//! started on the restored database and data folder afterwards.

use std::path::Path;

use mongodb::bson::{doc, Document};
use vigil_wire::detections::DetectionView;

use crate::helpers::*;

/// Runs `vigil ARGS…` against `database` and `data_dir`; returns its exit
/// status, stdout and stderr.
fn vigil_on(args: &[&str], database: &str, data_dir: &Path, media_store: &str) -> (bool, String, String) {
    let output = vigil_command()
        .args(args)
        .args(["--mongodb-uri", &database_uri(), "--database", database])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--media-store", media_store])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn vigil_succeeds(args: &[&str], database: &str, data_dir: &Path, media_store: &str) -> String {
    let (ok, stdout, stderr) = vigil_on(args, database, data_dir, media_store);
    assert!(ok, "vigil {args:?} failed:\n{stdout}{stderr}");
    stdout
}

/// The error `vigil ARGS…` stops with (it must stop with one).
fn vigil_refuses(args: &[&str], database: &str, data_dir: &Path, media_store: &str) -> String {
    let (ok, stdout, stderr) = vigil_on(args, database, data_dir, media_store);
    assert!(!ok, "vigil {args:?} should have failed:\n{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        .parse()
        .unwrap()
}

async fn collection_names(app: &TestApp, database: &str) -> Vec<String> {
    app.db
        .client()
        .database(database)
        .list_collection_names()
        .await
        .unwrap()
}

/// A user with a detection of the portrait on a running server; a backup
/// while it runs; a restore into a new database and data folder; a server
/// started there finds the same user, detection and image bytes.
async fn round_trip(media_store: &str) {
    let app = spawn_app_with(AppOptions::default().flag("--media-store", media_store)).await;
    let user = app.create_user().await;
    let detection = app.upload_face(&user).await;
    let image = app.http.get(app.url(&detection.image_url)).send().await.unwrap();
    assert_eq!(image.status(), 200);
    let image = image.bytes().await.unwrap();

    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("nightly");
    let out_arg = out.to_str().unwrap();
    let stdout = vigil_succeeds(
        &["backup", "--out", out_arg],
        &app.database_name,
        app.data_dir.path(),
        media_store,
    );
    let last = stdout.lines().last().unwrap();
    assert!(field(last, "documents") >= 3, "{stdout}");
    if media_store == "fs" {
        assert_eq!(
            field(last, "images"),
            3,
            "the upload, its annotated copy and its stranger's visitor cover: {stdout}"
        );
    }
    // mongodump's layout: documents and metadata per collection, and the manifest.
    let dumped = out.join(&app.database_name);
    let users = std::fs::read(dumped.join("users.bson")).unwrap();
    let user_doc = Document::from_reader(&mut users.as_slice()).unwrap();
    assert_eq!(user_doc.get_str("user_name").unwrap(), user.user_name);
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dumped.join("detections.metadata.json")).unwrap()).unwrap();
    assert!(
        metadata["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|index| index["name"] == "by_owner_newest"),
        "{metadata}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["collections"]["detections"], 1, "{manifest}");
    assert_eq!(manifest["media_store"], media_store);
    // Nothing half-written is left beside it.
    let beside: Vec<_> = std::fs::read_dir(backups.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "{beside:?}");

    let database = unique_database_name();
    let data_dir = tempfile::tempdir().unwrap();
    let stdout = vigil_succeeds(
        &["restore", "--from", out_arg],
        &database,
        data_dir.path(),
        media_store,
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("restored database={database} ")),
        "{stdout}"
    );
    if media_store == "fs" {
        assert_eq!(field(last, "images"), 3, "{stdout}");
    }

    let restored = spawn_app_with(
        AppOptions::default()
            .database(&database)
            .data_dir(data_dir.path())
            .flag("--media-store", media_store),
    )
    .await;
    let tokens = restored.tokens(&user.user_name, &user.password).await;
    let same: DetectionView = restored
        .fetch_as(
            &format!("/api/v1/detections/{}", detection.id),
            &tokens.access_token,
        )
        .await;
    assert_eq!(same.id, detection.id);
    assert_eq!(
        same.created_at.timestamp_millis(),
        detection.created_at.timestamp_millis()
    );
    assert_eq!(same.face_count, 1);
    assert_eq!(same.alarm_id, detection.alarm_id);
    let again = restored
        .http
        .get(restored.url(&same.image_url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), image, "the same image bytes");
    let annotated = restored
        .http
        .get(restored.url(&same.annotated_url))
        .send()
        .await
        .unwrap();
    assert_eq!(annotated.status(), 200);
    // The restored database is complete: uploads go on as before.
    restored.upload_face(&user).await;
}

#[tokio::test]
async fn a_backup_of_a_running_server_restores_with_the_folder_store() {
    round_trip("fs").await;
}

#[tokio::test]
async fn a_backup_of_a_running_server_restores_with_gridfs() {
    round_trip("gridfs").await;
}

#[tokio::test]
async fn a_damaged_or_partial_backup_is_refused_before_anything_is_written() {
    let app = spawn_app().await;
    app.create_user().await;
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("b");
    let out_arg = out.to_str().unwrap();
    vigil_succeeds(
        &["backup", "--out", out_arg],
        &app.database_name,
        app.data_dir.path(),
        "fs",
    );
    let again = vigil_refuses(
        &["backup", "--out", out_arg],
        &app.database_name,
        app.data_dir.path(),
        "fs",
    );
    assert!(again.contains("already exists"), "{again}");

    let target = unique_database_name();
    let data_dir = tempfile::tempdir().unwrap();
    let restore = ["restore", "--from", out_arg];
    let users = out.join(&app.database_name).join("users.bson");
    let original = std::fs::read(&users).unwrap();

    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&users, &flipped).unwrap();
    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("users.bson does not match its checksum"), "{err}");

    std::fs::write(&users, &original[..original.len() - 7]).unwrap();
    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("users.bson has"), "{err}");

    std::fs::remove_file(&users).unwrap();
    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("users.bson is missing"), "{err}");
    std::fs::write(&users, &original).unwrap();

    std::fs::write(out.join("media").join("stray.txt"), b"?").unwrap();
    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("media/stray.txt is not in the manifest"), "{err}");
    std::fs::remove_file(out.join("media").join("stray.txt")).unwrap();

    std::fs::rename(out.join("manifest.json"), backups.path().join("manifest.json")).unwrap();
    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("has no manifest.json"), "{err}");

    let err = vigil_refuses(
        &[
            "restore",
            "--from",
            backups.path().join("nothing").to_str().unwrap(),
        ],
        &target,
        data_dir.path(),
        "fs",
    );
    assert!(err.contains("no backup at"), "{err}");
    assert!(
        collection_names(&app, &target).await.is_empty(),
        "nothing was written to the target database"
    );

    // A wrong database name is said, rather than backed up as nothing.
    let err = vigil_refuses(
        &["backup", "--out", backups.path().join("c").to_str().unwrap()],
        &unique_database_name(),
        app.data_dir.path(),
        "fs",
    );
    assert!(err.contains("holds no vigil data"), "{err}");
}

#[tokio::test]
async fn a_database_with_data_is_replaced_only_with_drop() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("b");
    let out_arg = out.to_str().unwrap();
    vigil_succeeds(
        &["backup", "--out", out_arg],
        &app.database_name,
        app.data_dir.path(),
        "fs",
    );

    let target = unique_database_name();
    let data_dir = tempfile::tempdir().unwrap();
    let restore = ["restore", "--from", out_arg];
    vigil_succeeds(&restore, &target, data_dir.path(), "fs");
    let db = app.db.client().database(&target);
    db.collection::<Document>("stray")
        .insert_one(doc! { "note": "not from the backup" })
        .await
        .unwrap();

    let err = vigil_refuses(&restore, &target, data_dir.path(), "fs");
    assert!(err.contains("already holds vigil data"), "{err}");
    assert!(err.contains("--drop"), "{err}");
    assert!(err.contains("users: 1"), "{err}");

    let stdout = vigil_succeeds(
        &["restore", "--from", out_arg, "--drop"],
        &target,
        data_dir.path(),
        "fs",
    );
    assert!(stdout.contains("users: 1"), "{stdout}");
    let names = collection_names(&app, &target).await;
    assert!(!names.contains(&"stray".to_owned()), "{names:?}");
    let restored = db
        .collection::<Document>("users")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.get_str("user_name").unwrap(), user.user_name);
    // The indexes came back too: another account of the same name is refused.
    let mut twin = restored.clone();
    twin.insert("_id", mongodb::bson::oid::ObjectId::new());
    let dup = db
        .collection::<Document>("users")
        .insert_one(twin)
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("11000"), "{dup}");
}
