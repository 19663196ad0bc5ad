//! `vigil user …`: account administration from the shell.

use std::process::ExitCode;

use crate::config::DatabaseArgs;
use crate::db::Database;
use crate::users::fields::UserName;
use crate::users::{UserError, Users};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Give a user the admin role.
    Promote {
        /// The user's user_name (any case).
        name: String,
    },
}

pub async fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let users = Users::new(&db);
    match args.command {
        UserCommand::Promote { name } => {
            let parsed = UserName::parse(&name).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
            match users.promote(&parsed).await {
                Ok(true) => println!("{name} is now an admin"),
                Ok(false) => println!("{name} already was an admin"),
                Err(UserError::NotFound) => {
                    eprintln!("error: no user named {name:?}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
