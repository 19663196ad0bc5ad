//! `vigil migrate`: applies pending database migrations and exits.

use std::process::ExitCode;

use crate::config::DatabaseArgs;
use crate::db::migrations::{MigrationSet, Migrator};
use crate::db::Database;

pub fn run(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    super::block_on(async {
        let db = Database::connect(&args.settings()).await?;
        let set = MigrationSet::embedded()?;
        let owner = format!("vigil-migrate-{}", std::process::id());
        let report = Migrator::new(&db, &set, owner).run().await?;
        println!(
            "applied {:?}; {} already applied",
            report.applied,
            report.already_applied.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}
