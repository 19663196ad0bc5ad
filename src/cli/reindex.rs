//! `vigil reindex`: recompute enrolled faces' embeddings after a model or
//! alignment change. Run it with the server's database and media settings;
//! running servers pick the new embeddings up through their change streams.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::media::{FileStore, GridFsStore, MediaBackend, SharedMediaStore};
use crate::people::reindex::reindex;
use crate::people::SubjectFaces;
use crate::vision::{ImageLimits, RecognizerPool, RecognizerSettings};

#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Folder holding the model files listed in models/manifest.toml.
    #[arg(long, env = "VIGIL_MODELS_DIR", default_value = "./models")]
    pub models_dir: PathBuf,

    /// The server's data folder (images live in its `images/` with the fs store).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the server keeps images: fs or gridfs.
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,

    /// Recompute every enrolled face, not only those of another model.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: ReindexArgs) -> anyhow::Result<ExitCode> {
    super::block_on(execute(args))
}

async fn execute(args: ReindexArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media: SharedMediaStore = match args.media_store {
        MediaBackend::Fs => Arc::new(FileStore::open(args.data_dir.join("images"))?),
        MediaBackend::Gridfs => Arc::new(GridFsStore::new(&db)),
    };
    let recognizer = RecognizerPool::load(&args.models_dir, &RecognizerSettings::default()).await?;
    let report = reindex(
        &SubjectFaces::new(&db),
        &media,
        &recognizer,
        ImageLimits::default(),
        args.all,
    )
    .await?;
    for failure in &report.failed {
        eprintln!("not reindexed: {failure}");
    }
    println!(
        "reindexed={} failed={} model={}",
        report.reindexed,
        report.failed.len(),
        recognizer.model_id()
    );
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
