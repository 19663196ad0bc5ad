//! `vigil erase --subject ID`: erase a person from the shell, as
//! `DELETE /api/v1/subjects/{id}` does, whoever owns them. Also finishes an
//! erasure that was interrupted: with the subject already gone it still
//! removes every remaining reference. Running servers drop the person from
//! their galleries through their change streams.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::alarms::Alarms;
use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::detections::Detections;
use crate::media::{FileStore, GridFsStore, MediaBackend, SharedMediaStore};
use crate::people::erase::Erasure;
use crate::people::{SubjectFaces, SubjectId, Subjects};

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// The subject's id (24 hex digits).
    #[arg(long, value_name = "ID")]
    pub subject: SubjectId,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The server's data folder (images live in its `images/` with the fs store).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the server keeps images: fs or gridfs.
    #[arg(long, env = "VIGIL_MEDIA_STORE", value_enum, default_value = "fs")]
    pub media_store: MediaBackend,
}

pub async fn run(args: EraseArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media: SharedMediaStore = match args.media_store {
        MediaBackend::Fs => Arc::new(FileStore::open(args.data_dir.join("images"))?),
        MediaBackend::Gridfs => Arc::new(GridFsStore::new(&db)),
    };
    let erasure = Erasure {
        db: db.clone(),
        subjects: Subjects::new(&db),
        faces: SubjectFaces::new(&db),
        media,
        detections: Detections::new(&db),
        alarms: Alarms::new(&db),
    };
    let deleted = erasure.delete_subject(None, args.subject).await?;
    let references = erasure.references(args.subject).await?;
    match &deleted {
        Some((subject, faces)) => println!(
            "erased subject {} ({:?}) with {} faces",
            subject.id,
            subject.name,
            faces.len()
        ),
        None => println!(
            "no subject {} (already deleted); removing what still refers to it",
            args.subject
        ),
    }
    println!(
        "detections={} alarms={} log_entries={}",
        references.detections, references.alarms, references.log_entries
    );
    Ok(ExitCode::SUCCESS)
}
