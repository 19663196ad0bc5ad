//! `vigil backup --out DIR`: the database and the image folder in
//! mongodump's layout, with a manifest of checksums (see docs/backup.md).
//! Safe while servers run: documents are read first, images after.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::backup::{backup, MediaSource};
use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::media::MediaBackend;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The folder to create (it must not exist); it appears only once the backup is complete.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The server's data folder (images live in its `images/` with the fs store).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the server keeps images: fs or gridfs (then they are in the database).
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,
}

pub async fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media = match args.media_store {
        MediaBackend::Fs => MediaSource::Folder(args.data_dir.join("images")),
        MediaBackend::Gridfs => MediaSource::Database,
    };
    let summary = backup(&db, &media, &args.out).await?;
    let manifest = &summary.manifest;
    for (collection, count) in &manifest.collections {
        println!("{collection}: {count}");
    }
    println!(
        "backup={} collections={} documents={} images={} migration={}",
        summary.dir.display(),
        manifest.collections.len(),
        manifest.documents(),
        manifest.media_files,
        manifest.migration_version
    );
    Ok(ExitCode::SUCCESS)
}
