//! `vigil erase --subject ID`: erase a person from the shell, as
//! `DELETE /api/v1/subjects/{id}` does, whoever owns them. Also finishes an
//! erasure that was interrupted: with the subject already gone it still
//! removes every remaining reference. Running servers drop the person from
//! their galleries through their change streams.

use std::process::ExitCode;

use super::media_args::MediaArgs;
use crate::alarms::Alarms;
use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::detections::Detections;
use crate::people::erase::Erasure;
use crate::people::{SubjectFaces, SubjectId, Subjects};

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// The subject's id (24 hex digits).
    #[arg(long, value_name = "ID")]
    pub subject: SubjectId,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub media: MediaArgs,
}

pub fn run(args: EraseArgs) -> anyhow::Result<ExitCode> {
    super::block_on(execute(args))
}

async fn execute(args: EraseArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let media = args.media.open(&db)?;
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
        "detections={} alarms={} log_entries={} seen_faces={}",
        references.detections, references.alarms, references.log_entries, references.seen_faces
    );
    Ok(ExitCode::SUCCESS)
}
