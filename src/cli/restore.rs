//! `vigil restore --from DIR`: a backup of `vigil backup` (checked against
//! its manifest first) into the configured database and media store. Stop
//! the servers of that database first.

use std::path::PathBuf;
use std::process::ExitCode;

use super::media_args::MediaArgs;
use crate::backup::{restore, RestoreOptions};
use crate::config::DatabaseArgs;
use crate::db::Database;

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

    #[command(flatten)]
    pub media: MediaArgs,
}

pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    super::block_on(execute(args))
}

async fn execute(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media = args.media.open(&db)?;
    let options = RestoreOptions {
        drop: args.drop,
        media,
        media_backend: args.media.media_store,
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
