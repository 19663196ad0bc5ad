//! `vigil backup --out DIR`: the database and the image folder in
//! mongodump's layout, with a manifest of checksums (see docs/backup.md).
//! Safe while servers run: documents are read first, images after.

use std::path::PathBuf;
use std::process::ExitCode;

use super::media_args::MediaArgs;
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

    #[command(flatten)]
    pub media: MediaArgs,
}

pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    super::block_on(execute(args))
}

async fn execute(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media = match args.media.media_store {
        MediaBackend::Fs => MediaSource::Folder(args.media.images_dir()),
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
