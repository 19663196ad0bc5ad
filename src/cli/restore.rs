//! `vigil restore --from DIR`: a backup of `vigil backup` (checked against
//! its manifest first) into the configured database and media store. Stop
//! the servers of that database first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::backup::{restore, RestoreOptions};
use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::media::{FileStore, GridFsStore, MediaBackend, SharedMediaStore};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup's folder (the one `vigil backup --out` made).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,

    /// Replace what the database holds (without it, a database holding any document is refused).
    #[arg(long)]
    pub drop: bool,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The restored server's data folder (images go to its `images/` with the fs store).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the restored server keeps images: fs or gridfs.
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,
}

pub async fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media: SharedMediaStore = match args.media_store {
        MediaBackend::Fs => Arc::new(FileStore::open(args.data_dir.join("images"))?),
        MediaBackend::Gridfs => Arc::new(GridFsStore::new(&db)),
    };
    let options = RestoreOptions {
        drop: args.drop,
        media,
        media_backend: args.media_store,
    };
    let summary = restore(&db, &args.from, &options).await?;
    for (collection, count) in &summary.collections {
        println!("{collection}: {count}");
    }
    if !summary.migrations_applied.is_empty() {
        println!(
            "migrations applied after the backup's: {:?}",
            summary.migrations_applied
        );
    }
    println!(
        "restored database={} collections={} documents={} images={} from_version={}",
        db.handle().name(),
        summary.collections.len(),
        summary.documents(),
        summary.images,
        summary.manifest.vigil_version
    );
    Ok(ExitCode::SUCCESS)
}
