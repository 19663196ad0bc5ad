//! `vigil user …`: account administration from the shell.

use std::process::ExitCode;

use crate::auth::accounts::close_account;
use crate::auth::AuthError;
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
    /// Take the admin role away; running servers refuse the admin's
    /// requests from the next one on, whatever its tokens say.
    Demote {
        /// The user's user_name (any case).
        name: String,
    },
    /// Delete the account with its API keys and refresh tokens; running
    /// servers refuse its access tokens from the next request on. What the
    /// account stored (detections, subjects, telemetry) is kept.
    Delete {
        /// The user's user_name (any case).
        name: String,
    },
}

pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    super::block_on(execute(args))
}

async fn execute(args: UserArgs) -> anyhow::Result<ExitCode> {
    let db = Database::connect(&args.database.settings()).await?;
    let users = Users::new(&db);
    let name = match &args.command {
        UserCommand::Promote { name } | UserCommand::Demote { name } | UserCommand::Delete { name } => name,
    };
    let parsed = UserName::parse(name).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
    let done = match &args.command {
        UserCommand::Promote { .. } => users.promote(&parsed).await.map(|changed| {
            if changed {
                format!("{name} is now an admin")
            } else {
                format!("{name} already was an admin")
            }
        }),
        UserCommand::Demote { .. } => users.demote(&parsed).await.map(|changed| {
            if changed {
                format!("{name} is no longer an admin")
            } else {
                format!("{name} was not an admin")
            }
        }),
        UserCommand::Delete { .. } => match close_account(&db, &parsed).await {
            Ok(closed) => Ok(format!(
                "deleted {name} ({}) with {} API keys and {} refresh tokens",
                closed.user.id, closed.api_keys, closed.refresh_tokens
            )),
            Err(AuthError::User(err)) => Err(err),
            Err(err) => return Err(err.into()),
        },
    };
    match done {
        Ok(message) => println!("{message}"),
        Err(UserError::NotFound) => {
            eprintln!("error: no user named {name:?}");
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.into()),
    }
    Ok(ExitCode::SUCCESS)
}
